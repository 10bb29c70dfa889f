"""Checks before and while a robustness run: checkpoint and test data.

Everything here fails with a message that names the file and what to do,
before the clean pass rather than in the middle of a run.
"""
from __future__ import annotations

import hashlib
import os
import os.path as osp
from typing import Any

from mmspd.corruptions import MIN_SIZE

_CHUNK = 1 << 20


def _has_scheme(path: str) -> bool:
    # s3://, http://, open-mmlab:// ...: MMEngine's loaders read them.
    return '://' in str(path)


def check_checkpoint_file(path: str) -> None:
    """Raise FileNotFoundError / ValueError unless ``path`` is a readable
    file (paths with a scheme are left to MMEngine)."""
    if _has_scheme(path):
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


def file_sha256(path: str) -> str | None:
    """SHA-256 of a file's bytes; None for a path with a scheme."""
    if _has_scheme(path):
        return None
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(_CHUNK), b''):
            digest.update(block)
    return digest.hexdigest()


def matched_weights(model, state_dict: dict) -> tuple[int, int, int]:
    """How many of a model's tensors a state dict fills.

    Keys are compared as MMEngine loads them (a ``module.`` prefix
    dropped); a tensor counts when name and shape agree.

    Returns:
        tuple[int, int, int]: ``(matched, model tensors, checkpoint
        tensors)``.
    """
    model = getattr(model, 'module', model)
    own = model.state_dict()
    matched = 0
    for key, value in state_dict.items():
        key = key[len('module.'):] if key.startswith('module.') else key
        if key in own and tuple(getattr(value, 'shape', ())) == tuple(
                own[key].shape):
            matched += 1
    return matched, len(own), len(state_dict)


def load_weights(runner, path: str) -> tuple[int, int]:
    """Load ``path`` into ``runner.model``, refusing one that fills nothing.

    Does what ``Runner.load_checkpoint`` does (``after_load_checkpoint``
    hooks, non-strict loading), after checking the keys: a checkpoint of
    another model would otherwise be evaluated with random weights.

    Returns:
        tuple[int, int]: Tensors filled, tensors in the model.

    Raises:
        ValueError: If the file cannot be loaded as a checkpoint, or no
            tensor of the model is in it.
    """
    from mmengine.runner.checkpoint import (_load_checkpoint,
                                            _load_checkpoint_to_model)
    try:
        checkpoint = _load_checkpoint(path, map_location='cpu')
    except Exception as error:  # torch.load raises many kinds
        reason = (str(error).strip().splitlines() or [''])[0][:200]
        raise ValueError(
            f'checkpoint {path!r} cannot be loaded ({type(error).__name__}: '
            f'{reason}); expected a checkpoint file written by torch.save, '
            'such as the .pth files of tools/train.py') from None
    state_dict = checkpoint.get('state_dict', checkpoint) if isinstance(
        checkpoint, dict) else None
    if not isinstance(state_dict, dict):
        raise ValueError(f'checkpoint {path!r} holds no state dict')
    matched, total, given = matched_weights(runner.model, state_dict)
    if matched == 0:
        sample = ', '.join(list(state_dict)[:3]) or 'none'
        raise ValueError(
            f'checkpoint {path!r} fills none of the model\'s {total} '
            f'tensors (its {given} keys, e.g. {sample}, match no parameter '
            'name and shape); it is for another model or config')
    runner.call_hook('after_load_checkpoint', checkpoint=checkpoint)
    model = getattr(runner.model, 'module', runner.model)
    _load_checkpoint_to_model(model, checkpoint, strict=False)
    runner._has_loaded = True
    return matched, total


def _leaf_datasets(dataset: Any) -> list[dict]:
    """Dataset configs inside wrappers (Concat, Repeat, ...)."""
    if not isinstance(dataset, dict):
        return []
    if dataset.get('datasets') is not None:
        return [d for sub in dataset['datasets'] for d in _leaf_datasets(sub)]
    if isinstance(dataset.get('dataset'), dict):
        return _leaf_datasets(dataset['dataset'])
    return [dataset]


