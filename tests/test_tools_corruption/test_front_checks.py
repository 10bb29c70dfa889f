"""tools/test_corruption.py's checks before anything is built."""
from __future__ import annotations

import os

import pytest

from .conftest import load_tool


@pytest.fixture(scope='module')
def prepare_work_dir():
    return load_tool('test_corruption').prepare_work_dir


def test_work_dir_under_a_file_is_refused(tmp_path, prepare_work_dir):
    blocker = tmp_path / 'file'
    blocker.write_text('x')
    with pytest.raises(ValueError, match=r"is inside .*file.*, which is a "
                       'file, not a folder'):
        prepare_work_dir(str(blocker / 'sub' / 'work'))
    with pytest.raises(ValueError, match='is a file'):
        prepare_work_dir(str(blocker))


@pytest.mark.skipif(hasattr(os, 'geteuid') and os.geteuid() == 0,
                    reason='root writes to read-only folders anyway')
def test_read_only_work_dir_is_refused(tmp_path, prepare_work_dir):
    locked = tmp_path / 'ro'
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(ValueError, match='Cannot write results to '
                           'work dir'):
            prepare_work_dir(str(locked / 'work'))
    finally:
        locked.chmod(0o755)


def test_read_only_file_system_is_refused(tmp_path, prepare_work_dir):
    # /proc refuses new folders even for root.
    with pytest.raises(ValueError, match="Cannot write results to work dir "
                       "'/proc/mmspd_robustness'"):
        prepare_work_dir('/proc/mmspd_robustness')
