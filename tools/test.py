"""Test (and evaluate) a segmentor with mmspd's components registered.

The flags and behaviour are those of mmsegmentation 1.2.2's
``tools/test.py``, with these additions:

- importing :mod:`mmspd` registers its components and lets MMEngine read
  checkpoints under torch >= 2.6 (they hold SPD anchors in the optimizer
  state);
- ``--launcher pytorch|slurm|mpi`` also runs without CUDA (gloo);
- a missing or unreadable checkpoint, or missing test data, stops the run
  with an error that names the path and what to do.

Example::

    python tools/test.py CONFIG work_dirs/NAME/iter_80000.pth
    bash tools/dist_test.sh CONFIG CHECKPOINT 8
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
    load_tool_config,
    parse_runtime_args,
    setup_runtime,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line (``sys.argv`` when ``argv`` is None)."""
    parser = argparse.ArgumentParser(
        description='MMSeg test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help='if specified, the evaluation metric results will be dumped '
        'into the directory as json')
    parser.add_argument(
        '--out',
        type=str,
        help='The directory to save output prediction for offline evaluation')
    parser.add_argument(
        '--show', action='store_true', help='show prediction results')
    parser.add_argument(
        '--show-dir',
        help='directory where painted images will be saved. '
        'If specified, it will be automatically saved '
        'to the work_dir/timestamp/show_dir')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='the interval of show (s)')
    add_runtime_args(parser)
    parser.add_argument(
        '--tta', action='store_true', help='Test time augmentation')
    return parse_runtime_args(parser, argv)


def trigger_visualization_hook(cfg: Config,
                               args: argparse.Namespace) -> Config:
    """Turn on drawing (and showing or saving) in the visualization hook."""
    default_hooks = cfg.default_hooks
    if 'visualization' not in default_hooks:
        raise RuntimeError(
            '--show and --show-dir need a VisualizationHook in '
            "default_hooks, e.g. visualization=dict("
            "type='SegVisualizationHook').")
    visualization_hook = default_hooks['visualization']
    visualization_hook['draw'] = True
    if args.show:
        visualization_hook['show'] = True
        visualization_hook['wait_time'] = args.wait_time
    if args.show_dir:
        cfg.visualizer['save_dir'] = args.show_dir
    return cfg


def build_cfg(args: argparse.Namespace) -> Config:
    """Load the config and apply the command line, checking what it reads."""
    cfg = load_tool_config(args)

    cfg.load_from = check_checkpoint(args.checkpoint, 'checkpoint')
    check_data_paths(cfg, splits=('test', ))

    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)

    if args.tta:
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model

    if args.out is not None:
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True
    return cfg


def main(argv: list[str] | None = None) -> dict:
    """Test as the command line ``argv`` says; return the metrics."""
    args = parse_args(argv)
    cfg = build_cfg(args)
    # After --tta: a wrapped TTA model still holds the SyncBN configs.
    setup_runtime(cfg, args.launcher)
    runner = Runner.from_cfg(cfg)
    return runner.test()


if __name__ == '__main__':
    main()
