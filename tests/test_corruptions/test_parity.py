"""mmspd's fast corruptions against imagecorruptions 1.1.2."""
from __future__ import annotations

import numpy as np
import pytest

from mmspd.corruptions import DEFAULT_CORRUPTIONS, SEVERITIES, corrupt

from .conftest import photo, reference

RANDOM = ('gaussian_noise', 'fog')


@pytest.mark.parametrize('severity', SEVERITIES)
@pytest.mark.parametrize('name', DEFAULT_CORRUPTIONS)
def test_matches_imagecorruptions(image, name, severity):
    rng = np.random.RandomState(severity)
    ours = corrupt(image, name, severity, rng)
    theirs, state_after = reference(image, name, severity, seed=severity)

    assert ours.dtype == np.uint8 and ours.shape == image.shape
    diff = np.abs(ours.astype(np.int16) - theirs)
    # Float32 vs float64 arithmetic flips truncation by one grey level at
    # most, and only for values within rounding error of an integer.
    assert diff.max() <= 1
    assert (diff == 0).mean() >= 0.95
    if name in RANDOM:
        # Same draws, same order: identical but for those rare flips.
        assert (diff == 0).mean() >= 0.999
        after = rng.get_state()
        assert after[0] == state_after[0]
        np.testing.assert_array_equal(after[1], state_after[1])
        assert after[2:] == state_after[2:]


@pytest.mark.parametrize('shape', [(32, 32), (50, 300), (300, 40),
                                   (129, 257)])
def test_fog_parity_on_odd_shapes(shape):
    image = photo(*shape)
    ours = corrupt(image, 'fog', 3, np.random.RandomState(7))
    theirs, _ = reference(image, 'fog', 3, seed=7)
    diff = np.abs(ours.astype(np.int16) - theirs)
    assert diff.max() <= 1 and (diff == 0).mean() >= 0.999


def test_brightness_parity_on_every_colour():
    # Every (max, other) channel pair, black and white included: the
    # closed form must hold across the whole RGB cube, not just photos.
    values = np.arange(0, 256, 3, dtype=np.uint8)
    r, g, b = np.meshgrid(values, values, values, indexing='ij')
    cube = np.stack([r, g, b], axis=-1).reshape(-1, 86, 3)
    for severity in SEVERITIES:
        ours = corrupt(cube, 'brightness', severity)
        theirs, _ = reference(cube, 'brightness', severity, seed=0)
        diff = np.abs(ours.astype(np.int16) - theirs)
        assert diff.max() <= 1
        assert (diff == 0).mean() >= 0.98


@pytest.mark.parametrize('severity', SEVERITIES)
def test_glass_blur_is_identical(severity):
    # imagecorruptions moves pixels one by one in Python; small image.
    image = photo(40, 56)
    rng = np.random.RandomState(severity)
    ours = corrupt(image, 'glass_blur', severity, rng)
    theirs, state_after = reference(image, 'glass_blur', severity,
                                    seed=severity)
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(rng.get_state()[1], state_after[1])
    assert rng.get_state()[2] == state_after[2]
