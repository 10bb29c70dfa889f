"""The synthetic demo data: layout, determinism, appearances, bad input."""
import filecmp
import os
import os.path as osp
import runpy

import cv2
import numpy as np
import pytest

from demo.data import (
    DEMO_CLASSES,
    DEMO_SIZES,
    DOMAINS,
    TARGET_APPEARANCE,
    demo_sample,
    generate_demo_dataset,
    sample_appearance,
)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
VALID_LABELS = {0, *DEMO_CLASSES.values()}
SPLIT_DIR = osp.join('ImageSets', 'SegmentationContext')


def _all_files(root):
    found = []
    for dirpath, _, files in os.walk(root):
        found += [osp.relpath(osp.join(dirpath, f), root) for f in files]
    return sorted(found)


def test_layout_matches_pascal_context(tmp_path):
    names = generate_demo_dataset(
        str(tmp_path), domain='target', num_train=5, num_val=3, num_test=2,
        size=48, seed=2)
    assert {k: len(v) for k, v in names.items()} == {
        'train': 5, 'val': 3, 'test': 2}
    for split, listed_names in names.items():
        listed = (tmp_path / SPLIT_DIR / (split + '.txt')).read_text().split()
        assert listed == listed_names
        for name in listed:
            img = cv2.imread(str(tmp_path / 'JPEGImages' / (name + '.jpg')),
                             cv2.IMREAD_UNCHANGED)
            ann = cv2.imread(
                str(tmp_path / 'SegmentationClassContext' / (name + '.png')),
                cv2.IMREAD_UNCHANGED)
            assert img.shape == (48, 48, 3) and img.dtype == np.uint8
            assert ann.shape == (48, 48) and ann.dtype == np.uint8
            assert set(np.unique(ann).tolist()) <= VALID_LABELS
    all_names = [name for split in names.values() for name in split]
    assert len(set(all_names)) == len(all_names)


def test_empty_split_gets_no_split_file(tmp_path):
    names = generate_demo_dataset(str(tmp_path), domain='ood', num_train=0,
                                  num_val=0, num_test=3, size=32)
    assert list(names) == ['test']
    assert os.listdir(tmp_path / SPLIT_DIR) == ['test.txt']


def test_labels_cover_several_classes():
    seen = set()
    for index in range(20):
        _, label = demo_sample('broad', 'train', index, size=64, seed=0)
        seen |= set(np.unique(label).tolist())
    # Every demo class and the ignored background occur in a few samples.
    assert seen == VALID_LABELS


def test_same_arguments_give_identical_bytes(tmp_path):
    first, second, other = (tmp_path / 'a', tmp_path / 'b', tmp_path / 'c')
    for root, seed in ((first, 3), (second, 3), (other, 4)):
        generate_demo_dataset(str(root), 'broad', num_train=4, num_val=2,
                              size=32, seed=seed)
    files = _all_files(first)
    assert files == _all_files(second) and len(files) == 4 + 2 + 4 + 2 + 2
    _, mismatch, errors = filecmp.cmpfiles(first, second, files,
                                           shallow=False)
    assert mismatch == [] and errors == []
    # A different seed gives different data.
    _, mismatch, _ = filecmp.cmpfiles(first, other, files, shallow=False)
    assert any(f.endswith('.png') for f in mismatch)


