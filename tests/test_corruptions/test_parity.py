"""mmspd's fast corruptions against imagecorruptions 1.1.2.

Deterministic corruptions must give imagecorruptions' pixels within one
grey level; random ones draw other numbers from the same distributions, so
they are compared in distribution: mean, spread, change from the clean
image and, for fog's fractal, the power spectrum.
"""
from __future__ import annotations

import numpy as np
import pytest

from mmspd.corruptions import SEVERITIES, compatible_imagecorruptions, corrupt
from mmspd.corruptions.fast import (
    _GAUSSIAN_NOISE,
    _generator,
    noise_levels,
    normal_table,
)
from mmspd.corruptions.fog import plasma_fractal

from .conftest import photo, reference

DETERMINISTIC = ('defocus_blur', 'brightness')
SEEDS = range(8)


def stats(images: list, clean: np.ndarray) -> dict:
    """Mean and spread of the pixels, and their mean change from clean."""
    stack = np.stack(images).astype(np.float64)
    return {
        'mean': stack.mean(),
        'std': stack.std(),
        'change': np.abs(stack - clean).mean(),
    }


@pytest.mark.parametrize('severity', SEVERITIES)
@pytest.mark.parametrize('name', DETERMINISTIC)
@pytest.mark.parametrize('shape', [(144, 200), (97, 61)])
def test_deterministic_within_one_grey_level(name, severity, shape):
    image = photo(*shape)
    ours = corrupt(image, name, severity)
    theirs, _ = reference(image, name, severity, seed=0)
    assert ours.dtype == np.uint8 and ours.shape == image.shape
    diff = np.abs(ours.astype(np.int16) - theirs)
    assert (diff <= 1).mean() >= 0.999
    assert diff.max() <= 2


@pytest.mark.parametrize('severity', SEVERITIES)
def test_defocus_blur_of_bgr_is_that_of_rgb_on_odd_widths(severity):
    # 61 x 3 values per row leave OpenCV a scalar tail: the channels'
    # places must not change a bit.
    rgb = photo(37, 61)
    np.testing.assert_array_equal(
        corrupt(rgb[..., ::-1].copy(), 'defocus_blur', severity,
                channel_order='bgr'),
        corrupt(rgb, 'defocus_blur', severity)[..., ::-1])


def test_brightness_on_every_colour():
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
@pytest.mark.parametrize('flat', [True, False])
def test_gaussian_noise_distribution(severity, flat):
    # A flat grey image shows the noise itself; the photo adds clipping.
    image = np.full((96, 128, 3), 128, np.uint8) if flat else \
        photo(96, 128)
    ours = stats([corrupt(image, 'gaussian_noise', severity,
                          np.random.RandomState(seed)) for seed in SEEDS],
                 image)
    theirs = stats([reference(image, 'gaussian_noise', severity, seed)[0]
                    for seed in SEEDS], image)
    assert ours['mean'] == pytest.approx(theirs['mean'], abs=0.4)
    assert ours['std'] == pytest.approx(theirs['std'], rel=0.01)
    assert ours['change'] == pytest.approx(theirs['change'], rel=0.01)


def test_normal_table_is_a_standard_normal():
    table = normal_table()
    assert np.all(np.diff(table) > 0)
    assert abs(table.mean()) < 1e-9
    assert table.var() == pytest.approx(1., abs=1e-5)
    # Tails: the most extreme bin means are those of a normal.
    assert table[-1] == pytest.approx(4.3875, abs=1e-3)


@pytest.mark.parametrize('severity', SEVERITIES)
def test_integer_noise_levels_equal_the_float32_sums(severity):
    # Every uint8 value plus every float32 level, clipped and truncated as
    # imagecorruptions.corrupt does, against the integer route.
    levels = (normal_table() * (_GAUSSIAN_NOISE[severity - 1] * 255.)
              ).astype(np.float32)
    values = np.arange(256, dtype=np.uint8)[:, None]
    expected = np.clip(values + levels, 0, 255).astype(np.uint8)
    sums = values + noise_levels(severity).astype(np.int32)
    np.testing.assert_array_equal(np.clip(sums, 0, 255), expected)


@pytest.mark.parametrize('channel_order', ['rgb', 'bgr'])
@pytest.mark.parametrize('shape', [(48, 64), (33, 35)])
def test_gaussian_noise_is_the_table_at_float32_uniforms(shape,
                                                         channel_order):
    # The definition: float32 uniforms from the image's generator, in
    # RGB order, index the 65,536-level table (odd pixel counts too).
    rgb = photo(*shape)
    for severity in (1, 5):
        uniforms = _generator(np.random.RandomState(7)).random(
            rgb.shape, dtype=np.float32)
        levels = (normal_table() * (_GAUSSIAN_NOISE[severity - 1] * 255.)
                  ).astype(np.float32)
        noise = levels[(uniforms * np.float32(65536)).astype(np.uint16)]
        expected = np.clip(rgb + noise, 0, 255).astype(np.uint8)
        image = rgb[..., ::-1].copy() if channel_order == 'bgr' else rgb
        out = corrupt(image, 'gaussian_noise', severity,
                      np.random.RandomState(7), channel_order)
        if channel_order == 'bgr':
            out = out[..., ::-1]
        np.testing.assert_array_equal(out, expected)


