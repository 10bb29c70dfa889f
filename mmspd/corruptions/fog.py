"""Fog: imagecorruptions 1.1.2's plasma-fractal haze, in float32.

The diamond-square recursion, its wrap-around and its random amplitudes
are imagecorruptions'; the offsets are float32 uniforms drawn from a
:class:`numpy.random.Generator` seeded by the image's
:class:`numpy.random.RandomState` (see :mod:`mmspd.corruptions.fast`), so
the haze follows imagecorruptions' distribution, not its random stream.
"""
from __future__ import annotations

import numpy as np

from .fast import _generator, _scratch, _to_uint8

# Severity parameters (strength, wibble decay), from imagecorruptions 1.1.2.
_FOG = ((1.5, 2.), (2., 2.), (2.5, 1.7), (2.5, 1.5), (3., 1.4))


def _next_sum(a: np.ndarray, axis: int, out: np.ndarray) -> np.ndarray:
    """``out = a + np.roll(a, -1, axis)``, without the rolled copy."""
    if axis == 0:
        np.add(a[:-1], a[1:], out=out[:-1])
        np.add(a[-1], a[0], out=out[-1])
    else:
        # One pass over the flat array, then the last column's wrap.
        flat, flat_out = a.reshape(-1), out.reshape(-1)
        np.add(flat[:-1], flat[1:], out=flat_out[:-1])
        np.add(a[:, -1], a[:, 0], out=out[:, -1])
    return out


def _prev_sum(a: np.ndarray, axis: int, out: np.ndarray) -> np.ndarray:
    """``out = a + np.roll(a, 1, axis)``, without the rolled copy."""
    if axis == 0:
        np.add(a[1:], a[:-1], out=out[1:])
        np.add(a[0], a[-1], out=out[0])
    else:
        flat, flat_out = a.reshape(-1), out.reshape(-1)
        np.add(flat[1:], flat[:-1], out=flat_out[1:])
        np.add(a[:, 0], a[:, -1], out=out[:, 0])
    return out


def _fractal(mapsize: int, wibbledecay: float,
             rng: np.random.Generator) -> np.ndarray:
    """The diamond-square height map before its scaling to [0, 1]."""
    if mapsize < 2 or mapsize & (mapsize - 1):
        raise ValueError(
            f'mapsize must be a power of two >= 2, got {mapsize}')
    heights = np.zeros((mapsize, mapsize), dtype=np.float32)
    # All offsets in one call: the same numbers, in the same order, as one
    # call per step (3 n**2 at the step with n x n corners).
    uniforms = rng.random(
        dtype=np.float32,
        out=_scratch('uniforms', (mapsize * mapsize - 1, ), np.float32))
    work = _scratch('fractal', (5, (mapsize // 2)**2), np.float32)
    start, step, wibble = 0, mapsize, 100.
    while step >= 2:
        half, n = step // 2, mapsize // step
        offsets = uniforms[start:start + 3 * n * n].reshape(3, n, n)
        start += 3 * n * n
        # wibble * uniform(-wibble, wibble) and, below, total / 4 + offset.
        # Every operation rounds to float32, in this order: another order
        # would give other pixels.
        offsets *= np.float32(2 * wibble * wibble)
        offsets -= np.float32(wibble * wibble)
        corners, down, square, top, spare = (w[:n * n].reshape(n, n)
                                             for w in work)
        np.copyto(corners, heights[0::step, 0::step])
        # Squares: centre = the four corners' mean + offset.
        _next_sum(corners, 0, down)
        _next_sum(down, 1, square)
        square *= np.float32(0.25)
        square += offsets[0]
        heights[half::step, half::step] = square
        # Diamonds: edge midpoints from two corners and two centres.
        _prev_sum(square, 0, top)
        top += _next_sum(corners, 1, spare)
        top *= np.float32(0.25)
        top += offsets[1]
        heights[0::step, half::step] = top
        left = _prev_sum(square, 1, spare)
        left += down
        left *= np.float32(0.25)
        left += offsets[2]
        heights[half::step, 0::step] = left
        step //= 2
        wibble /= wibbledecay
    return heights


def plasma_fractal(mapsize: int, wibbledecay: float,
                   rng: np.random.Generator) -> np.ndarray:
    """Diamond-square height map in [0, 1], as imagecorruptions' fog makes.

    Args:
        mapsize (int): Side length, a power of two, at least 2.
        wibbledecay (float): Factor the random amplitude shrinks by per level.
        rng (np.random.Generator): Source of the random offsets.

    Returns:
        np.ndarray: ``(mapsize, mapsize)`` float32 map.
    """
    heights = _fractal(mapsize, wibbledecay, rng)
    heights -= heights.min()
    heights /= heights.max()
    return heights


def _next_power_of_2(value: int) -> int:
    return 1 if value == 0 else 2**(value - 1).bit_length()


def fog(image: np.ndarray, severity: int, rng: np.random.RandomState,
        channel_order: str = 'rgb') -> np.ndarray:
    """A plasma-fractal haze added to the image, then contrast restored.

    Args:
        image (np.ndarray): ``(H, W, 3)`` uint8 image.
        severity (int): 1 to 5.
        rng (np.random.RandomState): Seeds the fractal.
        channel_order (str): ``'rgb'`` or ``'bgr'``; the same haze goes
            into every channel, so both give the same pixels. Defaults to
            ``'rgb'``.

    Returns:
        np.ndarray: Corrupted ``(H, W, 3)`` uint8 image.
    """
    strength, decay = _FOG[severity - 1]
    height, width = image.shape[:2]
    # imagecorruptions sizes the map from the largest dimension of the
    # (H, W, 3) shape, channels included.
    mapsize = _next_power_of_2(int(max(image.shape)))
    heights = _fractal(mapsize, decay, _generator(rng))
    # Scaled to [0, 1] as plasma_fractal does, but only where it is used.
    low, high = heights.min(), heights.max()
    haze = heights[:height, :width]
    haze -= low
    haze /= high - low
    max_val = float(image.max()) / 255.
    # clip((x / 255 + s * haze) * m / (m + s), 0, 1) * 255, on the 0-255
    # scale so the image needs no division.
    gain = np.float32(max_val / (max_val + strength))
    haze *= np.float32(strength * 255.)
    out = np.add(image, haze[..., None],
                 out=_scratch('float', image.shape, np.float32))
    out *= gain
    return _to_uint8(out)
