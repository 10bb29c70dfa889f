"""Corruption names, groups, seeding and the :func:`corrupt` entry point."""
from __future__ import annotations

import hashlib
import os
from typing import Callable, Iterable

import numpy as np

from . import fast
from .reference import reference_corruption

SEVERITIES = (1, 2, 3, 4, 5)

# Order and grouping of imagecorruptions 1.1.2 (ImageNet-C): the first 15
# are the benchmark corruptions, the last 4 its validation corruptions.
BENCHMARK_CORRUPTIONS = (
    'gaussian_noise', 'shot_noise', 'impulse_noise', 'defocus_blur',
    'glass_blur', 'motion_blur', 'zoom_blur', 'snow', 'frost', 'fog',
    'brightness', 'contrast', 'elastic_transform', 'pixelate',
    'jpeg_compression')
VALIDATION_CORRUPTIONS = ('speckle_noise', 'gaussian_blur', 'spatter',
                          'saturate')
ALL_CORRUPTIONS = BENCHMARK_CORRUPTIONS + VALIDATION_CORRUPTIONS

# The four the robustness benchmark runs by default, with fast versions.
DEFAULT_CORRUPTIONS = ('gaussian_noise', 'defocus_blur', 'fog', 'brightness')

CORRUPTION_GROUPS: dict[str, tuple] = {
    'default': DEFAULT_CORRUPTIONS,
    'benchmark': BENCHMARK_CORRUPTIONS,
    'all': ALL_CORRUPTIONS,
    'noise': BENCHMARK_CORRUPTIONS[0:3],
    'blur': BENCHMARK_CORRUPTIONS[3:7],
    'weather': BENCHMARK_CORRUPTIONS[7:11],
    'digital': BENCHMARK_CORRUPTIONS[11:15],
}

_FAST = {
    'gaussian_noise': fast.gaussian_noise,
    'defocus_blur': fast.defocus_blur,
    'fog': fast.fog,
    'brightness': fast.brightness,
    'glass_blur': fast.glass_blur,
}

# imagecorruptions refuses smaller images; several corruptions (zoom blur,
# snow, frost) are written for at least this size.
MIN_SIZE = 32

_FUNCTIONS: dict[str, Callable] = {}


def get_corruption(name: str) -> Callable:
    """The function that applies corruption ``name``.

    The four default corruptions and glass_blur are mmspd's vectorised
    versions (:mod:`mmspd.corruptions.fast`); the others run
    imagecorruptions 1.1.2 with the fixes of
    :mod:`mmspd.corruptions.reference`.

    Args:
        name (str): One of :data:`ALL_CORRUPTIONS`.

    Returns:
        Callable: ``fn(image, severity, rng)`` on ``(H, W, 3)`` uint8 RGB.
    """
    check_corruption(name)
    if name not in _FUNCTIONS:
        _FUNCTIONS[name] = _FAST.get(name) or reference_corruption(name)
    return _FUNCTIONS[name]


def check_corruption(name: str) -> str:
    """Raise a ValueError naming the accepted corruptions if ``name`` isn't.

    Returns:
        str: ``name``.
    """
    if name not in ALL_CORRUPTIONS:
        raise ValueError(f'Unknown corruption {name!r}; accepted: '
                         f'{", ".join(ALL_CORRUPTIONS)}')
    return name


def check_severity(severity) -> int:
    """Raise a ValueError unless ``severity`` is an integer from 1 to 5.

    Returns:
        int: ``severity``.
    """
    if isinstance(severity, bool) or not isinstance(
            severity, (int, np.integer)) or severity not in SEVERITIES:
        raise ValueError(f'Invalid severity {severity!r}; accepted: '
                         f'{", ".join(map(str, SEVERITIES))}')
    return int(severity)


def resolve_corruptions(names: str | Iterable[str]) -> list[str]:
    """Expand group names and check corruption names.

    Args:
        names (str | Iterable[str]): Corruption names and/or group names
            (keys of :data:`CORRUPTION_GROUPS`), in any mix.

    Returns:
        list[str]: Corruption names in the given order, groups expanded,
        duplicates dropped.
    """
    if isinstance(names, str):
        names = [names]
    resolved = []
    for name in names:
        if name in CORRUPTION_GROUPS:
            expanded = CORRUPTION_GROUPS[name]
        elif name in ALL_CORRUPTIONS:
            expanded = (name, )
        else:
            raise ValueError(
                f'Unknown corruption or group {name!r}; accepted groups: '
                f'{", ".join(CORRUPTION_GROUPS)}; corruptions: '
                f'{", ".join(ALL_CORRUPTIONS)}')
        resolved.extend(n for n in expanded if n not in resolved)
    if not resolved:
        raise ValueError('No corruption given; accepted groups: '
                         f'{", ".join(CORRUPTION_GROUPS)}')
    return resolved


def image_seed(seed: int, key: str, corruption: str, severity: int) -> int:
    """A 32-bit seed that depends only on its arguments.

    Uses BLAKE2b, not Python's ``hash`` (salted per process for strings), so
    every worker, rank and run derives the same seed.

    Args:
        seed (int): Global seed of the benchmark.
        key (str): Identifies the image, e.g. its file name.
        corruption (str): Corruption name.
        severity (int): Severity.

    Returns:
        int: Seed in ``[0, 2**32)``.
    """
    text = f'{int(seed)}\x00{key}\x00{corruption}\x00{int(severity)}'
    digest = hashlib.blake2b(text.encode('utf-8'), digest_size=4).digest()
    return int.from_bytes(digest, 'little')


def image_key(path: str, key: str = 'name') -> str:
    """The part of an image path that seeds its corruption.

    Args:
        path (str): Image path.
        key (str): ``'name'``: the file name, so moving the dataset keeps
            the pixels; ``'path'``: the whole path as given. Defaults to
            ``'name'``.

    Returns:
        str: The key.
    """
    if key == 'name':
        return os.path.basename(os.fspath(path))
    if key == 'path':
        return os.fspath(path)
    raise ValueError(f"Invalid key {key!r}; accepted: 'name', 'path'")


def corrupt(image: np.ndarray,
            corruption: str,
            severity: int,
            rng: np.random.RandomState | None = None) -> np.ndarray:
    """Corrupt an RGB image.

    Args:
        image (np.ndarray): ``(H, W, 3)`` uint8 RGB image, at least 32
            pixels high and wide.
        corruption (str): One of :data:`ALL_CORRUPTIONS`.
        severity (int): 1 to 5.
        rng (np.random.RandomState, optional): Randomness of the random
            corruptions; see :func:`image_seed` for a per-image state.
            Defaults to None: ``RandomState(0)``.

    Returns:
        np.ndarray: ``(H, W, 3)`` uint8 RGB image.
    """
    function = get_corruption(corruption)
    severity = check_severity(severity)
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 \
            or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError('Expected an (H, W, 3) uint8 image, got '
                         f'{getattr(image, "dtype", type(image))} array of '
                         f'shape {getattr(image, "shape", None)}')
    if min(image.shape[:2]) < MIN_SIZE:
        raise ValueError(f'Image of shape {image.shape} is too small for '
                         f'{corruption}: height and width must be at least '
                         f'{MIN_SIZE} pixels')
    if rng is None:
        rng = np.random.RandomState(0)
    out = function(np.ascontiguousarray(image), severity, rng)
    if out.shape != image.shape:
        raise RuntimeError(f'{corruption} severity {severity} turned an '
                           f'image of shape {image.shape} into '
                           f'{out.shape}')
    return out
