"""The ImageCorruption transform, alone and inside mmseg pipelines."""
from __future__ import annotations

import os.path as osp
import shutil

import numpy as np
import pytest
import torch
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import DefaultScope
from mmseg.registry import DATASETS, TRANSFORMS
from torch.utils.data import DataLoader

import mmspd  # noqa: F401  (registers ImageCorruption)
from demo.data import generate_demo_dataset
from mmspd.corruptions import corrupt, image_key, image_seed
from mmspd.datasets import ImageCorruption

from .conftest import photo


@pytest.fixture(scope='module')
def demo_root(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp('demo') / 'domain_A')
    generate_demo_dataset(root, domain='target', num_train=1, num_val=6,
                          size=64)
    return root


def pipeline(steps: list[dict]) -> Compose:
    # Built by mmseg's registry: mmcv has a LoadAnnotations of its own.
    return Compose([TRANSFORMS.build(step) for step in steps])


def val_images(root: str) -> list[str]:
    with open(osp.join(root, 'ImageSets/SegmentationContext/val.txt')) as f:
        return [osp.join(root, 'JPEGImages', line.strip() + '.jpg')
                for line in f if line.strip()]


def test_built_from_the_registry():
    transform = TRANSFORMS.build(
        {'type': 'ImageCorruption', 'corruption': 'fog', 'severity': 2,
         'seed': 3})
    assert isinstance(transform, ImageCorruption)
    assert 'fog' in repr(transform) and 'seed=3' in repr(transform)


@pytest.mark.parametrize('kwargs, match', [
    ({'corruption': 'fogg', 'severity': 1}, r"'fogg'.*accepted: gaussian"),
    ({'corruption': 'fog', 'severity': 0}, 'accepted: 1, 2, 3, 4, 5'),
    ({'corruption': 'fog', 'severity': 6}, 'accepted: 1, 2, 3, 4, 5'),
    ({'corruption': 'fog', 'severity': 1, 'key': 'stem'},
     "'relative', 'name', 'path'"),
    ({'corruption': 'fog', 'severity': 1, 'channel_order': 'rgba'},
     "'rgb', 'bgr'"),
])
def test_bad_arguments_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TRANSFORMS.build(dict(type='ImageCorruption', **kwargs))


@pytest.mark.parametrize('name', [
    'gaussian_noise', 'defocus_blur', 'fog', 'brightness', 'glass_blur',
    'frost', 'saturate'
])
def test_corrupts_the_rgb_image_and_returns_bgr(name):
    rgb = photo(48, 64)
    bgr = rgb[..., ::-1].copy()
    results = {'img': bgr, 'img_path': '/data/x/a.jpg', 'img_shape': None}
    results = ImageCorruption(name, 4, seed=1)(results)
    out = results['img']
    assert results['img_shape'] == (48, 64)
    np.testing.assert_array_equal(bgr, rgb[..., ::-1])  # input untouched

    seed = image_seed(1, '/data/x/a.jpg', name, 4)
    expected = corrupt(rgb, name, 4, np.random.RandomState(seed))
    np.testing.assert_array_equal(out, expected[..., ::-1])
    assert out.flags['C_CONTIGUOUS'] and out.dtype == np.uint8
    wrong = ImageCorruption(name, 4, seed=1, channel_order='rgb')(
        {'img': rgb[..., ::-1].copy(), 'img_path': '/data/x/a.jpg'})['img']
    # Noise is drawn per channel, frost and saturate treat channels
    # differently: BGR taken for RGB gives other pixels. The others treat
    # the three channels alike.
    if name in ('gaussian_noise', 'frost', 'saturate'):
        assert not np.array_equal(wrong, out)
    else:
        np.testing.assert_array_equal(wrong, out)


def test_pixels_depend_on_path_under_the_root():
    bgr = photo(48, 64)
    transform = ImageCorruption('gaussian_noise', 2, root='/data/voc')

    def run(path, t=transform):
        return t({'img': bgr.copy(), 'img_path': path})['img']

    # Same file name in two folders of one dataset: different noise.
    train = run('/data/voc/train/img_001.jpg')
    assert not np.array_equal(run('/data/voc/val/img_001.jpg'), train)
    # The dataset moved, root with it: the same pixels.
    moved = ImageCorruption('gaussian_noise', 2, root='/mnt/copy')
    np.testing.assert_array_equal(
        run('/mnt/copy/train/img_001.jpg', moved), train)
    # key='name' keeps the file-name seeding of earlier versions.
    by_name = ImageCorruption('gaussian_noise', 2, key='name')
    np.testing.assert_array_equal(run('/a/img_001.jpg', by_name),
                                  run('/b/img_001.jpg', by_name))
    assert not np.array_equal(
        ImageCorruption('gaussian_noise', 2, seed=1, root='/data/voc')(
            {'img': bgr.copy(), 'img_path': '/data/voc/train/img_001.jpg'}
        )['img'], train)


