"""Evaluate a segmentation checkpoint on clean and corrupted test data.

Builds the model and loads CHECKPOINT once, evaluates the clean test set,
then every corruption at every severity (images corrupted on the fly by
``ImageCorruption``, seeded per image). After each condition the work dir
gets ``robustness.json``, ``robustness.csv``, ``robustness.md`` and
``robustness.png``; running the same command again skips the conditions
already there, so an interrupted run loses nothing. ::

    python tools/test_corruption.py CONFIG CHECKPOINT --work-dir DIR
    python tools/test_corruption.py CONFIG CHECKPOINT \\
        --corruptions benchmark --severities 1 3 5 --seed 0 --work-dir DIR
    tools/dist_test_corruption.sh CONFIG CHECKPOINT 8 --work-dir DIR
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import sys

# Run from a checkout without installing the package.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmspd.corruptions import CORRUPTION_GROUPS, SEVERITIES
from mmspd.utils import (
    add_runtime_args,
    load_tool_config,
    parse_runtime_args,
)


def parse_args(argv=None) -> argparse.Namespace:
    groups = ', '.join(f'{name} ({len(members)})'
                       for name, members in CORRUPTION_GROUPS.items())
    parser = argparse.ArgumentParser(
        description='Test a segmentation model on corrupted images '
        '(ImageNet-C corruptions) and report mIoU, mPC and rPC')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--corruptions',
        nargs='+',
        default=['default'],
        metavar='NAME',
        help='corruption names and/or groups: ' + groups +
        ' (default: default = gaussian_noise defocus_blur fog brightness)')
    parser.add_argument(
        '--severities',
        nargs='+',
        type=int,
        default=list(SEVERITIES),
        metavar='S',
        help='severities, 1 to 5 (default: all)')
    parser.add_argument(
        '--seed',
        type=int,
        default=0,
        help='corruption seed; each image is seeded from (seed, file name, '
        'corruption, severity) (default: 0)')
    parser.add_argument(
        '--work-dir',
        help='where results and logs go (default: robustness/ under the '
        "config's work_dir, else work_dirs/<config name>/robustness); "
        're-using it resumes')
    add_runtime_args(parser)
    return parse_runtime_args(parser, argv)


def main(argv=None) -> int:
    args = parse_args(argv)

    # Everything that can be wrong with the arguments fails here, before a
    # model is built or a work dir written.
    from mmspd.evaluation import (
        OUTPUT_FILES,
        evaluate_robustness,
        fingerprint_test_setup,
        load_for_resume,
        plan_conditions,
    )
    from mmspd.utils.launch import (
        check_checkpoint,
        check_data_paths,
        setup_runtime,
    )
    try:
        conditions = plan_conditions(args.corruptions, args.severities)
        if not osp.isfile(args.config):
            raise FileNotFoundError(
                f'Config not found: {args.config!r} does not exist')
        check_checkpoint(args.checkpoint)
    except (OSError, ValueError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 2

    cfg = load_tool_config(args, 'robustness')
    cfg.load_from = args.checkpoint
    cfg.resume = False
    meta = {
        'config': osp.abspath(args.config),
        'checkpoint': osp.abspath(args.checkpoint),
        'test_setup': fingerprint_test_setup(cfg),
        'corruptions': list(dict.fromkeys(c for c, _ in conditions[1:])),
        'severities': sorted({s for _, s in conditions[1:]}),
    }
    try:
        for key in ('test_dataloader', 'test_cfg', 'test_evaluator'):
            if not cfg.get(key):
                raise ValueError(f'The config has no {key}; '
                                 'tools/test_corruption.py evaluates the '
                                 'test set')
        check_data_paths(cfg, splits=('test', ))
        # A work dir holding another run's results must not get this run's
        # logs either, so this is checked before the Runner exists.
        earlier = load_for_resume(
            osp.join(cfg.work_dir, OUTPUT_FILES['json']),
            dict(meta, seed=args.seed, key='name'))
    except (OSError, ValueError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    if all(earlier.has(*condition) for condition in conditions):
        # Nothing to evaluate: refresh the reports without building a model.
        if int(os.environ.get('RANK', '0')) == 0:
            earlier.save(cfg.work_dir)
        print(f'All {len(conditions)} conditions are already in '
              f'{cfg.work_dir}; reports rewritten.')
        return 0

    setup_runtime(cfg, args.launcher)

    from mmengine.runner import Runner
    runner = Runner.from_cfg(cfg)
    evaluate_robustness(
        runner,
        conditions,
        cfg.work_dir,
        meta=meta,
        seed=args.seed,
        key='name')
    return 0


if __name__ == '__main__':
    sys.exit(main())
