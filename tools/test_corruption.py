"""Evaluate a segmentation checkpoint on clean and corrupted test data.

A command line for ``CorruptionTestLoop``: it sets
``test_cfg.type='CorruptionTestLoop'`` with the options below and runs
the test as mmseg's ``tools/test.py`` does, after checking the arguments,
the checkpoint file, the test data and the work dir. The same run through
mmseg's own tools (one process or many)::

    python tools/test.py CONFIG CHECKPOINT --work-dir DIR --cfg-options \\
        test_cfg.type=CorruptionTestLoop 'test_cfg.severities=[1,3,5]'
    bash tools/dist_test.sh CONFIG CHECKPOINT 8 --work-dir DIR \\
        --cfg-options test_cfg.type=CorruptionTestLoop

Usage::

    python tools/test_corruption.py CONFIG CHECKPOINT --work-dir DIR
    python tools/test_corruption.py CONFIG CHECKPOINT \\
        --corruptions benchmark --severities 1 3 5 --seed 0 --work-dir DIR
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import sys

# Run from a checkout without installing the package.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.config import DictAction

from mmspd.corruptions import CORRUPTION_GROUPS, KEYS

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
        'name (file name only) or path (default: relative)')
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
        'after corruption | ground truth | prediction) under this folder')
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


def check_checkpoint_file(path: str) -> None:
    """Raise FileNotFoundError / ValueError unless ``path`` is a readable
    file (paths with a scheme are left to MMEngine)."""
    if '://' in path:  # left to MMEngine
        return
    if not osp.exists(path):
        raise FileNotFoundError(
            f'checkpoint not found: {path!r} does not exist')
    if osp.isdir(path):
        raise ValueError(f'checkpoint {path!r} is a directory; expected a '
                         'checkpoint file (.pth) written by torch.save')
    try:
        with open(path, 'rb') as f:
            f.read(1)
    except OSError as error:
        raise ValueError(f'checkpoint {path!r} cannot be read: '
                         f'{error.strerror or error}') from None


def prepare_work_dir(work_dir: str,
                     option: str = '--work-dir',
                     what: str = 'Work dir',
                     contents: str = 'results') -> None:
    """Create ``work_dir`` (set by ``option``; ``what`` it is, for
    ``contents``) or raise a ValueError naming it: a file, under a file,
    or a folder that cannot be created or written to."""
    path = osp.abspath(work_dir)
    parent = path
    while parent and not osp.exists(parent):
        parent = osp.dirname(parent)
    if parent and not osp.isdir(parent):
        where = 'is' if parent == path else f'is inside {parent!r}, which is'
        raise ValueError(f'{what} {work_dir!r} {where} a file, not a '
                         f'folder; pass another {option}')
    probe = osp.join(path, f'.write_test.{os.getpid()}')
    try:
        os.makedirs(path, exist_ok=True)
        with open(probe, 'w') as f:
            f.write('ok')
        os.remove(probe)
    except OSError as error:
        raise ValueError(
            f'Cannot write {contents} to {what.lower()} {work_dir!r}: '
            f'{error.strerror or error}. Pass a writable {option}') \
            from None


def build_test_set(cfg):
    """The config's test set, or a clear error on missing data."""
    from mmengine.registry import DATASETS, DefaultScope
    dataset = cfg.test_dataloader.get('dataset') or {}
    root = dataset.get('data_root')
    if root and '://' not in root and not osp.isdir(root):
        raise FileNotFoundError(
            f'Test data not found: data_root {root!r} does not exist. '
            'Point the config at the data with --cfg-options '
            'test_dataloader.dataset.data_root=PATH')
    if 'dataset' not in dataset and 'datasets' not in dataset:
        # Not packed: an empty split file makes an empty set, not an error.
        dataset = dict(dataset, serialize_data=False)
    with DefaultScope.overwrite_default_scope(
            cfg.get('default_scope') or 'mmseg'):
        try:
            return DATASETS.build(dataset)
        except (OSError, ValueError) as error:
            raise ValueError(f'Cannot load the test set: {error}') from None


