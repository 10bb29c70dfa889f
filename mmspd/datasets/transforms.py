"""Data transforms registered in MMSegmentation's ``TRANSFORMS``."""
from __future__ import annotations

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

from mmspd.corruptions import (
    check_corruption,
    check_severity,
    corrupt,
    image_key,
    image_seed,
)


@TRANSFORMS.register_module()
class ImageCorruption(BaseTransform):
    """Corrupt the loaded image with a seeded ImageNet-C corruption.

    The corrupted pixels depend only on ``(seed, image file, corruption,
    severity)``: each image gets its own random state seeded by
    :func:`mmspd.corruptions.image_seed`, so the result does not depend on
    dataloader workers, ranks or order. Place it right after
    ``LoadImageFromFile``, before any resizing, so that the corruption acts
    on the image at its stored resolution, as ImageNet-C-style benchmarks
    define it::

        test_pipeline = [
            dict(type='LoadImageFromFile'),
            dict(type='ImageCorruption', corruption='fog', severity=3),
            dict(type='Resize', scale=(2048, 512), keep_ratio=True),
            dict(type='LoadAnnotations', reduce_zero_label=True),
            dict(type='PackSegInputs'),
        ]

    The corruptions are defined on RGB; ``img`` is converted from
    ``channel_order`` to RGB and back. The image keeps its shape.

    Required Keys:

    - img (np.ndarray): ``(H, W, 3)`` uint8, at least 32 x 32 pixels.
    - img_path (str): Seeds the corruption (see ``key``).

    Modified Keys:

    - img

    Args:
        corruption (str): One of
            :data:`mmspd.corruptions.ALL_CORRUPTIONS`.
        severity (int): 1 to 5.
        seed (int): Global seed. Defaults to 0.
        key (str): What of ``img_path`` seeds the image: ``'name'`` (the
            file name, so the result does not depend on where the dataset
            lives) or ``'path'`` (the whole path). Defaults to ``'name'``.
        channel_order (str): Channel order of ``img``, ``'bgr'`` (mmcv's
            loading default) or ``'rgb'``. Defaults to ``'bgr'``.
    """

    def __init__(self,
                 corruption: str,
                 severity: int,
                 seed: int = 0,
                 key: str = 'name',
                 channel_order: str = 'bgr') -> None:
        self.corruption = check_corruption(corruption)
        self.severity = check_severity(severity)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f'Invalid seed {seed!r}; expected an integer')
        self.seed = int(seed)
        image_key('', key)  # validates key
        self.key = key
        if channel_order not in ('bgr', 'rgb'):
            raise ValueError(f'Invalid channel_order {channel_order!r}; '
                             "accepted: 'bgr', 'rgb'")
        self.channel_order = channel_order

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
        rng = np.random.RandomState(
            image_seed(self.seed, image_key(path, self.key), self.corruption,
                       self.severity))
        flip = self.channel_order == 'bgr'
        rgb = img[..., ::-1] if flip else img
        try:
            out = corrupt(rgb, self.corruption, self.severity, rng)
        except ValueError as error:
            raise ValueError(f'Cannot corrupt {path}: {error}') from None
        results['img'] = np.ascontiguousarray(out[..., ::-1]) if flip \
            else out
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(corruption={self.corruption!r}, '
                f'severity={self.severity}, seed={self.seed}, '
                f'key={self.key!r}, channel_order={self.channel_order!r})')