def test_sample_does_not_depend_on_dataset_size(tmp_path):
    generate_demo_dataset(str(tmp_path), 'target', num_train=3, num_val=1,
                          size=32, seed=0)
    _image, label = demo_sample('target', 'train', 2, size=32, seed=0)
    ann = cv2.imread(
        str(tmp_path / 'SegmentationClassContext' /
            'demo_target_train_00002.png'), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(ann, label)


def _class_colours(domain, count=12):
    """Mean RGB of each class, per image: {class: [colour, ...]}."""
    colours = {name: [] for name in DEMO_CLASSES}
    for index in range(count):
        image, label = demo_sample(domain, 'test', index, size=64, seed=0)
        for name, class_id in DEMO_CLASSES.items():
            mask = label == class_id
            if mask.sum() > 20:
                colours[name].append(image[mask].astype(float).mean(0))
    return colours


def test_target_is_one_appearance_broad_and_ood_are_many():
    assert all(
        sample_appearance('target', split, index) == TARGET_APPEARANCE
        for split in ('train', 'val', 'test') for index in range(5))
    broad = [sample_appearance('broad', 'train', i) for i in range(5)]
    ood = [sample_appearance('ood', 'test', i) for i in range(5)]
    looks = broad + ood + [TARGET_APPEARANCE]
    assert len({repr(look) for look in looks}) == len(looks)

    # In the rendered images: a class keeps its colour across target
    # images (up to texture, jitter and lighting) but not across broad or
    # ood images, where colour says nothing about the class.
    def spread(domain):
        per_class = [np.std(c, axis=0).max()
                     for c in _class_colours(domain).values() if len(c) > 2]
        return float(np.median(per_class))

    target = spread('target')
    assert target < 20
    assert spread('broad') > 2 * target and spread('ood') > 2 * target


def test_ood_scenes_and_appearances_are_not_broad_ones():
    for index in range(3):
        _, broad_label = demo_sample('broad', 'test', index)
        _, ood_label = demo_sample('ood', 'test', index)
        assert not np.array_equal(broad_label, ood_label)
        assert (sample_appearance('broad', 'test', index) !=
                sample_appearance('ood', 'test', index))


@pytest.mark.parametrize('kwargs, bad', [
    ({'domain': 'A'}, "'A'"),
    ({'num_train': -1}, 'num_train: -1'),
    ({'num_test': 1.5}, 'num_test: 1.5'),
    ({'num_train': 0, 'num_val': 0}, 'all 0'),
    ({'size': 8}, 'size: 8'),
    ({'seed': -1}, 'seed: -1'),
])
def test_bad_arguments_are_named(tmp_path, kwargs, bad):
    with pytest.raises(ValueError, match=bad):
        generate_demo_dataset(str(tmp_path / 'data'), **kwargs)
    assert not (tmp_path / 'data').exists()


@pytest.mark.parametrize('kwargs, bad', [
    ({'split': 'dev'}, "'dev'"),
    ({'index': -2}, 'index: -2'),
    ({'domain': 'B'}, "'B'"),
])
def test_bad_sample_arguments_are_named(kwargs, bad):
    with pytest.raises(ValueError, match=bad):
        demo_sample(**kwargs)


def test_root_that_is_a_file_is_refused(tmp_path):
    root = tmp_path / 'taken'
    root.write_text('keep me')
    with pytest.raises(NotADirectoryError, match='taken'):
        generate_demo_dataset(str(root), num_train=1, num_val=1, size=16)
    assert root.read_text() == 'keep me'


def test_cli_writes_every_set(tmp_path, capsys):
    cli = runpy.run_path(osp.join(REPO, 'demo', 'generate_data.py'))
    assert cli['main']([str(tmp_path), '--num-train', '2', '--num-test',
                        '1', '--size', '32']) == 0
    for domain in DOMAINS:
        listed = {
            split: len((tmp_path / domain / SPLIT_DIR /
                        f'{split}.txt').read_text().split())
            for split in ('train', 'val', 'test')
            if (tmp_path / domain / SPLIT_DIR / f'{split}.txt').exists()
        }
        # --num-val was not given: each set keeps the demo's val size.
        expected = {'train': 2, 'test': 1}
        if DEMO_SIZES[domain].get('val'):
            expected['val'] = DEMO_SIZES[domain]['val']
        assert listed == expected, domain
    assert cli['main']([str(tmp_path), '--size', '4']) == 2
    assert 'size: 4' in capsys.readouterr().err