def load_config(args):
    """The config with the overrides, work dir, checkpoint and loop."""
    from mmengine.config import Config
    if not osp.isfile(args.config):
        raise FileNotFoundError(
            f'Config not found: {args.config!r} does not exist')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    for key in ('test_dataloader', 'test_cfg', 'test_evaluator'):
        if not cfg.get(key):
            raise ValueError(f'The config has no {key}; the benchmark '
                             'evaluates the test set')
    if args.work_dir is None:
        root = cfg.get('work_dir', None) or osp.join(
            './work_dirs', osp.splitext(osp.basename(args.config))[0])
        args.work_dir = osp.join(root, 'robustness')
    cfg.work_dir = args.work_dir
    cfg.load_from = args.checkpoint
    cfg.resume = False
    cfg.launcher = args.launcher
    cfg.test_cfg.update(
        type='CorruptionTestLoop', corruptions=args.corruptions,
        severities=args.severities, seed=args.seed, key=args.key,
        overwrite=args.overwrite, show_dir=args.show_dir,
        show_num=args.show_num)
    # mmspd's configs load MMEngine checkpoints on torch >= 2.6 through
    # SafeLoadHook; a config of the model zoo gets it here, as it does in
    # tools/train.py and tools/test.py.
    from mmspd.utils.mmseg_tools import add_safe_load_hook
    add_safe_load_hook(cfg)
    return cfg


def setup_cpu_launcher(cfg) -> None:
    """``--launcher pytorch`` without CUDA: a gloo process group and DDP
    without devices over the model with ``SyncBN`` reverted to ``BN``
    (DDP refuses SyncBN on the CPU), in place."""
    import torch
    import torch.distributed as dist
    from mmengine.model import MMDistributedDataParallel, revert_sync_batchnorm
    from mmengine.registry import MODEL_WRAPPERS

    if cfg.launcher == 'none' or torch.cuda.is_available():
        return
    if cfg.launcher != 'pytorch':
        raise ValueError(f'--launcher {cfg.launcher} needs CUDA; without a '
                         'GPU use torchrun (--launcher pytorch)')
    missing = [name for name in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR',
                                 'MASTER_PORT') if name not in os.environ]
    if missing:
        raise RuntimeError(
            f'--launcher pytorch needs {", ".join(missing)} in the '
            'environment; start the run with torchrun, e.g. '
            'tools/dist_run.sh test_corruption.py GPUS ...')

    @MODEL_WRAPPERS.register_module(force=True)
    class CPUDistributedDataParallel(MMDistributedDataParallel):

        def __init__(self, module, **kwargs):
            kwargs['device_ids'] = None  # MMEngine's is a CUDA device
            super().__init__(module=revert_sync_batchnorm(module), **kwargs)

    if not dist.is_initialized():
        dist.init_process_group(backend='gloo', init_method='env://')
    cfg.model_wrapper_cfg = dict(
        cfg.get('model_wrapper_cfg') or dict(broadcast_buffers=False),
        type='CPUDistributedDataParallel')


def main(argv=None) -> int:
    args = parse_args(argv)
    from mmengine.hooks import Hook
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    from mmspd.evaluation import WorkDirBusy, plan_conditions, scan_test_data

    class LoadWatch(Hook):
        """Tells a checkpoint that fails to load from other errors."""
        loading = False

        def before_run(self, runner):
            self.loading = True  # Runner.test loads right after

        def after_load_checkpoint(self, runner, checkpoint):
            self.loading = False

    try:
        plan_conditions(args.corruptions, args.severities)
        cfg = load_config(args)
        check_checkpoint_file(args.checkpoint)
        # Checked before anything is built or written; the loop checks
        # again (and hashes the data) when the runner builds it.
        scan_test_data(build_test_set(cfg), fingerprint=False)
        prepare_work_dir(cfg.work_dir)
        if args.show_dir:
            prepare_work_dir(args.show_dir, '--show-dir', 'Show dir',
                             'samples')
        setup_cpu_launcher(cfg)
    except (OSError, ValueError, RuntimeError) as error:
        return _fail(error)
    # As mmseg's tools/test.py builds it (a config may name its runner).
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else \
        Runner.from_cfg(cfg)
    watch = LoadWatch()
    runner.register_hook(watch, 'LOWEST')
    try:
        runner.test()
    except (ValueError, WorkDirBusy) as error:
        return _fail(error)
    except Exception as error:
        if not watch.loading:
            raise
        reason = (str(error).strip().splitlines() or [''])[0][:200]
        return _fail(
            f'checkpoint {args.checkpoint!r} cannot be loaded '
            f'({type(error).__name__}: {reason}); expected a checkpoint '
            'file written by torch.save, such as the .pth files of '
            'tools/train.py')
    results = runner.test_loop.results
    nan = [] if results is None else [
        'clean' if s is None else f'{c}-{s}'
        for c, s in runner.test_loop.conditions
        if results.get(c, s) is not None and not results.has(c, s)]
    if nan:
        return _fail(f'mIoU is NaN for {", ".join(nan)} (no pixel with a '
                     'valid label?): not counted in mPC; a later run '
                     'evaluates them again', 1)
    return 0


def _fail(error, status: int = 2) -> int:
    print(f'error: {error}', file=sys.stderr)
    return status


if __name__ == '__main__':
    sys.exit(main())
