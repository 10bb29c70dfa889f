"""Defocus blur: imagecorruptions 1.1.2's anti-aliased disk, in float32.

imagecorruptions filters each channel in float64 with ``cv2.filter2D``
(OpenCV's DFT route for its 17 x 17 and 21 x 21 kernels). mmspd crops the
same kernel to its non-negligible taps and writes it as a sum of 3 to 7
separable filters (its low-rank decomposition), applied in float32 to all
channels at once. The pixels are imagecorruptions' within one grey level
(the tests check every severity).
"""
from __future__ import annotations

import functools
import math

import cv2
import numpy as np

from .fast import _as_float32, _scratch, _to_uint8

# Severity parameters (radius, alias blur), from imagecorruptions 1.1.2.
_DEFOCUS_BLUR = ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5))


def disk_kernel(radius: int, alias_blur: float) -> np.ndarray:
    """The anti-aliased disk kernel of imagecorruptions' defocus blur.

    Args:
        radius (int): Disk radius in pixels.
        alias_blur (float): Sigma of the Gaussian that smooths the disk edge.

    Returns:
        np.ndarray: float32 kernel that sums to one.
    """
    # imagecorruptions builds at least a 17 x 17 grid even for small radii.
    half = max(radius, 8)
    coords = np.arange(-half, half + 1)
    xx, yy = np.meshgrid(coords, coords)
    kernel = (xx**2 + yy**2 <= radius**2).astype(np.float32)
    kernel /= kernel.sum()
    ksize = (3, 3) if radius <= 8 else (5, 5)
    return cv2.GaussianBlur(kernel, ksize=ksize, sigmaX=alias_blur)


def _support(kernel: np.ndarray, tol: float = 1e-12) -> np.ndarray:
    """The kernel cropped to its centred square of non-negligible taps.

    With ``alias_blur=0.1`` the Gaussian leaves taps around 1e-22 on the
    whole 17 x 17 grid; dropping them changes no output value.
    """
    centre = kernel.shape[0] // 2
    rows, cols = np.nonzero(kernel > tol * kernel.max())
    half = int(max(np.abs(rows - centre).max(), np.abs(cols - centre).max()))
    return np.ascontiguousarray(kernel[centre - half:centre + half + 1,
                                       centre - half:centre + half + 1])


def separable_terms(kernel: np.ndarray,
                    tol: float = 1e-7) -> list[tuple[np.ndarray, np.ndarray]]:
    """An exact sum of separable filters equal to ``kernel``.

    A disk has only as many distinct rows as its radius plus one, so its
    anti-aliased kernel has low rank (3 to 7 here); its singular value
    decomposition, cut where singular values vanish, gives that many
    (column, row) filter pairs. Filtering with them costs ``2 * side *
    rank`` multiplications per pixel instead of ``side**2``, and keeps
    OpenCV off its slower DFT route for the larger kernels.

    Args:
        kernel (np.ndarray): 2-D kernel.
        tol (float): Relative size below which a singular value is zero.

    Returns:
        list[tuple[np.ndarray, np.ndarray]]: ``(kx, ky)`` float32 pairs;
        the kernel is ``sum(outer(ky, kx))``.
    """
    u, s, vt = np.linalg.svd(kernel.astype(np.float64))
    rank = int((s > tol * s[0]).sum())
    return [((vt[i] * math.sqrt(s[i])).astype(np.float32),
             (u[:, i] * math.sqrt(s[i])).astype(np.float32))
            for i in range(rank)]


@functools.lru_cache(maxsize=len(_DEFOCUS_BLUR))
def defocus_kernel(severity: int) -> np.ndarray:
    """imagecorruptions' kernel of ``severity``, cropped to its support.

    Returns:
        np.ndarray: Square float32 kernel of odd side, summing to one.
    """
    return _support(disk_kernel(*_DEFOCUS_BLUR[severity - 1]))


@functools.lru_cache(maxsize=len(_DEFOCUS_BLUR))
def _terms(severity: int) -> list[tuple[np.ndarray, np.ndarray]]:
    return separable_terms(defocus_kernel(severity))


def defocus_blur(image: np.ndarray, severity: int,
                 rng: np.random.RandomState = None,
                 channel_order: str = 'rgb') -> np.ndarray:
    """Convolution with an anti-aliased disk (deterministic).

    Args:
        image (np.ndarray): ``(H, W, 3)`` uint8 image.
        severity (int): 1 to 5.
        rng (np.random.RandomState, optional): Unused; accepted so every
            corruption has the same signature. Defaults to None.
        channel_order (str): ``'rgb'`` or ``'bgr'``, the order of
            ``image``'s channels (and of the result's); both give the same
            pixels. Defaults to ``'rgb'``.

    Returns:
        np.ndarray: Corrupted ``(H, W, 3)`` uint8 image.
    """
    terms = _terms(severity)
    # A BGR image is blurred as the RGB image it holds: OpenCV's vector
    # code and a row's scalar tail may round the last bit differently, and
    # which values fall in the tail depends on their channel's place.
    flip = channel_order == 'bgr'
    source = _as_float32(cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
                         if flip else image)
    # The default border (BORDER_REFLECT_101) is the one imagecorruptions'
    # filter2D uses.
    out = cv2.sepFilter2D(source, -1, *terms[0],
                          dst=_scratch('blur', image.shape, np.float32))
    part = _scratch('part', image.shape, np.float32)
    for kx, ky in terms[1:]:
        cv2.add(out, cv2.sepFilter2D(source, -1, kx, ky, dst=part), dst=out)
    out = _to_uint8(out)
    return cv2.cvtColor(out, cv2.COLOR_RGB2BGR) if flip else out
