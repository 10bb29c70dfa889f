"""Runtime helpers shared by ``tools/train.py``, ``tools/test.py`` and
``tools/test_corruption.py``.

They prepare a parsed MMEngine config before the ``Runner`` is built:

- :func:`add_runtime_args`, :func:`parse_runtime_args` and
  :func:`load_tool_config` give the tools the same ``--cfg-options``,
  ``--launcher`` and work-dir handling as mmseg's.
- :func:`setup_runtime` lets ``--launcher pytorch|slurm|mpi`` run on
  machines without CUDA (gloo process group, DDP without ``device_ids``,
  ``SyncBN`` replaced by ``BN``), and leaves GPU runs to MMEngine.
- :func:`enable_amp` implements ``--amp`` for both MMEngine's and mmspd's
  optimizer wrappers.
- :func:`check_checkpoint`, :func:`check_pretrained_checkpoints` and
  :func:`check_data_paths` turn a missing file into an error that names
  the path and what to do, before any work dir or log is written.
- :func:`config_requests_spd`, :func:`check_spd_config` and
  :func:`check_spd_optim_wrapper` catch a config that asks for SPD but
  builds a plain optimizer.
"""
from __future__ import annotations

import argparse
import datetime
import logging
import os
import os.path as osp
import subprocess
import zipfile
from typing import Any, Iterable

import torch
import torch.distributed as torch_dist
from mmengine.config import Config, DictAction
from mmengine.logging import print_log

#: Launchers accepted by ``tools/train.py --launcher``.
LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')

#: Optimizer wrapper types ``--amp`` converts, and their AMP variants.
AMP_WRAPPERS = {
    'OptimWrapper': 'AmpOptimWrapper',
    'SPDOptimWrapper': 'AmpSPDOptimWrapper',
}

#: How to obtain each dataset type's files, quoted in missing-data errors.
PREPARE_HINTS = {
    name: 'python tools/prepare_pascal_context.py VOC_ROOT --annotations '
    'DIR --labels labels.txt (see its --help)'
    for name in ('PascalContextDataset', 'PascalContextDataset59')
}

def add_runtime_args(parser: argparse.ArgumentParser) -> None:
    """Add ``--cfg-options``, ``--launcher`` and ``--local-rank``."""
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file. If the value to '
        'be overwritten is a list, it should be like key="[a,b]" or key=a,b '
        'It also allows nested list/tuple values, e.g. key="[(a,b),(c,d)]" '
        'Note that the quotation marks are necessary and that no white space '
        'is allowed.')
    parser.add_argument(
        '--launcher',
        choices=list(LAUNCHERS),
        default='none',
        help='job launcher')
    # torch.distributed.launch passes --local-rank (torch >= 2.0) or
    # --local_rank (older); torchrun sets LOCAL_RANK instead.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_runtime_args(parser: argparse.ArgumentParser,
                       argv: list[str] | None = None) -> argparse.Namespace:
    """Parse ``argv`` and export the local rank as MMEngine expects it."""
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def load_tool_config(args: argparse.Namespace, *subdirs: str) -> Config:
    """Load ``args.config`` with ``--cfg-options`` and the work dir applied.

    The work dir is ``--work-dir``, else ``<the config's work_dir>/<subdirs>``,
    else ``./work_dirs/<config name>/<subdirs>``.
    """
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    else:
        root = cfg.get('work_dir', None) or osp.join(
            './work_dirs',
            osp.splitext(osp.basename(args.config))[0])
        cfg.work_dir = osp.join(root, *subdirs)
    return cfg


_DATALOADERS = {
    'train': 'train_dataloader',
    'val': 'val_dataloader',
    'test': 'test_dataloader',
}


def type_name(type_: Any) -> str:
    """Name of a config ``type`` given as a string or as a class."""
    if isinstance(type_, str):
        return type_
    return getattr(type_, '__name__', str(type_))


