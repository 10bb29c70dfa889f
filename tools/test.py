"""Test (and evaluate) a segmentor: mmseg's ``tools/test.py`` with mmspd.

Flags and behaviour are those of the installed mmsegmentation's own
``tools/test.py`` (``mmseg/.mim/tools/test.py``), which this script runs
after ``import mmspd`` (see ``tools/train.py`` for what that adds; a
config without ``SafeLoadHook`` gets it, so that the checkpoint loads on
torch >= 2.6). ::

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out DIR] \\
        [--show] [--show-dir DIR] [--tta] [--cfg-options KEY=VALUE ...] \\
        [--launcher {none,pytorch,slurm,mpi}]
    bash tools/dist_test.sh CONFIG CHECKPOINT 8
"""
import os.path as osp
import sys

try:
    import mmspd  # registers mmspd's modules
except ImportError:  # a checkout that is not pip-installed
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
    import mmspd  # noqa: F401

from mmspd.utils import run_mmseg_tool

if __name__ == '__main__':
    run_mmseg_tool('test.py')
