"""Shrunk configs of mmseg's model zoo on generated data, for tests.

:func:`write_tiny_config` loads a config of mmseg's ``.mim`` (by its
``mmseg::`` name), keeps everything that shapes the optimizer (its
constructor, ``paramwise_cfg``, wrapper type, schedule) and the dataset's
own pipeline and settings (``reduce_zero_label``, slide inference), and
shrinks what only costs time: fewer layers and channels, crops and resize
scales divided by the same factor, 2 iterations, no downloads, no
workers. :func:`generate_zoo_data` writes a few images in the layout of the
dataset the config reads (ADE20K or Cityscapes).
"""
from __future__ import annotations

import os
import os.path as osp
from typing import Any

import numpy as np

# The datasets' layouts (mmseg's ADE20KDataset and CityscapesDataset).
LAYOUTS = {
    'ade20k': dict(
        images='images/{split}/ADE_{split}_{i:08d}.jpg',
        labels='annotations/{split}/ADE_{split}_{i:08d}.png',
        splits={'train': 'training', 'val': 'validation'},
        # 0 is "other", ignored through reduce_zero_label; 1-150 classes.
        classes=151,
        shape=(64, 96),
        blocks=(4, 6)),
    'cityscapes': dict(
        images='leftImg8bit/{split}/city/city_{i:06d}_000019_leftImg8bit.png',
        labels=('gtFine/{split}/city/city_{i:06d}_000019_'
                'gtFine_labelTrainIds.png'),
        splits={'train': 'train', 'val': 'val'},
        classes=19,
        # Cityscapes' own size: the corruptions see it (the test pipeline
        # corrupts before it resizes).
        shape=(1024, 2048),
        blocks=(8, 16)),
}


def generate_zoo_data(root: str, dataset: str, num: int = 4,
                      seed: int = 0) -> str:
    """Write ``num`` train and ``num`` val images with blocky label maps,
    at Cityscapes' own size for Cityscapes.

    Args:
        root (str): Folder to write into (the config's ``data_root``).
        dataset (str): ``'ade20k'`` or ``'cityscapes'``.
        num (int): Images per split. Defaults to 4.
        seed (int): Seed of the pixel values and labels. Defaults to 0.

    Returns:
        str: ``root``.
    """
    import cv2
    layout = LAYOUTS[dataset]
    rng = np.random.default_rng(seed)
    height, width = layout['shape']
    rows, cols = layout['blocks']
    # A colour per class over a gradient: learnable, and small as a PNG.
    colours = rng.integers(0, 200, (256, 3))
    gradient = (np.arange(width) * 48 // width)[None, :, None]
    for split in layout['splits'].values():
        for i in range(num):
            blocks = rng.integers(0, layout['classes'], (rows, cols))
            label = np.kron(blocks, np.ones(
                (height // rows, width // cols), np.int64))
            if dataset == 'cityscapes':
                label[-height // 8:] = 255  # ignored, like the ego vehicle
            image = (colours[label] + gradient).astype(np.uint8)
            names = {kind: osp.join(root, layout[kind].format(
                split=split, i=i)) for kind in ('images', 'labels')}
            for kind, path in names.items():
                os.makedirs(osp.dirname(path), exist_ok=True)
                data = image if kind == 'images' else label.astype(np.uint8)
                assert cv2.imwrite(path, data), path
    return root


def zoo_config_path(name: str) -> str:
    """Path of ``configs/<name>`` in the installed mmseg's ``.mim``."""
    import mmseg
    path = osp.join(osp.dirname(mmseg.__file__), '.mim', 'configs', name)
    if not osp.isfile(path):
        raise FileNotFoundError(f'mmseg config {name!r} not found at {path}')
    return path


def _scaled(value: Any, factor: float) -> Any:
    if isinstance(value, (list, tuple)):
        return type(value)(max(1, round(v * factor)) for v in value)
    return max(1, round(value * factor))


def _shrink_pipeline(pipeline: list, factor: float, crop: tuple) -> None:
    for step in pipeline:
        if 'scale' in step and step['type'] in ('Resize', 'RandomResize'):
            step['scale'] = _scaled(step['scale'], factor)
        if step['type'] == 'RandomCrop':
            step['crop_size'] = crop
        for inner in step.get('transforms', []):  # TestTimeAug
            _shrink_pipeline(inner if isinstance(inner, list) else [inner],
                             factor, crop)


def tiny_config(zoo_config: str, data_root: str, model: dict,
                crop_height: int = 32) -> Any:
    """A zoo config shrunk to train 2 iterations in seconds on a CPU.

    Args:
        zoo_config (str): Path of the config in mmseg's ``configs/``, e.g.
            ``'beit/beit-base_upernet_8xb2-160k_ade20k-640x640.py'``.
        data_root (str): Where :func:`generate_zoo_data` wrote the data.
        model (dict): Overrides of ``model`` (merged) that make it small
            and keep it from downloading weights.
        crop_height (int): Height of the training crop; widths, resize
            scales and slide windows shrink by the same factor.
            Defaults to 32.

    Returns:
        mmengine.Config: The shrunk config.
    """
    from mmengine.config import Config
    cfg = Config.fromfile(zoo_config_path(zoo_config))
    factor = crop_height / cfg.crop_size[0]
    crop = _scaled(tuple(cfg.crop_size), factor)
    cfg.merge_from_dict(dict(model=model))
    cfg.model.data_preprocessor.size = crop
    test_cfg = cfg.model.get('test_cfg', {})
    if test_cfg.get('mode') == 'slide':
        test_cfg.crop_size = _scaled(tuple(test_cfg.crop_size), factor)
        test_cfg.stride = _scaled(tuple(test_cfg.stride), factor)
    for split in ('train', 'val', 'test'):
        loader = cfg[f'{split}_dataloader']
        loader.update(num_workers=0, persistent_workers=False)
        loader.dataset.data_root = data_root
        _shrink_pipeline(loader.dataset.pipeline, factor, crop)
    cfg.train_dataloader.batch_size = 2
    cfg.train_cfg.update(max_iters=2, val_interval=10**6)
    cfg.default_hooks.checkpoint.update(interval=2, by_epoch=False)
    cfg.default_hooks.logger.interval = 1
    cfg.randomness = dict(seed=0)
    return cfg
