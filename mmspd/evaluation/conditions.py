"""What a robustness run evaluates and records: its conditions, their
test data, a lock that keeps two runs out of one work dir, and hashes and
versions for the reproducibility record."""
from __future__ import annotations

import contextlib
import copy
import datetime
import hashlib
import json
import os
import os.path as osp
import socket
from typing import Any, Iterator, Optional, Sequence, Tuple

from mmspd.corruptions import MIN_SIZE, check_severity, resolve_corruptions
from mmspd.utils.mmseg_tools import config_type_name

from .metrics import CLEAN

#: ``test_cfg`` keys of ``CorruptionTestLoop`` that choose conditions or
#: outputs, not how a condition is tested; left out of the fingerprint.
LOOP_KEYS = ('type', 'corruptions', 'severities', 'seed', 'key',
             'overwrite', 'show_dir', 'show_num')

#: Packages whose versions every report records: distribution or, for
#: those MMEngine's ``collect_env`` reports, its key.
VERSIONED = {
    'mmspd': 'mmspd', 'imagecorruptions': 'imagecorruptions',
    'numpy': 'numpy', 'opencv': 'OpenCV', 'scikit-image': 'scikit-image',
    'torch': 'PyTorch', 'mmcv': 'mmcv', 'mmengine': 'MMEngine',
    'mmseg': 'mmsegmentation'}

Condition = Tuple[str, Optional[int]]


class WorkDirBusy(RuntimeError):
    """Another run holds the work dir's lock."""


def plan_conditions(corruptions: Sequence[str],
                    severities: Sequence[int]) -> list[Condition]:
    """``('clean', None)``, then ``(corruption, severity)`` for every
    corruption (names and/or groups) at every severity (1 to 5; 0, clean,
    is always evaluated)."""
    names, levels = resolve_corruptions(corruptions), set()
    for severity in severities:
        if severity == 0 and not isinstance(severity, bool):
            continue
        try:
            levels.add(check_severity(severity))
        except ValueError:
            raise ValueError(f'Invalid severity {severity!r}; accepted: '
                             '0 (clean), 1, 2, 3, 4, 5') from None
    if not levels:
        raise ValueError('No severity from 1 to 5 given (0, clean, is '
                         'always evaluated); accepted: 1, 2, 3, 4, 5')
    return [(CLEAN, None)] + [(name, level) for name in names
                              for level in sorted(levels)]


def _with_pipelines(dataset: Any) -> list[dict]:
    """Every dataset config with a pipeline list, wrappers included."""
    if not isinstance(dataset, dict):
        return []
    found = [dataset] if isinstance(dataset.get('pipeline'), list) else []
    for sub in dataset.get('datasets') or []:
        found += _with_pipelines(sub)
    if isinstance(dataset.get('dataset'), dict):
        found += _with_pipelines(dataset['dataset'])
    return found


def add_corruption(dataloader_cfg: dict, corruption: str, severity: int,
                   seed: int = 0, key: str = 'relative') -> dict:
    """A copy of a test dataloader config (left unchanged) whose images
    are corrupted: an ``ImageCorruption`` step right after each
    ``LoadImageFromFile`` of the dataset's pipeline (of every dataset it
    wraps), with ``root`` set to that dataset's ``data_root``, and no
    persistent workers. ``seed`` and ``key`` are ``ImageCorruption``'s."""
    cfg = copy.deepcopy(dataloader_cfg)
    inserted = 0
    for dataset in _with_pipelines(cfg.get('dataset')):
        pipeline = dataset['pipeline']
        for index in reversed(range(len(pipeline))):
            if isinstance(pipeline[index], dict) and config_type_name(
                    pipeline[index]) == 'LoadImageFromFile':
                pipeline.insert(index + 1, dict(
                    type='ImageCorruption', corruption=corruption,
                    severity=severity, seed=seed, key=key,
                    root=dataset.get('data_root') or None))
                inserted += 1
    if not inserted:
        raise ValueError(
            'Cannot corrupt the test data: no LoadImageFromFile step found '
            'in test_dataloader.dataset.pipeline; ImageCorruption must '
            'follow image loading')
    # A single pass per condition: persistent workers would only linger.
    cfg['persistent_workers'] = False
    return cfg


def fingerprint_test_setup(cfg: Any) -> str:
    """Fingerprint of what determines test metrics in a config: the model,
    test dataloader, evaluator and test loop, without worker settings and
    the benchmark's own ``test_cfg`` keys (it counts as the plain
    ``TestLoop`` it extends)."""
    parts = {name: copy.deepcopy(cfg.get(name)) for name in (
        'model', 'test_dataloader', 'test_evaluator', 'test_cfg')}
    if isinstance(parts['test_dataloader'], dict):
        for name in ('num_workers', 'persistent_workers', 'pin_memory',
                     'prefetch_factor'):
            parts['test_dataloader'].pop(name, None)
    if isinstance(parts['test_cfg'], dict) and config_type_name(
            parts['test_cfg']) == 'CorruptionTestLoop':
        parts['test_cfg'] = dict(
            {k: v for k, v in parts['test_cfg'].items()
             if k not in LOOP_KEYS}, type='TestLoop')
    text = json.dumps(parts, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode('utf-8')).hexdigest()[:16]


