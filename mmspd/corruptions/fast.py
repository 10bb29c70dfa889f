"""Fast Gaussian noise and brightness, and the helpers of every fast
corruption (these, :mod:`~.defocus` and :mod:`~.fog`).

Each function follows the definition in ``imagecorruptions/corruptions.py``
(Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common
Corruptions and Perturbations", ICLR 2019; Michaelis et al., 2019) with the
same severity parameters, but works on ``uint8`` arrays with float32 or
integer OpenCV / numpy arithmetic instead of float64 and scikit-image
colour conversions.

Deterministic corruptions (brightness here, defocus blur in
:mod:`mmspd.corruptions.defocus`) give the pixels of imagecorruptions
within one grey level on at least 99.9% of pixels (float32 against float64
rounding).
Random ones draw from the same distributions, not the same random stream:
Gaussian noise from a 65,536-level inverse-CDF table of the standard normal
(bin means: mean 0, variance 1 - 1.5e-6; the 1/65,536 of draws beyond
4.17 sigma on each side take that tail's mean, 4.39 sigma), fog's
plasma fractal (:mod:`mmspd.corruptions.fog`) with the same diamond-square
recursion on float32 uniforms. Their generator is a
:class:`numpy.random.Generator` (SFC64) seeded from the
:class:`numpy.random.RandomState` passed in, so the same state gives the
same pixels. (Glass blur, in :mod:`mmspd.corruptions.glass`, keeps
imagecorruptions' stream and gives identical pixels.)

All functions take and return ``(H, W, 3)`` ``uint8`` images, RGB or (with
``channel_order='bgr'``) BGR, and a BGR image gets the channel-swapped
pixels of its RGB version. As in ``imagecorruptions.corrupt``, float
results are truncated (not rounded) to ``uint8``.
"""
from __future__ import annotations

import functools
import math
import statistics
import sys
import threading

import cv2
import numpy as np

# Severity parameters, copied from imagecorruptions 1.1.2.
_GAUSSIAN_NOISE = (0.08, 0.12, 0.18, 0.26, 0.38)
_BRIGHTNESS = (0.1, 0.2, 0.3, 0.4, 0.5)


def _to_uint8(img: np.ndarray) -> np.ndarray:
    """Clip to [0, 255] and truncate, as ``np.uint8(clip(x, 0, 1) * 255)``."""
    np.clip(img, 0, 255, out=img)
    return img.astype(np.uint8)


_SCRATCH = threading.local()


def _scratch(slot: str, shape: tuple, dtype) -> np.ndarray:
    """A work array kept per thread and ``slot`` (contents undefined).

    Once the allocator has handed freed memory back to the system, every
    fresh multi-megabyte array costs a page fault per 4 KiB page, which
    took longer than the arithmetic itself; reusing one array per slot and
    thread avoids that. Memory stays bounded: one array per slot, replaced
    when the image size changes.
    """
    arrays = getattr(_SCRATCH, 'arrays', None)
    if arrays is None:
        arrays = _SCRATCH.arrays = {}
    array = arrays.get(slot)
    if array is None or array.shape != tuple(shape) or \
            array.dtype != np.dtype(dtype):
        array = arrays[slot] = np.empty(shape, dtype)
    return array


def _as_float32(image: np.ndarray, slot: str = 'float') -> np.ndarray:
    """``image`` as float32, in a scratch array."""
    out = _scratch(slot, image.shape, np.float32)
    np.copyto(out, image, casting='unsafe')
    return out


def _generator(rng: np.random.RandomState) -> np.random.Generator:
    """A fast generator seeded by (and advancing) ``rng``."""
    seed = rng.randint(0, 2**32, size=4, dtype=np.uint64)
    return np.random.Generator(np.random.SFC64(seed))


_NORMAL_LEVELS = 1 << 16


@functools.lru_cache(maxsize=2)
def normal_table(levels: int = _NORMAL_LEVELS) -> np.ndarray:
    """Standard normal quantised to ``levels`` equally likely values.

    Entry ``k`` is the mean of the normal over its ``k``-th quantile bin,
    so a uniform index into the table has mean 0 and a variance short of 1
    only by the (tiny) spread inside the bins.

    Returns:
        np.ndarray: ``(levels,)`` float64, increasing.
    """
    inv_cdf = statistics.NormalDist().inv_cdf
    edges = np.array([inv_cdf(k / levels) for k in range(1, levels)])
    density = np.exp(-0.5 * edges**2) / math.sqrt(2 * math.pi)
    density = np.concatenate([[0.], density, [0.]])
    # E[z | a < z < b] = (pdf(a) - pdf(b)) / (cdf(b) - cdf(a)).
    return (density[:-1] - density[1:]) * levels


@functools.lru_cache(maxsize=len(_GAUSSIAN_NOISE))
def noise_levels(severity: int) -> np.ndarray:
    """Gaussian noise of ``severity`` in grey levels, as added to pixels.

    The float32 noise is the normal table times ``c * 255``. A uint8 value
    plus a float32 noise level, clipped to [0, 255] and truncated, equals
    the value plus the level's floor, clipped, for every value and level
    of the five tables (the tests check all of them), so the noise can be
    added in integers.

    Returns:
        np.ndarray: ``(65536,)`` int16.
    """
    scale = _GAUSSIAN_NOISE[severity - 1]
    levels = (normal_table() * (scale * 255.)).astype(np.float32)
    return np.floor(levels).astype(np.int16)


