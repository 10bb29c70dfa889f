"""Names, groups, severities, seeding and the imagecorruptions fixes."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from mmspd.corruptions import (
    ALL_CORRUPTIONS,
    CORRUPTION_GROUPS,
    DEFAULT_CORRUPTIONS,
    check_severity,
    corrupt,
    get_corruption,
    image_key,
    image_seed,
    reseeded_state,
    resolve_corruptions,
)
from mmspd.utils import import_imagecorruptions

from .conftest import photo


def test_groups_match_imagecorruptions():
    ic = import_imagecorruptions()
    assert resolve_corruptions('benchmark') == ic.get_corruption_names(
        'common')
    assert resolve_corruptions('all') == ic.get_corruption_names('all')
    for group in ('noise', 'blur', 'weather', 'digital'):
        assert resolve_corruptions(group) == ic.get_corruption_names(group)
    assert resolve_corruptions('holdout') == ic.get_corruption_names(
        'validation')
    assert resolve_corruptions('default') == list(DEFAULT_CORRUPTIONS)
    assert set(DEFAULT_CORRUPTIONS) == {
        'fog', 'defocus_blur', 'gaussian_noise', 'brightness'
    }


def test_resolve_mixes_names_and_groups_without_duplicates():
    assert resolve_corruptions(['fog', 'weather', 'contrast']) == [
        'fog', 'snow', 'frost', 'brightness', 'contrast'
    ]


@pytest.mark.parametrize('bad', ['fogg', 'Fog', 'clean', ''])
def test_unknown_name_lists_what_is_accepted(bad):
    with pytest.raises(ValueError) as info:
        resolve_corruptions(['fog', bad])
    message = str(info.value)
    assert repr(bad) in message
    assert 'gaussian_noise' in message and 'benchmark' in message
    with pytest.raises(ValueError, match='accepted'):
        corrupt(photo(40, 40), bad, 1)


@pytest.mark.parametrize('bad', [0, 6, -1, 2.5, '3', True, None])
def test_bad_severity_lists_what_is_accepted(bad):
    with pytest.raises(ValueError, match=r'accepted: 1, 2, 3, 4, 5'):
        check_severity(bad)
    with pytest.raises(ValueError, match='severity'):
        corrupt(photo(40, 40), 'fog', bad)


@pytest.mark.parametrize('name', ALL_CORRUPTIONS)
def test_bad_images_are_rejected(name):
    function = get_corruption(name)
    with pytest.raises(ValueError, match='at least 32'):
        function(photo(31, 64), 1)
    with pytest.raises(ValueError, match='uint8'):
        function(photo(40, 40).astype(np.float32), 1)
    for bad in (photo(40, 40)[..., :2], photo(40, 40)[None],
                np.zeros(40, np.uint8)):
        with pytest.raises(ValueError, match=r'\(H, W, 3\) \(RGB\)'):
            function(bad, 1)
    with pytest.raises(ValueError, match='accepted: 1, 2, 3, 4, 5'):
        function(photo(40, 40), 0)


@pytest.mark.parametrize('name', ALL_CORRUPTIONS)
def test_grayscale_is_corrupted_as_three_equal_channels(name):
    # As imagecorruptions.corrupt: the gray image stacked to RGB.
    gray = photo(40, 48)[..., 1].copy()
    rgb = np.stack([gray] * 3, axis=-1)
    function = get_corruption(name)
    expected = function(rgb, 2, np.random.RandomState(4))
    for image in (gray, gray[..., None]):
        out = function(image, 2, np.random.RandomState(4))
        assert out.shape == (40, 48, 3) and out.dtype == np.uint8
        np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize('name', ALL_CORRUPTIONS)
def test_rgba_keeps_its_alpha(name):
    rgb = photo(40, 48)
    alpha = np.arange(40 * 48, dtype=np.uint8).reshape(40, 48, 1)
    out = get_corruption(name)(np.concatenate([rgb, alpha], axis=-1), 3,
                               np.random.RandomState(2))
    assert out.shape == (40, 48, 4)
    np.testing.assert_array_equal(out[..., 3:], alpha)
    np.testing.assert_array_equal(
        out[..., :3], corrupt(rgb, name, 3, np.random.RandomState(2)))


@pytest.mark.parametrize('name', ALL_CORRUPTIONS)
def test_bgr_gives_the_swapped_pixels_of_rgb(name):
    # OpenCV-loaded images are BGR: the same scene must be corrupted the
    # same way, whichever order its channels come in.
    rgb = photo(40, 48)
    expected = corrupt(rgb, name, 4, np.random.RandomState(3))
    out = corrupt(rgb[..., ::-1].copy(), name, 4, np.random.RandomState(3),
                  channel_order='bgr')
    np.testing.assert_array_equal(out, expected[..., ::-1])
    assert out.flags['C_CONTIGUOUS']
    gray = rgb[..., 1].copy()
    np.testing.assert_array_equal(
        corrupt(gray, name, 4, np.random.RandomState(3), 'bgr'),
        corrupt(gray, name, 4, np.random.RandomState(3))[..., ::-1])
    alpha = np.full((40, 48, 1), 9, np.uint8)
    bgra = np.concatenate([rgb[..., ::-1], alpha], axis=-1)
    out = corrupt(bgra, name, 4, np.random.RandomState(3), 'bgr')
    np.testing.assert_array_equal(out[..., :3], expected[..., ::-1])
    np.testing.assert_array_equal(out[..., 3:], alpha)


def test_unknown_channel_order_lists_what_is_accepted():
    with pytest.raises(ValueError, match=r"'BGR'.*accepted: 'rgb', 'bgr'"):
        corrupt(photo(40, 40), 'fog', 1, channel_order='BGR')


@pytest.mark.parametrize('name', DEFAULT_CORRUPTIONS)
def test_input_is_left_unchanged(name):
    image = photo(40, 48)
    before = image.copy()
    out = corrupt(image, name, 5, np.random.RandomState(0), 'bgr')
    np.testing.assert_array_equal(image, before)
    assert not np.shares_memory(out, image)
    # The result is the caller's: the next call does not overwrite it.
    kept = out.copy()
    corrupt(image, name, 5, np.random.RandomState(1), 'bgr')
    np.testing.assert_array_equal(out, kept)


def test_image_seed_depends_on_every_part():
    base = image_seed(0, 'a.jpg', 'fog', 1)
    variants = [
        image_seed(1, 'a.jpg', 'fog', 1),
        image_seed(0, 'b.jpg', 'fog', 1),
        image_seed(0, 'a.jpg', 'snow', 1),
        image_seed(0, 'a.jpg', 'fog', 2),
    ]
    assert all(0 <= s < 2**32 for s in [base, *variants])
    assert len({base, *variants}) == 5
    assert image_key('/data/x/JPEGImages/a.jpg', 'name') == 'a.jpg'
    assert image_key('/data/x/a.jpg', 'path') == '/data/x/a.jpg'
    with pytest.raises(ValueError, match="'relative', 'name', 'path'"):
        image_key('a.jpg', 'stem')


def test_image_key_is_relative_to_the_dataset_root():
    # Same file name in two folders: different keys, so different noise.
    a = image_key('/data/voc/train/x/0001.jpg', root='/data/voc')
    b = image_key('/data/voc/val/y/0001.jpg', root='/data/voc')
    assert (a, b) == ('train/x/0001.jpg', 'val/y/0001.jpg')
    # The dataset moved: the same keys.
    assert image_key('/mnt/copy/train/x/0001.jpg', root='/mnt/copy/') == a
    assert image_key('data/voc/val/y/0001.jpg', root='data/voc') == b
    assert image_key('data/voc/a.jpg') == 'data/voc/a.jpg'  # no root


def test_reseeded_state_is_a_fresh_random_state():
    for seed in (0, 1, 2**32 - 1):
        state = reseeded_state(seed)
        expected = np.random.RandomState(seed)
        assert state.standard_normal() == expected.standard_normal()
        # A cached second normal and advanced draws must not survive.
        state = reseeded_state(seed)
        fresh = np.random.RandomState(seed).get_state(legacy=False)
        got = state.get_state(legacy=False)
        assert got['has_gauss'] == fresh['has_gauss'] == 0
        np.testing.assert_array_equal(got['state']['key'],
                                      fresh['state']['key'])
        assert got['state']['pos'] == fresh['state']['pos']
        np.testing.assert_array_equal(
            state.randint(0, 256, 100),
            np.random.RandomState(seed).randint(0, 256, 100))
    # corrupt() without a state does not reseed the caller's.
    state = reseeded_state(7)
    corrupt(photo(40, 40), 'fog', 1)
    np.testing.assert_array_equal(
        state.randint(0, 256, 10),
        np.random.RandomState(7).randint(0, 256, 10))


def test_image_seed_is_the_same_in_every_process():
    # Python's str hash is salted per process; the seed must not be.
    code = ('from mmspd.corruptions import image_seed; '
            'print(hash("x/y.jpg"), image_seed(3, "x/y.jpg", "fog", 2))')
    env = dict(os.environ, PYTHONHASHSEED='12345')
    out = subprocess.run([sys.executable, '-c', code], env=env,
                         capture_output=True, text=True, check=True)
    other_hash, other_seed = map(int, out.stdout.split()[-2:])
    if os.environ.get('PYTHONHASHSEED') in (None, 'random'):
        assert other_hash != hash('x/y.jpg')  # the salt did change
    assert other_seed == image_seed(3, 'x/y.jpg', 'fog', 2)


@pytest.mark.parametrize('name', ALL_CORRUPTIONS)
def test_every_corruption_runs_seeded(name):
    image = photo(48, 64)
    had_float_alias = 'float_' in np.__dict__  # NumPy 1 has it natively
    np.random.seed(123)
    global_state = np.random.get_state()[1].copy()

    first = corrupt(image, name, 3, np.random.RandomState(5))
    again = corrupt(image, name, 3, np.random.RandomState(5))

    assert first.shape == image.shape and first.dtype == np.uint8
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, image)
    # The global random state is neither used nor changed, and NumPy's
    # namespace is as it was (the alias the NumPy 2 fix provides is gone).
    np.testing.assert_array_equal(np.random.get_state()[1], global_state)
    assert ('float_' in np.__dict__) == had_float_alias


@pytest.mark.parametrize('name', [
    'gaussian_noise', 'shot_noise', 'impulse_noise', 'speckle_noise', 'fog',
    'frost', 'snow', 'motion_blur', 'spatter', 'elastic_transform'
])
def test_random_corruptions_follow_the_seed(name):
    image = photo(48, 64)
    first = corrupt(image, name, 5, np.random.RandomState(1))
    other = corrupt(image, name, 5, np.random.RandomState(2))
    assert not np.array_equal(first, other)


def test_groups_are_subsets_of_all():
    for members in CORRUPTION_GROUPS.values():
        assert set(members) <= set(ALL_CORRUPTIONS)
