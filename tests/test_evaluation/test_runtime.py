"""Work-dir checks and the lock that keeps two runs apart."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from mmspd.evaluation import WorkDirLock, prepare_work_dir, versions


def test_second_run_on_a_work_dir_is_refused(tmp_path):
    with WorkDirLock(str(tmp_path)):
        with pytest.raises(RuntimeError, match=r'Another tools/test_corr'
                           r'uption.py run is using work dir .*pid '
                           rf'{os.getpid()}.*another --work-dir'):
            WorkDirLock(str(tmp_path)).acquire()
    # Released: the next run gets it.
    WorkDirLock(str(tmp_path)).acquire().release()


def test_lock_held_by_another_process(tmp_path):
    code = ('import sys, time; from mmspd.evaluation import WorkDirLock; '
            'lock = WorkDirLock(sys.argv[1]).acquire(); '
            'print("locked", flush=True); time.sleep(60)')
    proc = subprocess.Popen([sys.executable, '-c', code, str(tmp_path)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == 'locked'
        with pytest.raises(RuntimeError, match=f'pid {proc.pid}'):
            WorkDirLock(str(tmp_path)).acquire()
    finally:
        proc.kill()
        proc.wait()
    # A killed holder leaves no stale lock behind.
    deadline = time.time() + 10
    while True:
        try:
            WorkDirLock(str(tmp_path)).acquire().release()
            break
        except RuntimeError:
            if time.time() > deadline:
                raise
            time.sleep(0.1)


def test_work_dir_under_a_file_is_refused(tmp_path):
    blocker = tmp_path / 'file'
    blocker.write_text('x')
    with pytest.raises(ValueError, match=r"is inside .*file.*, which is a "
                       'file, not a folder'):
        prepare_work_dir(str(blocker / 'sub' / 'work'))
    with pytest.raises(ValueError, match='is a file'):
        prepare_work_dir(str(blocker))


@pytest.mark.skipif(hasattr(os, 'geteuid') and os.geteuid() == 0,
                    reason='root writes to read-only folders anyway')
def test_read_only_work_dir_is_refused(tmp_path):
    locked = tmp_path / 'ro'
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(ValueError, match='Cannot write results to '
                           'work dir'):
            prepare_work_dir(str(locked / 'work'))
    finally:
        locked.chmod(0o755)


def test_read_only_file_system_is_refused(tmp_path):
    # /proc refuses new folders even for root.
    with pytest.raises(ValueError, match="Cannot write results to work dir "
                       "'/proc/mmspd_robustness'"):
        prepare_work_dir('/proc/mmspd_robustness')


def test_versions_record_what_decides_the_pixels():
    found = versions()
    for name in ('mmspd', 'imagecorruptions', 'numpy', 'opencv', 'torch',
                 'mmseg'):
        assert found[name] and found[name] != 'not installed', name


@pytest.mark.parametrize('content', [b'not a checkpoint\n', b''])
def test_file_that_is_no_checkpoint_is_refused_with_a_message(
        tmp_path, content):
    from mmspd.evaluation import load_weights
    path = tmp_path / 'weights.pth'
    path.write_bytes(content)
    # Refused before the model is looked at: no runner is needed.
    with pytest.raises(ValueError, match=r"checkpoint '.*weights\.pth' "
                       r'cannot be loaded \(.*Error'):
        load_weights(None, str(path))
