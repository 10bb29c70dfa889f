"""The lock that keeps two runs out of one work dir; the versions."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from mmspd.evaluation.conditions import WorkDirBusy, versions, work_dir_lock


def test_second_run_on_a_work_dir_is_refused(tmp_path):
    with work_dir_lock(str(tmp_path)), pytest.raises(
            WorkDirBusy, match=r'Another robustness run is using work dir '
            rf'.*pid {os.getpid()}.*another --work-dir'), \
            work_dir_lock(str(tmp_path)):
        pass
    # Released: the next run gets it.
    with work_dir_lock(str(tmp_path)):
        pass


def test_lock_held_by_another_process(tmp_path):
    code = ('import sys, time; from mmspd.evaluation.conditions import '
            'work_dir_lock\n'
            'with work_dir_lock(sys.argv[1]):\n'
            '    print("locked", flush=True); time.sleep(60)')
    proc = subprocess.Popen([sys.executable, '-c', code, str(tmp_path)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == 'locked'
        with pytest.raises(WorkDirBusy, match=f'pid {proc.pid}'), \
                work_dir_lock(str(tmp_path)):
            pass
    finally:
        proc.kill()
        proc.wait()
    # A killed holder leaves no stale lock behind.
    deadline = time.time() + 10
    while True:
        try:
            with work_dir_lock(str(tmp_path)):
                break
        except WorkDirBusy:
            if time.time() > deadline:
                raise
            time.sleep(0.1)


def test_versions_record_what_decides_the_pixels():
    found = versions()
    for name in ('mmspd', 'imagecorruptions', 'numpy', 'opencv', 'torch',
                 'mmseg'):
        assert found[name] and found[name] != 'not installed', name
