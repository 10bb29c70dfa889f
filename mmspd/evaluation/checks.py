"""What a robustness run checks and records before its clean pass: the
test images, a lock that keeps two runs out of one work dir, hashes of
the checkpoint and the data, and the software versions."""
from __future__ import annotations

import contextlib
import datetime
import hashlib
import os
import os.path as osp
import socket
from typing import Iterator

from mmspd.corruptions import MIN_SIZE

#: Name of the lock file in a work dir.
LOCK_FILE = '.robustness.lock'

#: Packages whose versions every report records: distribution or, for
#: those MMEngine's ``collect_env`` reports, its key.
VERSIONED = {
    'mmspd': 'mmspd', 'imagecorruptions': 'imagecorruptions',
    'numpy': 'numpy', 'opencv': 'OpenCV', 'scikit-image': 'scikit-image',
    'torch': 'PyTorch', 'mmcv': 'mmcv', 'mmengine': 'MMEngine',
    'mmseg': 'mmsegmentation'}


class WorkDirBusy(RuntimeError):
    """Another run holds the work dir's lock."""


def now() -> str:
    """The current UTC time, ISO 8601, to the second."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec='seconds')


def versions() -> dict[str, str]:
    """Versions of the packages that decide corrupted pixels and metrics."""
    from importlib import import_module, metadata

    from mmengine.utils.dl_utils import collect_env
    env = collect_env()
    found = {}
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
    path = osp.join(work_dir, LOCK_FILE)
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
            except Exception as error:  # PIL raises many kinds
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
