"""Train a segmentor: mmseg's ``tools/train.py`` with mmspd imported.

Flags and behaviour are those of the installed mmsegmentation's own
``tools/train.py`` (``mmseg/.mim/tools/train.py``), which this script runs
after ``import mmspd``; mmseg's script trains mmspd's configs just as well,
since they import mmspd themselves (``custom_imports``). What this adds:
a config that does not import mmspd may still name its modules, a config
without ``SafeLoadHook`` (one of mmseg's model zoo, say) gets it, so that
``load_from`` and ``--resume`` read MMEngine checkpoints on torch >= 2.6,
and a missing ``pkg_resources`` (needed for ``mmseg::`` base configs) is
reported with the fix. A config inherits an mmspd config by
its path (``_base_ = ['<path>/configs/swin/<config>.py']``). ::

    python tools/train.py CONFIG [--work-dir DIR] [--resume] [--amp] \\
        [--cfg-options KEY=VALUE ...] [--launcher {none,pytorch,slurm,mpi}]
    bash tools/dist_train.sh CONFIG 8 --amp
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
    run_mmseg_tool('train.py')
