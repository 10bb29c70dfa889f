"""Data transforms registered in MMSegmentation's ``TRANSFORMS``."""
from __future__ import annotations

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

from mmspd.corruptions import (
    check_channel_order,
    check_corruption,
    check_key,
    check_severity,
    corrupt,
    image_key,
    image_seed,
    reseeded_state,
)


@TRANSFORMS.register_module()
class ImageCorruption(BaseTransform):
    """Corrupt the loaded image with a seeded ImageNet-C corruption.

    The corrupted pixels depend only on ``(seed, image key, corruption,
    severity)``: each image gets its own random state seeded by
    :func:`mmspd.corruptions.image_seed`, so the result does not depend on
    dataloader workers, ranks or order. The key is by default the image
    path relative to ``root`` (the dataset root), so two images of the same
    name in different folders get different noise, and moving the dataset
    keeps the pixels. Place it right after ``LoadImageFromFile``, before any
    resizing, so that the corruption acts on the image at its stored
    resolution, as ImageNet-C-style benchmarks define it::

        test_pipeline = [
            dict(type='LoadImageFromFile'),
            dict(type='ImageCorruption', corruption='fog', severity=3,
                 root='data/VOCdevkit/VOC2010'),
            dict(type='Resize', scale=(2048, 512), keep_ratio=True),
            dict(type='LoadAnnotations', reduce_zero_label=True),
            dict(type='PackSegInputs'),
        ]

    The corruptions are defined on RGB: a BGR ``img`` gets the
    channel-swapped pixels of its RGB version. Gaussian noise, fog,
    brightness and glass blur work on BGR as it is; defocus blur and the
    other corruptions convert it to RGB and back (``cv2.cvtColor``).
    A 3- or 4-channel image keeps its shape (a fourth channel, alpha, is
    left unchanged); a grayscale image becomes three channels, as
    ``imagecorruptions.corrupt`` returns it.

    Required Keys:

    - img (np.ndarray): uint8, at least 32 x 32 pixels.
    - img_path (str): Seeds the corruption (see ``key``).

    Modified Keys:

    - img: replaced by the corrupted image, a new array in
      ``channel_order``.
    - img_shape: set to the corrupted image's ``(height, width)``. No
      corruption resizes, so the value changes only where the pipeline
      had none or a stale one.

    Args:
        corruption (str): One of
            :data:`mmspd.corruptions.ALL_CORRUPTIONS`.
        severity (int): 1 to 5.
        seed (int): Global seed. Defaults to 0.
        key (str): What of ``img_path`` seeds the image: ``'relative'``
            (the path relative to ``root``), ``'name'`` (the file name) or
            ``'path'`` (the whole path). Defaults to ``'relative'``.
        root (str, optional): The dataset root for ``key='relative'``;
            the corruption benchmark sets it to the dataset's
            ``data_root``. Defaults to None: the path as given.
        channel_order (str): Channel order of ``img``, ``'bgr'`` (mmcv's
            loading default) or ``'rgb'``. Defaults to ``'bgr'``.
    """

    def __init__(self,
                 corruption: str,
                 severity: int,
                 seed: int = 0,
                 key: str = 'relative',
                 root: str | None = None,
                 channel_order: str = 'bgr') -> None:
        self.corruption = check_corruption(corruption)
        self.severity = check_severity(severity)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f'Invalid seed {seed!r}; expected an integer')
        self.seed = int(seed)
        self.key = check_key(key)
        self.root = root
        self.channel_order = check_channel_order(channel_order)

    def transform(self, results: dict) -> dict | None:
        """Corrupt ``results['img']`` in place of the original."""
        if 'img' not in results:
            raise KeyError('ImageCorruption needs results["img"]; place it '
                           'after LoadImageFromFile in the pipeline')
        path = results.get('img_path')
        if path is None:
            raise KeyError('ImageCorruption needs results["img_path"] to '
                           'seed the corruption of each image')
        img = results['img']
        if not isinstance(img, np.ndarray) or img.dtype != np.uint8:
            raise ValueError(
                'ImageCorruption needs a uint8 image, got '
                f'{getattr(img, "dtype", type(img))} for {path}; place it '
                'before any transform that converts the image to float '
                '(and do not load with to_float32=True)')
        rng = reseeded_state(
            image_seed(self.seed, image_key(path, self.key, self.root),
                       self.corruption, self.severity))
        try:
            out = corrupt(img, self.corruption, self.severity, rng,
                          self.channel_order)
        except ValueError as error:
            raise ValueError(f'Cannot corrupt {path}: {error}') from None
        results['img'] = out
        results['img_shape'] = out.shape[:2]
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(corruption={self.corruption!r}, '
                f'severity={self.severity}, seed={self.seed}, '
                f'key={self.key!r}, root={self.root!r}, '
                f'channel_order={self.channel_order!r})')

