"""What ``tools/test_corruption.py`` needs around MMEngine's ``Runner``.

Config loading with ``--cfg-options`` and the work dir, distributed runs on
machines without CUDA, a lock that keeps two runs out of one work dir, and
a record of the software versions a result was computed with.
"""
from __future__ import annotations

import datetime
import importlib
import os
import os.path as osp
import socket
from typing import Any

#: Launchers accepted by ``--launcher``.
LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')

#: Name of the lock file in a work dir.
LOCK_FILE = '.robustness.lock'

#: Distributions whose versions every report records, by import name.
VERSIONED = {
    'mmspd': 'mmspd',
    'imagecorruptions': 'imagecorruptions',
    'numpy': 'numpy',
    'opencv': 'cv2',
    'scikit-image': 'skimage',
    'torch': 'torch',
    'mmcv': 'mmcv',
    'mmengine': 'mmengine',
    'mmseg': 'mmseg',
}


def now() -> str:
    """The current UTC time, ISO 8601, to the second."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec='seconds')


def versions() -> dict[str, str]:
    """Versions of the packages that decide corrupted pixels and metrics."""
    from importlib import metadata
    found = {}
    for name, module in VERSIONED.items():
        try:
            found[name] = metadata.version(name if name != 'opencv' else
                                           'opencv-python')
        except metadata.PackageNotFoundError:
            try:
                found[name] = str(importlib.import_module(module).__version__)
            except (ImportError, AttributeError):
                found[name] = 'not installed'
    return found


def load_config(config: str,
                cfg_options: dict | None = None,
                work_dir: str | None = None,
                subdir: str = 'robustness'):
    """Load ``config`` with overrides; set its work dir.

    The work dir is ``work_dir``, else ``<the config's work_dir>/<subdir>``,
    else ``./work_dirs/<config name>/<subdir>``.

    Returns:
        mmengine.config.Config: The config.
    """
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    else:
        root = cfg.get('work_dir', None) or osp.join(
            './work_dirs', osp.splitext(osp.basename(config))[0])
        cfg.work_dir = osp.join(root, subdir)
    return cfg


def prepare_work_dir(work_dir: str,
                     option: str = '--work-dir',
                     what: str = 'Work dir',
                     contents: str = 'results') -> None:
    """Create ``work_dir`` and check that files can be written there.

    Args:
        work_dir (str): The folder.
        option (str): The command-line option that sets it, for messages.
            Defaults to ``'--work-dir'``.
        what (str): What the folder is, for messages. Defaults to
            ``'Work dir'``.
        contents (str): What goes there, for messages. Defaults to
            ``'results'``.

    Raises:
        ValueError: If ``work_dir`` or a folder above it is a file, or the
            folder cannot be created or written to (read-only file system,
            permissions), naming the path.
    """
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


class WorkDirLock:
    """An exclusive lock on a work dir for the whole run.

    A second run on the same work dir stops at once with a message naming
    the run that holds it, instead of overwriting its results. The lock is
    an ``fcntl`` lock on :data:`LOCK_FILE`, so the system releases it when
    the holder dies, however it ends. Where ``fcntl`` is missing, the file
    itself (created exclusively) is the lock.

    Args:
        work_dir (str): The work dir (must exist).
    """

    def __init__(self, work_dir: str) -> None:
        self.path = osp.join(work_dir, LOCK_FILE)
        self._file = None

    def acquire(self) -> WorkDirLock:
        try:
            import fcntl
        except ImportError:
            fcntl = None
        if fcntl is None:
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_RDWR)
            except FileExistsError:
                raise RuntimeError(self._busy()) from None
            self._file = os.fdopen(fd, 'r+')
        else:
            self._file = open(self.path, 'a+')
            try:
                fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                self._file.close()
                self._file = None
                raise RuntimeError(self._busy()) from None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(f'pid {os.getpid()} on {socket.gethostname()} '
                         f'since {now()}\n')
        self._file.flush()
        return self

    def _busy(self) -> str:
        try:
            with open(self.path) as f:
                holder = f.read().strip() or 'unknown'
        except OSError:
            holder = 'unknown'
        return (f'Another tools/test_corruption.py run is using work dir '
                f'{osp.dirname(self.path)!r} ({holder}). Two runs on one '
                'work dir would overwrite each other\'s results: wait for it '
                'to finish (then run again to add your conditions), or use '
                'another --work-dir')

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            try:
                import fcntl  # noqa: F401
            except ImportError:
                os.remove(self.path)

    def __enter__(self) -> WorkDirLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _replace_sync_bn(cfg: Any) -> int:
    """``SyncBN`` -> ``BN`` in nested config dicts, in place; the count."""
    count = 0
    if isinstance(cfg, dict):
        if cfg.get('type') == 'SyncBN':
            cfg['type'] = 'BN'
            count += 1
        count += sum(_replace_sync_bn(value) for value in cfg.values())
    elif isinstance(cfg, (list, tuple)):
        count += sum(_replace_sync_bn(value) for value in cfg)
    return count


def setup_launcher(cfg, launcher: str = 'none') -> None:
    """Prepare ``cfg`` for the ``Runner`` under ``launcher``, in place.

    With CUDA, or ``launcher='none'``, MMEngine sets everything up. Without
    CUDA, ``--launcher pytorch`` (torchrun, as
    ``tools/dist_test_corruption.sh`` starts it) gets a gloo process group,
    a DDP wrapper without ``device_ids`` and ``BN`` for ``SyncBN``.

    Raises:
        ValueError: On an unknown launcher, or slurm / mpi without CUDA.
        RuntimeError: If torchrun's environment variables are missing.
    """
    import torch
    if launcher not in LAUNCHERS:
        raise ValueError(f'Invalid launcher {launcher!r}; accepted: '
                         f'{", ".join(LAUNCHERS)}')
    cfg.launcher = launcher
    if launcher == 'none' or torch.cuda.is_available():
        return
    if launcher != 'pytorch':
        raise ValueError(f'--launcher {launcher} needs CUDA; without a GPU '
                         'use tools/dist_test_corruption.sh (torchrun, '
                         '--launcher pytorch)')
    import torch.distributed as dist
    missing = [name for name in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR',
                                 'MASTER_PORT') if name not in os.environ]
    if missing:
        raise RuntimeError(
            f'--launcher pytorch needs {", ".join(missing)} in the '
            'environment; start the run with tools/dist_test_corruption.sh')
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo', init_method='env://')
    wrapper = dict(cfg.get('model_wrapper_cfg') or
                   dict(type='MMDistributedDataParallel',
                        broadcast_buffers=False))
    # MMEngine passes device_ids=[LOCAL_RANK], a CUDA device to DDP.
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    _replace_sync_bn(cfg.model)