def test_grayscale_and_bgra_images():
    gray = photo(48, 64)[..., 0].copy()
    out = ImageCorruption('fog', 2)({'img': gray, 'img_path': 'g.png'})
    assert out['img'].shape == (48, 64, 3) and out['img_shape'] == (48, 64)
    bgra = np.concatenate([photo(48, 64), np.full((48, 64, 1), 7, np.uint8)],
                          axis=-1)
    out = ImageCorruption('fog', 2)({'img': bgra.copy(),
                                     'img_path': 'a.png'})['img']
    assert out.shape == (48, 64, 4)
    np.testing.assert_array_equal(out[..., 3], 7)
    rgb_only = ImageCorruption('fog', 2)({'img': bgra[..., :3].copy(),
                                          'img_path': 'a.png'})['img']
    np.testing.assert_array_equal(out[..., :3], rgb_only)


def test_missing_inputs_are_reported():
    with pytest.raises(KeyError, match='after LoadImageFromFile'):
        ImageCorruption('fog', 1)({'img_path': 'a.jpg'})
    with pytest.raises(KeyError, match='img_path'):
        ImageCorruption('fog', 1)({'img': photo(40, 40)})
    with pytest.raises(ValueError, match='uint8'):
        ImageCorruption('fog', 1)({
            'img': photo(40, 40).astype(np.float32),
            'img_path': 'a.jpg'
        })
    with pytest.raises(ValueError, match=r'tiny\.jpg.*at least 32'):
        ImageCorruption('fog', 1)({
            'img': photo(20, 40),
            'img_path': 'tiny.jpg'
        })


def test_inside_an_mmseg_test_pipeline(demo_root):
    path = val_images(demo_root)[0]
    seg_path = path.replace('JPEGImages', 'SegmentationClassContext')[:-4]
    info = {'img_path': path, 'seg_map_path': seg_path + '.png',
                'reduce_zero_label': True, 'seg_fields': []}
    load = [{'type': 'LoadImageFromFile'}]
    tail = [{'type': 'LoadAnnotations', 'reduce_zero_label': True},
            {'type': 'PackSegInputs'}]
    corruption = {'type': 'ImageCorruption', 'corruption': 'fog',
                  'severity': 5}
    clean = pipeline(load + tail)(dict(info))
    corrupted = pipeline(load + [corruption] + tail)(dict(info))

    loaded = pipeline(load)(dict(info))['img']
    seed = image_seed(0, image_key(path), 'fog', 5)
    expected = corrupt(loaded[..., ::-1], 'fog', 5,
                       np.random.RandomState(seed))[..., ::-1]
    expected = torch.from_numpy(expected.transpose(2, 0, 1).copy())
    assert torch.equal(corrupted['inputs'], expected)
    assert not torch.equal(corrupted['inputs'], clean['inputs'])
    # Labels are untouched.
    assert torch.equal(corrupted['data_samples'].gt_sem_seg.data,
                       clean['data_samples'].gt_sem_seg.data)

    resized = pipeline(load + [corruption] +
                      [{'type': 'Resize', 'scale': (40, 40),
                        'keep_ratio': True}]
                      + tail)(dict(info))
    assert resized['inputs'].shape == (3, 40, 40)


def test_same_pixels_with_0_and_2_workers(demo_root, tmp_path):
    # A second copy of the data under another folder: the path relative to
    # the root, not the location, seeds each image.
    moved = str(tmp_path / 'moved')
    shutil.copytree(demo_root, moved)

    def dataset(root):
        return DATASETS.build(
            {
                'type': 'PascalContextDataset59',
                'data_root': root,
                'data_prefix': {
                    'img_path': 'JPEGImages',
                    'seg_map_path': 'SegmentationClassContext'},
                'ann_file': 'ImageSets/SegmentationContext/val.txt',
                'pipeline': [
                    {'type': 'LoadImageFromFile'},
                    {'type': 'ImageCorruption',
                     'corruption': 'gaussian_noise', 'severity': 3,
                     'seed': 5, 'root': root},
                    {'type': 'PackSegInputs'}
                ]})

    def images(loader):
        out = {}
        for batch in loader:
            for inputs, sample in zip(batch['inputs'],
                                      batch['data_samples']):
                out[osp.basename(sample.img_path)] = inputs
        return out

    np.random.seed(0)
    with DefaultScope.overwrite_default_scope('mmseg'):
        serial_set, parallel_set = dataset(demo_root), dataset(moved)
    serial = images(DataLoader(serial_set, batch_size=1,
                               num_workers=0, collate_fn=pseudo_collate))
    np.random.seed(1)
    reverse = torch.utils.data.SequentialSampler(range(6))
    parallel = images(DataLoader(
        parallel_set, batch_size=2, num_workers=2,
        sampler=list(reversed(list(reverse))),
        collate_fn=pseudo_collate))
    assert len(serial) == 6 and serial.keys() == parallel.keys()
    for name, inputs in serial.items():
        assert torch.equal(inputs, parallel[name]), name