def _has_scheme(path: str) -> bool:
    # ``s3://``, ``http://``, ``open-mmlab://`` ...: read by MMEngine's file
    # backends or checkpoint loaders, which report their own errors.
    return '://' in path


# ---------------------------------------------------------------------------
# Distributed runs without CUDA
# ---------------------------------------------------------------------------


def _require_env(names: Iterable[str], launcher: str) -> dict[str, str]:
    missing = [name for name in names if name not in os.environ]
    if missing:
        raise RuntimeError(
            f'--launcher {launcher} needs the environment variables '
            f'{", ".join(missing)}, which are not set. Start the run with '
            'tools/dist_train.sh / tools/dist_test.sh (torchrun) or '
            'tools/slurm_train.sh / tools/slurm_test.sh, or use '
            '--launcher none for a single process.')
    return {name: os.environ[name] for name in names}


def _export_slurm_env() -> None:
    """Fill torch's ``env://`` variables from Slurm's, as MMEngine does."""
    env = _require_env(('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST'),
                       'slurm')
    if 'MASTER_ADDR' not in os.environ:
        os.environ['MASTER_ADDR'] = subprocess.getoutput(
            f'scontrol show hostname {env["SLURM_NODELIST"]} | head -n1')
    os.environ.setdefault('MASTER_PORT', '29500')
    os.environ['WORLD_SIZE'] = env['SLURM_NTASKS']
    os.environ['RANK'] = env['SLURM_PROCID']
    os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')


def _export_mpi_env() -> None:
    """Fill torch's ``env://`` variables from Open MPI's."""
    env = _require_env(('OMPI_COMM_WORLD_RANK', 'OMPI_COMM_WORLD_SIZE',
                        'MASTER_ADDR'), 'mpi')
    os.environ.setdefault('MASTER_PORT', '29500')
    os.environ['WORLD_SIZE'] = env['OMPI_COMM_WORLD_SIZE']
    os.environ['RANK'] = env['OMPI_COMM_WORLD_RANK']
    os.environ['LOCAL_RANK'] = os.environ.get('OMPI_COMM_WORLD_LOCAL_RANK',
                                              '0')


def init_cpu_process_group(launcher: str,
                           timeout: float | None = None) -> None:
    """Initialise a gloo process group from the launcher's environment.

    MMEngine's ``init_dist`` calls ``torch.cuda.set_device``, which fails
    without CUDA; a process group that already exists makes the ``Runner``
    skip it.

    Args:
        launcher (str): ``'pytorch'`` (torchrun's ``RANK``, ``WORLD_SIZE``,
            ``MASTER_ADDR``, ``MASTER_PORT``), ``'slurm'`` or ``'mpi'``.
        timeout (float, optional): Collective timeout in seconds. Defaults
            to None (torch's default).
    """
    if torch_dist.is_available() and torch_dist.is_initialized():
        return
    if launcher == 'pytorch':
        _require_env(('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'),
                     launcher)
    elif launcher == 'slurm':
        _export_slurm_env()
    elif launcher == 'mpi':
        _export_mpi_env()
    else:
        raise ValueError(f'Invalid launcher {launcher!r}; expected one of '
                         f'{", ".join(LAUNCHERS[1:])}.')
    kwargs = {}
    if timeout is not None:
        kwargs['timeout'] = datetime.timedelta(seconds=timeout)
    torch_dist.init_process_group(
        backend='gloo',
        init_method='env://',
        rank=int(os.environ['RANK']),
        world_size=int(os.environ['WORLD_SIZE']),
        **kwargs)


