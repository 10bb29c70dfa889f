"""Glass blur: imagecorruptions 1.1.2's, with its pixel loop vectorised.

imagecorruptions moves pixels one at a time in a Python loop; this module
resolves the same moves for the whole image at once and draws the same
offsets from the same random stream, so the pixels are identical.
"""
from __future__ import annotations

import numpy as np

# sigma, max_delta, iterations
_GLASS_BLUR = ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2))


def _local_shuffle(image: np.ndarray, delta: int,
                   offsets: np.ndarray) -> np.ndarray:
    """One pass of glass blur's pixel moves, without a Python loop.

    imagecorruptions visits (h, w) from the bottom-right corner up, row by
    row, and runs ``x[h, w], x[h2, w2] = x[h2, w2], x[h, w]`` on a numpy
    image. Both sides are views, so that statement copies ``x[h2, w2]`` into
    ``x[h, w]`` and leaves ``x[h2, w2]`` as it was. A visited pixel thus
    takes the value its source has at that moment: the source's own new
    value if the source was visited earlier in the pass, else its old one.
    Following sources through earlier-visited pixels (pointer jumping, in
    O(log chain length) vectorised steps) gives every pixel's final origin.

    Args:
        image (np.ndarray): ``(H, W, C)`` image.
        delta (int): Largest move in pixels.
        offsets (np.ndarray): ``(N, 2)`` ``(dx, dy)`` of the N visited
            pixels, in visiting order.

    Returns:
        np.ndarray: The image after the pass.
    """
    height, width = image.shape[:2]
    rows = np.arange(height - delta, delta, -1)
    cols = np.arange(width - delta, delta, -1)
    rows, cols = np.meshgrid(rows, cols, indexing='ij')
    visited = (rows * width + cols).ravel()
    source = visited + offsets[:, 1] * width + offsets[:, 0]

    size = height * width
    step = np.full(size, size, dtype=np.intp)  # never visited: after all
    step[visited] = np.arange(visited.size)
    # Each visited pixel points at its source if the source moved before
    # it; a pixel pointing at itself ends its chain.
    follow = np.arange(size)
    earlier = step[source] < step[visited]
    follow[visited[earlier]] = source[earlier]
    while True:
        jumped = follow[follow]
        if np.array_equal(jumped, follow):
            break
        follow = jumped
    origin = np.arange(size)
    source_of = np.arange(size)
    source_of[visited] = source
    origin[visited] = source_of[follow[visited]]
    return image.reshape(size, -1)[origin].reshape(image.shape)


def glass_blur(image: np.ndarray, severity: int,
               rng: np.random.RandomState,
               channel_order: str = 'rgb') -> np.ndarray:
    """Gaussian blur, local pixel moves, Gaussian blur again.

    The blurs are scikit-image's, as in imagecorruptions; the moves draw
    the same offsets from ``rng`` (one ``randint`` call per pass instead of
    one per pixel: the same stream) and give identical pixels.

    Args:
        image (np.ndarray): ``(H, W, 3)`` uint8 image.
        severity (int): 1 to 5.
        rng (np.random.RandomState): Source of the moves.
        channel_order (str): ``'rgb'`` or ``'bgr'``; the blurs and moves
            treat every channel alike, so both give the same pixels.
            Defaults to ``'rgb'``.

    Returns:
        np.ndarray: Corrupted ``(H, W, 3)`` uint8 image.
    """
    from skimage.filters import gaussian
    sigma, delta, iterations = _GLASS_BLUR[severity - 1]
    height, width = image.shape[:2]
    out = np.uint8(gaussian(image / 255., sigma=sigma, channel_axis=-1) * 255)
    visits = (len(range(height - delta, delta, -1)) *
              len(range(width - delta, delta, -1)))
    for _ in range(iterations):
        offsets = rng.randint(-delta, delta, size=(visits, 2))
        if visits:
            out = _local_shuffle(out, delta, offsets)
    out = gaussian(out / 255., sigma=sigma, channel_axis=-1)
    return np.uint8(np.clip(out, 0, 1) * 255)