def _check_paths(dataset: dict) -> None:
    """Missing data root, split file or folders, and empty split files."""
    root = dataset.get('data_root') or ''
    paths = [('data_root', root)] if root else []
    ann_file = dataset.get('ann_file') or ''
    if ann_file:
        paths.append(('ann_file (split file)', osp.join(root, ann_file)))
    for name, value in (dataset.get('data_prefix') or {}).items():
        if name in ('img_path', 'seg_map_path') and value:
            paths.append((f'data_prefix.{name}', osp.join(root, value)))
    for what, path in paths:
        if not _has_scheme(path) and not osp.exists(path):
            raise FileNotFoundError(
                f'Test data not found: {what} {path!r} does not exist. '
                'Point the config at the data with --cfg-options '
                'test_dataloader.dataset.data_root=PATH')
    if ann_file and osp.isfile(osp.join(root, ann_file)):
        with open(osp.join(root, ann_file), encoding='utf-8') as f:
            if not any(line.strip() for line in f):
                raise ValueError(
                    f'The split file {osp.join(root, ann_file)!r} lists no '
                    'image (it is empty); it needs one image name per line')


def _image_size(path: str) -> tuple[int, int]:
    """``(height, width)`` from the image header, without decoding."""
    from PIL import Image
    with Image.open(path) as image:
        width, height = image.size
    return height, width


def scan_test_data(cfg, fingerprint: bool = True) -> dict:
    """Check every test image before the clean pass; fingerprint the data.

    Args:
        cfg (Config): The config; its ``test_dataloader.dataset`` (wrappers
            included) is built without its pipeline.
        fingerprint (bool): Hash the images and label maps (all their
            bytes, with their paths relative to the dataset root), so a
            resumed run knows the data is the same. Defaults to True.

    Returns:
        dict: ``images`` (count), ``roots`` (dataset roots, one per leaf
        dataset) and ``fingerprint`` (hex, or None).

    Raises:
        FileNotFoundError: Missing data root, split file or folder.
        ValueError: Empty split file or test set, an image that cannot be
            read, or one smaller than 32 pixels (naming up to five).
    """
    from mmengine.registry import DefaultScope
    from mmseg.registry import DATASETS
    digest = hashlib.sha256()
    count, roots, unreadable, small = 0, [], [], []
    leaves = _leaf_datasets(cfg.test_dataloader.get('dataset'))
    for leaf in leaves:
        _check_paths(leaf)
        leaf = dict(leaf, pipeline=[], serialize_data=False,
                    lazy_init=False)
        with DefaultScope.overwrite_default_scope(
                cfg.get('default_scope') or 'mmseg'):
            try:
                dataset = DATASETS.build(leaf)
            except (OSError, ValueError) as error:
                raise ValueError(f'Cannot load the test set: {error}') \
                    from None
        root = leaf.get('data_root') or ''
        roots.append(root)
        for index in range(len(dataset)):
            info = dataset.get_data_info(index)
            path = info['img_path']
            count += 1
            if _has_scheme(path):
                continue
            try:
                size = _image_size(path)
            except Exception as error:  # PIL raises many kinds
                unreadable.append(f'{path} ({type(error).__name__}: '
                                  f'{error})')
                continue
            if min(size) < MIN_SIZE:
                small.append(f'{path} ({size[0]} x {size[1]})')
            if fingerprint:
                for name in ('img_path', 'seg_map_path'):
                    _update(digest, info.get(name), root)
    if count == 0:
        raise ValueError('The test set has no image; check '
                         'test_dataloader.dataset (data_root, ann_file, '
                         'data_prefix)')
    for found, what in ((unreadable, 'cannot be read as an image'),
                        (small, 'smaller than 32 pixels, the least '
                         'the corruptions are defined for')):
        if found:
            raise ValueError(
                f'{len(found)} of {count} test images {what}: ' +
                '; '.join(found[:5]) + ('; ...' if len(found) > 5 else ''))
    return {'images': count, 'roots': roots,
            'fingerprint': digest.hexdigest()[:32] if fingerprint else None}


def _update(digest, path: str | None, root: str) -> None:
    if not path or _has_scheme(path):
        return
    name = osp.relpath(osp.abspath(path), osp.abspath(root or '.'))
    digest.update(name.replace(os.sep, '/').encode('utf-8') + b'\x00')
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(_CHUNK), b''):
            digest.update(block)
    digest.update(b'\x00')
