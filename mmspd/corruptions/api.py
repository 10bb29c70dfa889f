"""Corruption names, groups, seeding and the :func:`corrupt` entry point."""
from __future__ import annotations

import functools
import hashlib
import os
import os.path as osp
import threading
from typing import Callable, Iterable

import cv2
import numpy as np

from . import defocus, fast, fog, glass
from .reference import reference_corruption

SEVERITIES = (1, 2, 3, 4, 5)

# Order and grouping of imagecorruptions 1.1.2 (ImageNet-C): the first 15
# are the benchmark corruptions, the last 4 its held-out (validation) ones.
BENCHMARK_CORRUPTIONS = (
    'gaussian_noise', 'shot_noise', 'impulse_noise', 'defocus_blur',
    'glass_blur', 'motion_blur', 'zoom_blur', 'snow', 'frost', 'fog',
    'brightness', 'contrast', 'elastic_transform', 'pixelate',
    'jpeg_compression')
HOLDOUT_CORRUPTIONS = ('speckle_noise', 'gaussian_blur', 'spatter',
                       'saturate')
#: Former name of :data:`HOLDOUT_CORRUPTIONS`.
VALIDATION_CORRUPTIONS = HOLDOUT_CORRUPTIONS
ALL_CORRUPTIONS = BENCHMARK_CORRUPTIONS + HOLDOUT_CORRUPTIONS

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
    'holdout': HOLDOUT_CORRUPTIONS,
}

# mmspd's own versions. Each takes ``channel_order`` and gives the same
# pixels for RGB and BGR images; the others run on RGB, converted to and
# fro.
_FAST = {
    'gaussian_noise': fast.gaussian_noise,
    'defocus_blur': defocus.defocus_blur,
    'fog': fog.fog,
    'brightness': fast.brightness,
    'glass_blur': glass.glass_blur,
}

#: Channel orders :func:`corrupt` accepts.
CHANNEL_ORDERS = ('rgb', 'bgr')

# imagecorruptions refuses smaller images; several corruptions (zoom blur,
# snow, frost) are written for at least this size.
MIN_SIZE = 32

#: Ways :func:`image_key` turns an image path into a seed key.
KEYS = ('relative', 'name', 'path')