def replace_norm_type(cfg: Any, old: str = 'SyncBN', new: str = 'BN') -> int:
    """Replace ``type=old`` by ``type=new`` in nested config dicts, in place.

    Args:
        cfg: A (Config)dict, list or tuple, searched recursively.
        old (str): Type to replace. Defaults to ``'SyncBN'``.
        new (str): Replacement type. Defaults to ``'BN'``.

    Returns:
        int: Number of replacements made.
    """
    count = 0
    if isinstance(cfg, dict):
        if cfg.get('type') == old:
            cfg['type'] = new
            count += 1
        for value in cfg.values():
            count += replace_norm_type(value, old, new)
    elif isinstance(cfg, (list, tuple)):
        for value in cfg:
            count += replace_norm_type(value, old, new)
    return count


def _is_ddp_type(type_: Any) -> bool:
    import mmengine.model  # noqa: F401  (registers MMEngine's wrappers)
    from mmengine.registry import MODEL_WRAPPERS
    from torch.nn.parallel import DistributedDataParallel
    cls = MODEL_WRAPPERS.get(type_) if isinstance(type_, str) else type_
    return isinstance(cls, type) and issubclass(cls,
                                                DistributedDataParallel)


def setup_runtime(cfg: Config, launcher: str = 'none') -> None:
    """Prepare ``cfg`` for the ``Runner`` under ``launcher``, in place.

    Sets ``cfg.launcher``. With a distributed launcher and no CUDA device it
    also initialises a gloo process group from the launcher's environment,
    wraps the model in ``MMDistributedDataParallel`` without ``device_ids``
    and turns every ``SyncBN`` in ``cfg.model`` into ``BN`` (SyncBN needs
    CUDA). With CUDA, or with ``launcher='none'``, MMEngine's own setup is
    left alone.

    Args:
        cfg (Config): The parsed config.
        launcher (str): One of :data:`LAUNCHERS`. Defaults to ``'none'``.
    """
    if launcher not in LAUNCHERS:
        raise ValueError(f'Invalid launcher {launcher!r}; expected one of '
                         f'{", ".join(LAUNCHERS)}.')
    cfg.launcher = launcher
    if launcher == 'none' or torch.cuda.is_available():
        return

    dist_cfg = cfg.get('env_cfg', {}).get('dist_cfg', {})
    init_cpu_process_group(launcher, timeout=dist_cfg.get('timeout'))

    wrapper_cfg = cfg.get('model_wrapper_cfg') or {}
    if not wrapper_cfg:
        # MMEngine's defaults for a config without model_wrapper_cfg.
        wrapper_cfg.update(
            type='MMDistributedDataParallel',
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper_cfg.setdefault('type', 'MMDistributedDataParallel')
    if _is_ddp_type(wrapper_cfg['type']):
        # MMEngine passes device_ids=[LOCAL_RANK], which DDP reads as a CUDA
        # device; None keeps the module on the CPU.
        wrapper_cfg['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper_cfg

    replaced = replace_norm_type(cfg.model)
    if replaced:
        print_log(
            f'No CUDA device: replaced {replaced} SyncBN norm config(s) in '
            'the model by BN for CPU distributed training.',
            logger='current',
            level=logging.WARNING)
    if cfg.get('sync_bn') is not None:
        print_log(
            f'No CUDA device: ignoring sync_bn={cfg.sync_bn!r}.',
            logger='current',
            level=logging.WARNING)
        cfg.sync_bn = None


# ---------------------------------------------------------------------------
# --amp
# ---------------------------------------------------------------------------


def enable_amp(cfg: Config) -> None:
    """Switch ``cfg.optim_wrapper`` to automatic mixed precision, in place.

    ``OptimWrapper`` becomes ``AmpOptimWrapper`` and ``SPDOptimWrapper``
    becomes ``AmpSPDOptimWrapper``, both with dynamic loss scaling; a config
    already using an AMP wrapper is kept with a warning.

    Args:
        cfg (Config): The parsed config.

    Raises:
        RuntimeError: If no CUDA device is available.
        ValueError: If the config's optimizer wrapper has no AMP variant.
    """
    if not torch.cuda.is_available():
        raise RuntimeError(
            '--amp needs a CUDA GPU, but torch.cuda.is_available() is False. '
            'Drop --amp to train in float32.')
    wrapper_type = type_name(cfg.optim_wrapper.get('type', 'OptimWrapper'))
    if wrapper_type in AMP_WRAPPERS.values():
        print_log(
            'AMP training is already enabled in your config.',
            logger='current',
            level=logging.WARNING)
        return
    if wrapper_type not in AMP_WRAPPERS:
        raise ValueError(
            f'--amp cannot convert optim_wrapper.type={wrapper_type!r}; it '
            f'supports {", ".join(AMP_WRAPPERS)} (converted to '
            f'{", ".join(AMP_WRAPPERS.values())}).')
    cfg.optim_wrapper.type = AMP_WRAPPERS[wrapper_type]
    cfg.optim_wrapper.loss_scale = 'dynamic'


# ---------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------


def check_checkpoint(path: str, what: str = 'checkpoint') -> str:
    """Check that ``path`` is a readable PyTorch checkpoint file.

    Only the file's existence, permissions and container format (zip as
    written by ``torch.save``, or a legacy pickle) are checked; nothing is
    loaded. Paths with a scheme (``https://``, ``s3://``, ...) are left to
    MMEngine's loaders.

    Args:
        path (str): The checkpoint path.
        what (str): What the file is, for the error message. Defaults to
            ``'checkpoint'``.

    Returns:
        str: ``path`` unchanged.

    Raises:
        FileNotFoundError: If the file does not exist.
        PermissionError: If it cannot be read.
        ValueError: If it is a directory or not a PyTorch checkpoint.
    """
    if _has_scheme(path):
        return path
    if not osp.exists(path):
        raise FileNotFoundError(f'{what} not found: {path!r} does not exist.')
    if osp.isdir(path):
        raise ValueError(f'{what} {path!r} is a directory; expected a '
                         'checkpoint file (.pth) written by torch.save.')
    if not os.access(path, os.R_OK):
        raise PermissionError(f'{what} {path!r} is not readable.')
    with open(path, 'rb') as f:
        head = f.read(2)
    # Legacy torch.save files start with a pickle protocol opcode (0x80).
    if not (head[:1] == b'\x80' or zipfile.is_zipfile(path)):
        raise ValueError(
            f'{what} {path!r} is not a PyTorch checkpoint (neither a zip '
            'archive written by torch.save nor a pickle); the file may be '
            'truncated or of another format.')
    return path


def _pretrained_entries(cfg: Any, key: str) -> list[tuple[str, str]]:
    """``(config key, checkpoint)`` for every ``Pretrained`` init_cfg."""
    found = []
    if isinstance(cfg, dict):
        if (type_name(cfg.get('type')) == 'Pretrained'
                and isinstance(cfg.get('checkpoint'), str)):
            found.append((f'{key}.checkpoint', cfg['checkpoint']))
        for name, value in cfg.items():
            found += _pretrained_entries(value, f'{key}.{name}')
    elif isinstance(cfg, (list, tuple)):
        for index, value in enumerate(cfg):
            found += _pretrained_entries(value, f'{key}[{index}]')
    return found


def check_pretrained_checkpoints(cfg: Config) -> None:
    """Check every ``init_cfg=dict(type='Pretrained')`` file in the model.

    The ``Runner`` loads them in ``train()`` before ``load_from`` and
    ``resume``, so they must exist whenever training starts.

    Args:
        cfg (Config): The parsed config.

    Raises:
        FileNotFoundError, PermissionError, ValueError: As
            :func:`check_checkpoint`, naming the config key to override.
    """
    for key, path in _pretrained_entries(cfg.get('model', {}), 'model'):
        try:
            check_checkpoint(path, 'Pre-trained checkpoint')
        except (OSError, ValueError) as error:
            raise type(error)(
                f'{error} It is set by {key}; pass the pre-trained weights '
                f'(converted to mmseg\'s key layout) with --cfg-options '
                f'{key}=PATH, or set the init_cfg to None when load_from '
                'supplies all weights.') from None


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------


def _leaf_datasets(dataset: Any) -> list[dict]:
    """Dataset configs inside wrappers (Concat, Repeat, ...)."""
    if not isinstance(dataset, dict):
        return []
    if 'datasets' in dataset:
        return [d for sub in dataset['datasets'] for d in _leaf_datasets(sub)]
    if 'dataset' in dataset:
        return _leaf_datasets(dataset['dataset'])
    return [dataset]


def _dataset_paths(dataset: dict) -> list[tuple[str, str]]:
    """``(description, path)`` pairs a dataset config reads, resolved the
    way mmseg's ``BaseSegDataset`` joins them with ``data_root``."""
    root = dataset.get('data_root') or ''
    paths = []
    if root:
        paths.append(('data_root', root))
    ann_file = dataset.get('ann_file') or ''
    if ann_file:
        paths.append(('ann_file (split file)', osp.join(root, ann_file)))
    prefix = dataset.get('data_prefix') or {}
    for name in ('img_path', 'seg_map_path'):
        value = prefix.get(name)
        if value:
            paths.append((f'data_prefix.{name}', osp.join(root, value)))
    return paths


def check_data_paths(cfg: Config,
                     splits: Iterable[str] = ('train', 'val'),
                     hint: str | None = None) -> None:
    """Check that the data root, split file and folders of datasets exist.

    Args:
        cfg (Config): The parsed config.
        splits (Iterable[str]): Which of ``'train'``, ``'val'``, ``'test'``
            to check; a dataloader the config does not define is skipped.
            Defaults to ``('train', 'val')``.
        hint (str, optional): How to prepare the data, quoted in the error.
            Defaults to None: looked up in :data:`PREPARE_HINTS` by dataset
            type.

    Raises:
        FileNotFoundError: Naming the missing path, its config key and how
            to prepare the data.
    """
    for split in splits:
        if split not in _DATALOADERS:
            raise ValueError(f'Invalid split {split!r}; expected one of '
                             f'{", ".join(_DATALOADERS)}.')
        loader = cfg.get(_DATALOADERS[split])
        if not loader:
            continue
        for dataset in _leaf_datasets(loader.get('dataset')):
            for what, path in _dataset_paths(dataset):
                if _has_scheme(path) or osp.exists(path):
                    continue
                dataset_type = type_name(dataset.get('type'))
                how = hint or PREPARE_HINTS.get(dataset_type)
                how = (f'Prepare it with {how}, or point' if how else 'Point')
                raise FileNotFoundError(
                    f'{dataset_type} {split} data not found: {what} '
                    f'{path!r} does not exist. {how} the config at the data '
                    f'with --cfg-options {_DATALOADERS[split]}.dataset.'
                    'data_root=PATH.')


# ---------------------------------------------------------------------------
# SPD configs
# ---------------------------------------------------------------------------


def config_requests_spd(cfg: Config) -> str | None:
    """Say why ``cfg`` asks for SPD, or return None if it does not.

    A config asks for SPD when ``spd_required=True``, or (unless
    ``spd_required=False``) when ``optim_wrapper.type``,
    ``optim_wrapper.optimizer.type`` or a top-level ``optimizer.type``
    names an SPD type (contains ``'SPD'``). MMEngine ignores a top-level
    ``optimizer``, an mmseg 0.x habit, which is how such a config ends up
    with a plain optimizer.

    Args:
        cfg (Config): The parsed config.

    Returns:
        str or None: The config key and value that ask for SPD.
    """
    required = cfg.get('spd_required')
    if required is not None:
        return 'spd_required=True' if required else None
    optim_wrapper = cfg.get('optim_wrapper') or {}
    candidates = [
        ('optim_wrapper.type', optim_wrapper.get('type')),
        ('optim_wrapper.optimizer.type',
         (optim_wrapper.get('optimizer') or {}).get('type')),
        ('optimizer.type (top level)', (cfg.get('optimizer') or {}).get(
            'type') if isinstance(cfg.get('optimizer'), dict) else None),
    ]
    for key, value in candidates:
        if value is not None and 'SPD' in type_name(value):
            return f'{key}={type_name(value)!r}'
    return None


def _spd_type_in_optim_wrapper_cfg(cfg: Config) -> bool:
    optim_wrapper = cfg.get('optim_wrapper') or {}
    names = [
        optim_wrapper.get('type'),
        (optim_wrapper.get('optimizer') or {}).get('type'),
    ]
    return any(
        name is not None and 'SPD' in type_name(name) for name in names)


def check_spd_config(cfg: Config) -> None:
    """Raise if ``cfg`` asks for SPD but its ``optim_wrapper`` names none.

    A check on the config alone, run before anything is built; the built
    wrapper is checked by :func:`check_spd_optim_wrapper`.

    Args:
        cfg (Config): The parsed config.

    Raises:
        RuntimeError: Naming what asked for SPD and the optimizer the
            config would build instead.
    """
    reason = config_requests_spd(cfg)
    if reason is None or _spd_type_in_optim_wrapper_cfg(cfg):
        return
    optim_wrapper = cfg.get('optim_wrapper') or {}
    wrapper_type = type_name(optim_wrapper.get('type'))
    optimizer_type = type_name(
        (optim_wrapper.get('optimizer') or {}).get('type'))
    built = (f'optim_wrapper.type={wrapper_type!r} with '
             f'optim_wrapper.optimizer.type={optimizer_type!r}')
    raise RuntimeError(_spd_error(reason, built))


def _spd_error(reason: str, built: str) -> str:
    return (
        f'The config asks for SPD ({reason}) but builds {built}, which does '
        "not apply SPD. Set optim_wrapper=dict(type='OptimWrapper', "
        "optimizer=dict(type='AdamSPD', ...)) or optim_wrapper=dict("
        "type='SPDOptimWrapper', ...) (MMEngine ignores a top-level "
        '`optimizer`), or set spd_required=False to train without SPD.')


def is_spd_optim_wrapper(optim_wrapper: Any) -> bool:
    """Whether a built optimizer wrapper applies SPD.

    True for mmspd's SPD optimizer wrappers and for any wrapper whose
    optimizer is an SPD optimizer (e.g. ``AdamSPD``). An
    ``OptimWrapperDict`` counts if any of its wrappers does.
    """
    from mmengine.optim import OptimWrapperDict
    if isinstance(optim_wrapper, OptimWrapperDict):
        return any(
            is_spd_optim_wrapper(wrapper)
            for wrapper in optim_wrapper.values())
    import mmspd.optim as spd_optim
    spd_classes = tuple(
        getattr(spd_optim, name)
        for name in ('SPDOptimWrapper', 'AmpSPDOptimWrapper', 'AdamSPD')
        if isinstance(getattr(spd_optim, name, None), type))
    optimizer = getattr(optim_wrapper, 'optimizer', None)
    return (isinstance(optim_wrapper, spd_classes)
            or isinstance(optimizer, spd_classes))


def check_spd_optim_wrapper(cfg: Config, optim_wrapper: Any) -> None:
    """Raise if ``cfg`` asks for SPD but ``optim_wrapper`` does not apply it.

    Args:
        cfg (Config): The parsed config.
        optim_wrapper: The optimizer wrapper built from ``cfg``.

    Raises:
        RuntimeError: Naming what asked for SPD and what was built.
    """
    reason = config_requests_spd(cfg)
    if reason is None or is_spd_optim_wrapper(optim_wrapper):
        return
    optimizer = getattr(optim_wrapper, 'optimizer', None)
    built = (f'{type(optim_wrapper).__name__} around '
             f'{type(optimizer).__name__}')
    raise RuntimeError(_spd_error(reason, built))
