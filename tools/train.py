"""Train a segmentor with mmspd's optimizers registered.

The flags and behaviour are those of mmsegmentation 1.2.2's
``tools/train.py``, with these additions:

- importing :mod:`mmspd` registers its optimizers, optimizer wrappers, hooks
  and transforms, and lets ``--resume`` read MMEngine checkpoints under
  torch >= 2.6;
- ``--launcher pytorch|slurm|mpi`` also runs without CUDA (gloo);
- ``--amp`` turns ``SPDOptimWrapper`` into ``AmpSPDOptimWrapper`` (and
  ``OptimWrapper`` into ``AmpOptimWrapper``), and needs a CUDA GPU;
- missing data, split files or checkpoints, and a config that asks for SPD
  but builds a plain optimizer, stop the run with an error that says what
  to fix, before anything is trained.

Example::

    python tools/train.py CONFIG [--work-dir DIR] [--resume]
    bash tools/dist_train.sh CONFIG 8 --amp

with CONFIG e.g.
``configs/swin/upernet_swin-t_adamspd_8xb2-80k_pascal-context-59-480x480.py``.
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys

try:
    import mmspd  # registers mmspd, applies the checkpoint fix
except ImportError:  # run from a source checkout without installing
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
    import mmspd  # noqa: F401

from mmengine.config import Config
from mmengine.runner import Runner

from mmspd.utils import (
    add_runtime_args,
    check_checkpoint,
    check_data_paths,
    check_pretrained_checkpoints,
    check_spd_config,
    check_spd_optim_wrapper,
    enable_amp,
    load_tool_config,
    parse_runtime_args,
    setup_runtime,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line (``sys.argv`` when ``argv`` is None)."""
    parser = argparse.ArgumentParser(description='Train a segmentor')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        action='store_true',
        default=False,
        help='resume from the latest checkpoint in the work_dir '
        'automatically (or from load_from, when the config sets it)')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic-mixed-precision training (CUDA only); SPD '
        'wrappers become their AMP variants')
    add_runtime_args(parser)
    return parse_runtime_args(parser, argv)


def build_cfg(args: argparse.Namespace) -> Config:
    """Load the config and apply the command line, checking what it reads."""
    cfg = load_tool_config(args)

    if args.amp:
        enable_amp(cfg)
    cfg.resume = args.resume

    # Fail before the Runner writes a work dir or a process group waits.
    check_spd_config(cfg)
    check_data_paths(cfg, splits=('train', 'val'))
    check_pretrained_checkpoints(cfg)
    if cfg.get('load_from'):
        check_checkpoint(cfg.load_from, 'load_from checkpoint')
    return cfg


def main(argv: list[str] | None = None) -> Runner:
    """Train as the command line ``argv`` says; return the used Runner."""
    args = parse_args(argv)
    cfg = build_cfg(args)
    setup_runtime(cfg, args.launcher)

    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        from mmseg.registry import RUNNERS
        runner = RUNNERS.build(cfg)

    # Runner.train() keeps an optimizer wrapper that is already built, so
    # building it here lets the SPD check run before any iteration.
    if runner.optim_wrapper is not None:
        runner.optim_wrapper = runner.build_optim_wrapper(
            runner.optim_wrapper)
        check_spd_optim_wrapper(cfg, runner.optim_wrapper)

    runner.train()
    return runner


if __name__ == '__main__':
    main()