def _split_alpha(image, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Check an image and split it into its three colour channels and alpha.

    A 2-D or one-channel image becomes three equal channels, as
    ``imagecorruptions.corrupt`` does; a fourth channel is alpha, kept
    apart so no corruption touches it.
    """
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise ValueError(
            f'{name} needs a uint8 numpy image, got '
            f'{getattr(image, "dtype", type(image).__name__)}')
    channels = 1 if image.ndim == 2 else (
        image.shape[2] if image.ndim == 3 else None)
    if channels not in (1, 3, 4):
        raise ValueError(
            f'{name} needs an image of shape (H, W), (H, W, 1), (H, W, 3) '
            f'(RGB) or (H, W, 4) (RGBA), got shape {image.shape}')
    if min(image.shape[:2]) < MIN_SIZE:
        raise ValueError(f'Image of shape {image.shape} is too small for '
                         f'{name}: height and width must be at least '
                         f'{MIN_SIZE} pixels')
    if channels == 1:
        gray = image.reshape(image.shape[:2])
        return np.ascontiguousarray(np.stack([gray] * 3, axis=-1)), None
    if channels == 4:
        return np.ascontiguousarray(image[..., :3]), image[..., 3:]
    return np.ascontiguousarray(image), None


def check_channel_order(channel_order: str) -> str:
    """Raise a ValueError naming :data:`CHANNEL_ORDERS` unless it is one.

    Returns:
        str: ``channel_order``.
    """
    if channel_order not in CHANNEL_ORDERS:
        raise ValueError(f'Invalid channel_order {channel_order!r}; '
                         f'accepted: {", ".join(map(repr, CHANNEL_ORDERS))}')
    return channel_order


def _checked(name: str, function: Callable, any_order: bool) -> Callable:
    """``function`` with its inputs and output checked (see
    :func:`get_corruption`); ``any_order``: it takes ``channel_order``."""

    @functools.wraps(function)
    def run(image: np.ndarray,
            severity: int,
            rng: np.random.RandomState | None = None,
            channel_order: str = 'rgb') -> np.ndarray:
        severity = check_severity(severity)
        check_channel_order(channel_order)
        colour, alpha = _split_alpha(image, name)
        if rng is None:
            # Its own object: a caller's reseeded_state stays as it was.
            rng = _reseeded(0, 'default')
        if any_order:
            out = function(colour, severity, rng, channel_order)
        elif channel_order == 'bgr':
            out = function(cv2.cvtColor(colour, cv2.COLOR_BGR2RGB),
                           severity, rng)
        else:
            out = function(colour, severity, rng)
        if out.shape != colour.shape or out.dtype != np.uint8:
            raise RuntimeError(f'{name} severity {severity} turned a uint8 '
                               f'image of shape {colour.shape} into a '
                               f'{out.dtype} one of shape {out.shape}')
        if channel_order == 'bgr' and not any_order:
            out = cv2.cvtColor(out, cv2.COLOR_RGB2BGR)
        if alpha is not None:
            out = np.concatenate([out, alpha], axis=-1)
        return out

    return run


_FUNCTIONS: dict[str, Callable] = {}


def get_corruption(name: str) -> Callable:
    """The function that applies corruption ``name``.

    The four default corruptions and glass_blur are mmspd's vectorised
    versions (:mod:`mmspd.corruptions.fast`, :mod:`~.defocus`,
    :mod:`~.fog`, :mod:`~.glass`); the others run imagecorruptions 1.1.2
    with the fixes of :mod:`mmspd.corruptions.reference`.

    Args:
        name (str): One of :data:`ALL_CORRUPTIONS`.

    Returns:
        Callable: ``fn(image, severity, rng=None, channel_order='rgb')``.
        ``image`` is uint8, at least 32 x 32, of shape ``(H, W, 3)``
        (returned in that shape), ``(H, W)`` or ``(H, W, 1)`` (grayscale:
        corrupted as three equal channels and returned as ``(H, W, 3)``,
        as ``imagecorruptions.corrupt`` does) or ``(H, W, 4)`` (the colour
        channels corrupted, alpha returned unchanged). Anything else, or a
        severity outside 1-5, raises a ValueError. ``rng`` (a
        :class:`numpy.random.RandomState`) drives the random corruptions;
        None means ``RandomState(0)``. ``channel_order`` (``'rgb'`` or
        ``'bgr'``) is the order of the colour channels of ``image`` and of
        the result; the corruptions are defined on RGB, and a BGR image
        gives the channel-swapped pixels of its RGB version.
    """
    check_corruption(name)
    if name not in _FUNCTIONS:
        _FUNCTIONS[name] = _checked(
            name, _FAST.get(name) or reference_corruption(name),
            any_order=name in _FAST)
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


_STATES = threading.local()


def reseeded_state(seed: int) -> np.random.RandomState:
    """This thread's :class:`numpy.random.RandomState`, seeded with ``seed``.

    It is in the state of ``np.random.RandomState(seed)``, without that
    constructor's cost: the constructor first seeds from OS entropy (about
    0.2 ms here, as long as a whole brightness corruption takes) and then
    replaces that state; reseeding a kept object takes microseconds. Later
    calls in the same thread reseed the same object, so use it before then.

    Args:
        seed (int): Seed in ``[0, 2**32)``, e.g. from :func:`image_seed`.

    Returns:
        np.random.RandomState: The thread's state.
    """
    return _reseeded(seed, 'state')


def _reseeded(seed: int, slot: str) -> np.random.RandomState:
    state = getattr(_STATES, slot, None)
    if state is None:
        state = np.random.RandomState()
        setattr(_STATES, slot, state)
    state.seed(seed)
    return state


def image_seed(seed: int, key: str, corruption: str, severity: int) -> int:
    """A 32-bit seed that depends only on its arguments.

    Uses BLAKE2b, not Python's ``hash`` (salted per process for strings), so
    every worker, rank and run derives the same seed.

    Args:
        seed (int): Global seed of the benchmark.
        key (str): Identifies the image; see :func:`image_key`.
        corruption (str): Corruption name.
        severity (int): Severity.

    Returns:
        int: Seed in ``[0, 2**32)``.
    """
    text = f'{int(seed)}\x00{key}\x00{corruption}\x00{int(severity)}'
    digest = hashlib.blake2b(text.encode('utf-8'), digest_size=4).digest()
    return int.from_bytes(digest, 'little')


def check_key(key: str) -> str:
    """Raise a ValueError naming :data:`KEYS` unless ``key`` is one."""
    if key not in KEYS:
        raise ValueError(f'Invalid key {key!r}; accepted: '
                         f'{", ".join(map(repr, KEYS))}')
    return key


def image_key(path: str, key: str = 'relative',
              root: str | None = None) -> str:
    """The part of an image path that seeds its corruption.

    Args:
        path (str): Image path.
        key (str): ``'relative'``: the path relative to ``root`` (the
            dataset root), so images of the same name in different folders
            differ and moving the dataset keeps the pixels; ``'name'``: the
            file name alone; ``'path'``: the whole path as given. Defaults
            to ``'relative'``.
        root (str, optional): Dataset root for ``'relative'``. Defaults to
            None: the path as given (relative to the working directory
            when it is relative).

    Returns:
        str: The key, with ``/`` separators.
    """
    check_key(key)
    path = os.fspath(path)
    if key == 'name':
        return osp.basename(path)
    if key == 'relative' and root is not None:
        path = osp.relpath(osp.abspath(path), osp.abspath(os.fspath(root)))
    return osp.normpath(path).replace(os.sep, '/')


def corrupt(image: np.ndarray,
            corruption: str,
            severity: int,
            rng: np.random.RandomState | None = None,
            channel_order: str = 'rgb') -> np.ndarray:
    """Corrupt an image; see :func:`get_corruption` for accepted shapes.

    Args:
        image (np.ndarray): uint8 RGB (or BGR), grayscale or RGBA (BGRA)
            image, at least 32 pixels high and wide.
        corruption (str): One of :data:`ALL_CORRUPTIONS`.
        severity (int): 1 to 5.
        rng (np.random.RandomState, optional): Randomness of the random
            corruptions; see :func:`image_seed` and :func:`reseeded_state`
            for a per-image state. Defaults to None: the state of
            ``RandomState(0)``.
        channel_order (str): ``'rgb'`` or ``'bgr'``: the order of the
            colour channels of ``image`` and of the result. The same image
            gives the same pixels in either order. Defaults to ``'rgb'``.

    Returns:
        np.ndarray: uint8 image, ``(H, W, 3)`` or (four-channel input)
        ``(H, W, 4)``, a new array.
    """
    return get_corruption(corruption)(image, severity, rng, channel_order)