def now() -> str:
    """The current UTC time, ISO 8601, to the second."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec='seconds')


def versions() -> dict[str, str]:
    """Versions of the packages that decide corrupted pixels and metrics."""
    from importlib import import_module, metadata

    from mmengine.utils.dl_utils import collect_env
    env, found = collect_env(), {}
    for name, source in VERSIONED.items():
        try:
            found[name] = str(env[source]) if source in env else \
                metadata.version(source)
        except metadata.PackageNotFoundError:  # e.g. run from a checkout
            module = {'scikit-image': 'skimage'}.get(name, name)
            try:
                found[name] = str(import_module(module).__version__)
            except (ImportError, AttributeError):
                found[name] = 'not installed'
    return found


def _hash_file(digest, path: str) -> None:
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)


def file_sha256(path: str) -> str | None:
    """SHA-256 of a file's bytes; None for a path with a scheme (s3://,
    http://, ...: MMEngine's loaders read them)."""
    if '://' in str(path):
        return None
    digest = hashlib.sha256()
    _hash_file(digest, path)
    return digest.hexdigest()


@contextlib.contextmanager
def work_dir_lock(work_dir: str) -> Iterator[None]:
    """Hold ``work_dir``'s lock (``filelock``'s, released by the system
    however its holder ends); raise :class:`WorkDirBusy` at once if
    another run (or another lock in this process) holds it, naming the
    holder's pid, host and start time."""
    from filelock import FileLock, Timeout
    path = osp.join(work_dir, '.robustness.lock')
    lock = FileLock(path, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        try:
            with open(f'{path}.holder', encoding='utf-8') as f:
                holder = f.read().strip() or 'unknown'
        except OSError:
            holder = 'unknown'
        raise WorkDirBusy(
            f'Another robustness run is using work dir {work_dir!r} '
            f'({holder}). Two runs on one work dir would overwrite each '
            "other's results: wait for it to finish (then run again to add "
            'your conditions), or use another --work-dir') from None
    try:
        with open(f'{path}.holder', 'w', encoding='utf-8') as f:
            f.write(f'pid {os.getpid()} on {socket.gethostname()} since '
                    f'{now()}\n')
        yield
    finally:
        lock.release()


def _leaves(dataset) -> list:
    """The datasets inside wrappers (Concat, Repeat, ...)."""
    if hasattr(dataset, 'datasets'):
        return [leaf for sub in dataset.datasets for leaf in _leaves(sub)]
    if hasattr(dataset, 'dataset'):
        return _leaves(dataset.dataset)
    return [dataset]


def scan_test_data(dataset, fingerprint: bool = True) -> dict:
    """Check every image of a built test set (wrappers included): a
    ValueError for an empty set, or naming up to five images that cannot
    be read or are smaller than 32 pixels. Return the ``images`` count and
    (``fingerprint``) a ``fingerprint`` of the images and label maps
    (bytes and paths relative to ``data_root``), else None."""
    from PIL import Image
    digest = hashlib.sha256()
    count, unreadable, small = 0, [], []
    for leaf in _leaves(dataset):
        root = osp.abspath(getattr(leaf, 'data_root', None) or '.')
        for index in range(len(leaf)):
            info = leaf.get_data_info(index)
            path = info['img_path']
            count += 1
            if '://' in path:
                continue
            try:
                with Image.open(path) as image:  # the header only
                    width, height = image.size
            except Exception as error:  # noqa: BLE001  PIL raises many
                unreadable.append(f'{path} ({type(error).__name__}: '
                                  f'{error})')
                continue
            if min(height, width) < MIN_SIZE:
                small.append(f'{path} ({height} x {width})')
            for name in ('img_path', 'seg_map_path') * fingerprint:
                file = info.get(name)
                if file and '://' not in file:
                    relative = osp.relpath(osp.abspath(file), root)
                    digest.update(relative.replace(os.sep, '/').encode(
                        'utf-8') + b'\x00')
                    _hash_file(digest, file)
                    digest.update(b'\x00')
    if count == 0:
        raise ValueError('The test set has no image (an empty split '
                         'file?); check test_dataloader.dataset (data_root, '
                         'ann_file, data_prefix)')
    for found, what in ((unreadable, 'cannot be read as an image'),
                        (small, ('smaller than 32 pixels, the least the '
                                 'corruptions are defined for'))):
        if found:
            raise ValueError(
                f'{len(found)} of {count} test images {what}: ' +
                '; '.join(found[:5]) + ('; ...' if len(found) > 5 else ''))
    return {'images': count,
            'fingerprint': digest.hexdigest()[:32] if fingerprint else None}