def uniform_indices(rng: np.random.RandomState, count: int) -> np.ndarray:
    """``count`` uniform 16-bit indices, drawn by :func:`_generator`.

    They are ``floor(u * 65536)`` of the float32 uniforms ``u =
    generator.random(count, dtype=np.float32)``: each such ``u`` is a
    32-bit draw shifted right by 8 bits and scaled by 2**-24, so the index
    is the draw's top 16 bits. SFC64 hands out each 64-bit output as two
    32-bit draws, low half first, so the indices are read from the raw
    outputs without converting to float.

    Returns:
        np.ndarray: ``(count,)`` uint16 (possibly a strided view).
    """
    raw = _generator(rng).bit_generator.random_raw((count + 1) // 2)
    if sys.byteorder == 'little':
        # 16-bit words 1 and 3 of each output: the two draws' top halves.
        return raw.view(np.uint16)[1::2][:count]
    halves = np.stack([raw >> np.uint64(16), raw >> np.uint64(48)], axis=-1)
    return (halves & np.uint64(0xffff)).astype(np.uint16).ravel()[:count]


def gaussian_noise(image: np.ndarray, severity: int,
                   rng: np.random.RandomState,
                   channel_order: str = 'rgb') -> np.ndarray:
    """Additive Gaussian noise with standard deviation ``c`` on [0, 1].

    Args:
        image (np.ndarray): ``(H, W, 3)`` uint8 image.
        severity (int): 1 to 5.
        rng (np.random.RandomState): Seeds the noise.
        channel_order (str): ``'rgb'`` or ``'bgr'``, the order of
            ``image``'s channels (and of the result's). The noise is drawn
            in RGB order, so both orders give the same pixels. Defaults to
            ``'rgb'``.

    Returns:
        np.ndarray: Corrupted ``(H, W, 3)`` uint8 image.
    """
    # Uniform indices into the quantile table: several times faster than
    # drawing normals.
    index = uniform_indices(rng, image.size).reshape(image.shape)
    # mode='clip' (indices are in range anyway): 'raise' buffers the output.
    noise = noise_levels(severity).take(
        index, mode='clip', out=_scratch('noise', image.shape, np.int16))
    if channel_order == 'bgr':
        # Drawn in RGB order. cvtColor swaps 16-bit channels unsigned; a
        # permutation keeps every bit.
        noise = cv2.cvtColor(noise.view(np.uint16),
                             cv2.COLOR_RGB2BGR).view(np.int16)
    # Saturating uint8 + int16 in one pass.
    return cv2.add(image, noise, dtype=cv2.CV_8U)


def _brightness_table(shift: float) -> np.ndarray:
    """Output value for every (channel max V, channel value) pair.

    Raising HSV value by ``shift`` keeps hue and saturation, and every RGB
    channel of an HSV colour is proportional to V, so each channel is scaled
    by ``min(V + shift, 1) / V``; black pixels become grey ``shift``.
    """
    value = np.arange(256, dtype=np.float64)[:, None] / 255.
    channel = np.arange(256, dtype=np.float64)[None, :] / 255.
    new_value = np.minimum(value + shift, 1.)
    with np.errstate(divide='ignore', invalid='ignore'):
        table = channel * (new_value / value)
    table[0, :] = new_value[0, 0]
    # The largest channel is V itself: no ratio, so no rounding error.
    np.fill_diagonal(table, new_value[:, 0])
    table = np.clip(table, 0., 1.) * 255.
    return table.astype(np.uint8).ravel()


_BRIGHTNESS_TABLES = {}


def brightness(image: np.ndarray, severity: int,
               rng: np.random.RandomState = None,
               channel_order: str = 'rgb') -> np.ndarray:
    """Raise HSV value by ``c`` (deterministic).

    Args:
        image (np.ndarray): ``(H, W, 3)`` uint8 image.
        severity (int): 1 to 5.
        rng (np.random.RandomState, optional): Unused; accepted so every
            corruption has the same signature. Defaults to None.
        channel_order (str): ``'rgb'`` or ``'bgr'``; value is the largest
            channel and every channel is scaled alike, so both give the
            same pixels. Defaults to ``'rgb'``.

    Returns:
        np.ndarray: Corrupted ``(H, W, 3)`` uint8 image.
    """
    shift = _BRIGHTNESS[severity - 1]
    table = _BRIGHTNESS_TABLES.get(shift)
    if table is None:
        table = _BRIGHTNESS_TABLES.setdefault(shift,
                                              _brightness_table(shift))
    # OpenCV's split and max are far faster than numpy's reduction over
    # the channel axis.
    planes = cv2.split(image)
    value = cv2.max(cv2.max(planes[0], planes[1]), planes[2])
    # Table index value * 256 + channel, exact in addWeighted's float
    # arithmetic (at most 65,535), in one pass.
    index = cv2.addWeighted(cv2.merge([value, value, value]), 256., image,
                            1., 0., dtype=cv2.CV_16U)
    return table.take(index, mode='clip')
