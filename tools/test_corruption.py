"""Evaluate a segmentation checkpoint on clean and corrupted test data.

Builds the model and loads CHECKPOINT once, evaluates the clean test set,
then every corruption at every severity (images corrupted on the fly by
``ImageCorruption``, seeded per image). After each condition the work dir
gets ``robustness.json``, ``robustness.csv``, ``robustness.md`` and
``robustness.png``; running the same command again skips the conditions
already there (if checkpoint contents, config, data, seed and versions are
unchanged), so an interrupted run loses nothing. ::

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

from mmengine.config import DictAction  # noqa: E402

from mmspd.corruptions import CORRUPTION_GROUPS, KEYS  # noqa: E402

LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')


def parse_args(argv=None) -> argparse.Namespace:
    groups = ', '.join(f'{name} ({len(members)})'
                       for name, members in CORRUPTION_GROUPS.items())
    parser = argparse.ArgumentParser(
        description='Test a segmentation model on corrupted images '
        '(ImageNet-C corruptions) and report mIoU, mPC and rPC')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--corruptions', nargs='+', default=['default'], metavar='NAME',
        help='corruption names and/or groups: ' + groups +
        ' (default: default = gaussian_noise defocus_blur fog brightness). '
        'mPC averages the benchmark corruptions; holdout ones are '
        'reported apart')
    parser.add_argument(
        '--severities', nargs='+', type=int, default=[1, 2, 3, 4, 5],
        metavar='S',
        help='severities 1 to 5; 0 means clean, which is always evaluated '
        '(default: 1 2 3 4 5)')
    parser.add_argument(
        '--seed', type=int, default=0,
        help='corruption seed; each image is seeded from (seed, its path '
        'relative to the dataset root, corruption, severity) (default: 0)')
    parser.add_argument(
        '--key', choices=KEYS, default='relative',
        help='what of an image path seeds it: relative (to the data root), '
        'name (file name only, as mmspd seeded before) or path '
        '(default: relative)')
    parser.add_argument(
        '--work-dir',
        help='where results and logs go (default: robustness/ under the '
        "config's work_dir, else work_dirs/<config name>/robustness); "
        're-using it resumes')
    parser.add_argument(
        '--overwrite', action='store_true',
        help='discard results already in the work dir instead of resuming')
    parser.add_argument(
        '--show-dir',
        help='save the first --show-num images of every condition (input '
        'after corruption | prediction | ground truth) under this folder')
    parser.add_argument(
        '--show-num', type=int, default=3,
        help='images per condition for --show-dir (default: 3)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config, key=value as in '
        'tools/test.py')
    parser.add_argument(
        '--launcher', choices=LAUNCHERS, default='none', help='job launcher')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if args.show_num < 1:
        parser.error(f'--show-num must be at least 1, got {args.show_num}')
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def _fail(error: BaseException, status: int = 2) -> int:
    print(f'error: {error}', file=sys.stderr)
    return status


def _prepare(args, conditions):
    """Config, metadata and (main process) earlier results, all checked
    before a model is built."""
    from mmspd.evaluation import (
        OUTPUT_FILES,
        RobustnessResults,
        WorkDirLock,
        check_checkpoint_file,
        file_sha256,
        fingerprint_test_setup,
        load_config,
        load_for_resume,
        now,
        prepare_work_dir,
        scan_test_data,
        versions,
    )
    if not osp.isfile(args.config):
        raise FileNotFoundError(
            f'Config not found: {args.config!r} does not exist')
    check_checkpoint_file(args.checkpoint)
    cfg = load_config(args.config, args.cfg_options, args.work_dir)
    cfg.load_from = args.checkpoint
    cfg.resume = False
    for key in ('test_dataloader', 'test_cfg', 'test_evaluator'):
        if not cfg.get(key):
            raise ValueError(f'The config has no {key}; '
                             'tools/test_corruption.py evaluates the test '
                             'set')
    main = int(os.environ.get('RANK', '0')) == 0
    data = scan_test_data(cfg, fingerprint=main)
    meta = {
        'config': osp.abspath(args.config),
        'checkpoint': osp.abspath(args.checkpoint),
        'test_setup': fingerprint_test_setup(cfg),
        'images': data['images'],
        'corruptions': list(dict.fromkeys(c for c, _ in conditions[1:])),
        'severities': sorted({s for _, s in conditions[1:]}),
        'requested': [f'{c}-{s}' for c, s in conditions[1:]],
        'seed': args.seed,
        'key': args.key,
        'world_size': int(os.environ.get('WORLD_SIZE', '1')),
        'started': now(),
    }
    if not main:
        return cfg, meta, None, None
    meta.update(checkpoint_sha256=file_sha256(args.checkpoint),
                data=data['fingerprint'], versions=versions())
    # Created and locked before anything is read from or written to it.
    prepare_work_dir(cfg.work_dir)
    if args.show_dir:
        # Checked now, not when the first sample is saved after the clean
        # pass.
        prepare_work_dir(args.show_dir, '--show-dir', 'Show dir', 'samples')
    lock = WorkDirLock(cfg.work_dir).acquire()
    try:
        path = osp.join(cfg.work_dir, OUTPUT_FILES['json'])
        results = RobustnessResults(meta) if args.overwrite else \
            load_for_resume(path, meta)
    except BaseException:
        lock.release()
        raise
    return cfg, meta, results, lock


def main(argv=None) -> int:
    args = parse_args(argv)
    from mmspd.evaluation import (
        ShowSamplesHook,
        evaluate_robustness,
        plan_conditions,
        setup_launcher,
    )
    try:
        conditions = plan_conditions(args.corruptions, args.severities)
        cfg, meta, results, lock = _prepare(args, conditions)
    except (OSError, ValueError, RuntimeError) as error:
        return _fail(error)
    try:
        if results is not None and meta['world_size'] == 1 and all(
                results.has(*condition) for condition in conditions):
            # Nothing to evaluate: refresh the reports, build no model.
            results.save(cfg.work_dir)
            print(f'All {len(conditions)} conditions are already in '
                  f'{cfg.work_dir}; reports rewritten.')
            return 0
        try:
            setup_launcher(cfg, args.launcher)
        except (ValueError, RuntimeError) as error:
            return _fail(error)
        from mmengine.runner import Runner
        runner = Runner.from_cfg(cfg)
        show = None
        if args.show_dir:
            show = ShowSamplesHook(args.show_dir, args.show_num)
            runner.register_hook(show)
        try:
            results = evaluate_robustness(
                runner, conditions, cfg.work_dir, meta=meta, seed=args.seed,
                key=args.key, results=results, show=show)
        except ValueError as error:
            return _fail(error)
        except (OSError, AssertionError) as error:
            if isinstance(error, AssertionError) and \
                    'failed to load' not in str(error):
                raise
            return _fail(f'{error} (while evaluating; the results so far '
                         f'are in {cfg.work_dir})', 1)
    finally:
        if lock is not None:
            lock.release()
    nan = [('clean' if s is None else f'{c}-{s}')
           for c, s in conditions
           if results.get(c, s) is not None and not results.has(c, s)]
    if nan:
        return _fail(f'mIoU is NaN for {", ".join(nan)} (no pixel with a '
                     'valid label?): not counted in mPC; a later run '
                     'evaluates them again', 1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