def test_noise_follows_the_seed_and_not_the_global_state():
    image = photo(64, 64)
    first = corrupt(image, 'gaussian_noise', 3, np.random.RandomState(1))
    np.random.seed(99)
    again = corrupt(image, 'gaussian_noise', 3, np.random.RandomState(1))
    np.testing.assert_array_equal(first, again)
    other = corrupt(image, 'gaussian_noise', 3, np.random.RandomState(2))
    assert (first != other).mean() > 0.5


@pytest.mark.parametrize('severity', SEVERITIES)
def test_fog_distribution(severity):
    image = photo(96, 128)
    seeds = range(16)
    ours = stats([corrupt(image, 'fog', severity,
                          np.random.RandomState(s)) for s in seeds], image)
    theirs = stats([reference(image, 'fog', severity, s)[0] for s in seeds],
                   image)
    for key in ('mean', 'std', 'change'):
        assert ours[key] == pytest.approx(theirs[key], rel=0.06), key


@pytest.mark.parametrize('severity', SEVERITIES)
@pytest.mark.parametrize('shape', [(144, 200), (50, 300), (300, 40)])
def test_fog_given_the_same_fractal_matches(severity, shape):
    # Fed the same fractal, imagecorruptions' fog gives our pixels: all
    # that differs is how the fractal's random numbers are drawn (checked
    # in distribution above and below).
    image = photo(*shape)
    ours = corrupt(image, 'fog', severity, np.random.RandomState(3))
    with compatible_imagecorruptions() as module:
        original = module.plasma_fractal
        module.plasma_fractal = lambda mapsize, wibbledecay: \
            plasma_fractal(mapsize, wibbledecay,
                           _generator(np.random.RandomState(3)))
        try:
            theirs = np.uint8(module.fog(image, severity))
        finally:
            module.plasma_fractal = original
    diff = np.abs(ours.astype(np.int16) - theirs)
    assert diff.max() <= 1 and (diff == 0).mean() >= 0.99


@pytest.mark.parametrize('decay', [2., 1.4])
@pytest.mark.parametrize('mapsize', [2, 8, 64])
def test_fog_fractal_is_imagecorruptions_recursion(mapsize, decay,
                                                   monkeypatch):
    # imagecorruptions' plasma_fractal, its uniform draws replaced by ours
    # (in float64), gives our map up to float32 rounding.
    uniforms = _generator(np.random.RandomState(5)).random(
        mapsize * mapsize - 1, dtype=np.float32).astype(np.float64)
    used = []

    def uniform(low, high, size):
        count = int(np.prod(size))
        start = sum(used)
        used.append(count)
        return low + (high - low) * uniforms[start:start + count].reshape(
            size)

    ours = plasma_fractal(mapsize, decay,
                          _generator(np.random.RandomState(5)))
    with compatible_imagecorruptions() as module:
        monkeypatch.setattr(np.random, 'uniform', uniform)
        theirs = module.plasma_fractal(mapsize=mapsize, wibbledecay=decay)
    assert sum(used) == uniforms.size
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5)


def radial_spectrum(maps: list) -> np.ndarray:
    """Mean power per octave of spatial frequency, over the maps."""
    size = maps[0].shape[0]
    freq = np.fft.fftfreq(size) * size
    radius = np.hypot(*np.meshgrid(freq, freq))
    octaves = np.floor(np.log2(np.maximum(radius, 1))).astype(int)
    power = np.mean([np.abs(np.fft.fft2(m - m.mean()))**2 for m in maps],
                    axis=0)
    return np.array([power[(octaves == k) & (radius >= 1)].mean()
                     for k in range(int(np.log2(size)))])


@pytest.mark.parametrize('decay', [2., 1.7, 1.4])
def test_fog_fractal_spectrum(decay):
    size, seeds = 256, range(12)
    ours = [plasma_fractal(size, decay,
                           _generator(np.random.RandomState(s)))
            for s in seeds]
    theirs = []
    with compatible_imagecorruptions() as module:
        saved = np.random.get_state()
        try:
            for seed in seeds:
                np.random.seed(seed)
                theirs.append(module.plasma_fractal(mapsize=size,
                                                    wibbledecay=decay))
        finally:
            np.random.set_state(saved)
    for fractal in ours:
        assert fractal.min() == 0 and fractal.max() == 1
    ratio = radial_spectrum(ours) / radial_spectrum(theirs)
    # Within 35 % in every octave; a decay off by 0.3 is off by more than
    # that in the fine octaves.
    assert np.all(np.abs(np.log(ratio)) < np.log(1.35)), ratio


@pytest.mark.parametrize('shape', [(32, 32), (50, 300), (300, 40)])
def test_fog_on_odd_shapes(shape):
    image = photo(*shape)
    out = corrupt(image, 'fog', 3, np.random.RandomState(7))
    assert out.shape == image.shape
    # Fog lowers contrast and lightens: never the clean image.
    assert out.std() < image.std()


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
