from __future__ import annotations

import cv2
import numpy as np
import pytest

from mmspd.corruptions import compatible_imagecorruptions


def photo(height: int, width: int) -> np.ndarray:
    """scikit-image's astronaut photograph, resized: natural statistics."""
    from skimage import data
    image = cv2.resize(data.astronaut(), (width, height),
                       interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(image)


@pytest.fixture(scope='session')
def image() -> np.ndarray:
    # Not square and not a power of two, so fog crops its map.
    return photo(144, 200)


def reference(image: np.ndarray, name: str, severity: int,
              seed: int) -> tuple:
    """imagecorruptions.corrupt on the global state seeded with ``seed``.

    Returns:
        tuple: The corrupted image and the global random state after it.
    """
    with compatible_imagecorruptions():
        import imagecorruptions
        saved = np.random.get_state()
        np.random.seed(seed)
        try:
            out = imagecorruptions.corrupt(image, severity, name)
            state = np.random.get_state()
        finally:
            np.random.set_state(saved)
    return out, state
