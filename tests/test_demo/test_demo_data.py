"""The synthetic demo dataset: layout, determinism, domains, bad input."""
import filecmp
import os
import os.path as osp
import runpy

import cv2
import numpy as np
import pytest

from mmspd.datasets import (
    DEMO_CLASSES,
    DOMAINS,
    demo_sample,
    generate_demo_dataset,
)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
VALID_LABELS = {0, *DEMO_CLASSES.values()}


def _all_files(root):
    found = []
    for dirpath, _, files in os.walk(root):
        found += [osp.relpath(osp.join(dirpath, f), root) for f in files]
    return sorted(found)


def test_layout_matches_pascal_context(tmp_path):
    names = generate_demo_dataset(
        str(tmp_path), domain='B', num_train=5, num_val=3, size=48, seed=2)
    assert [len(names['train']), len(names['val'])] == [5, 3]
    for split in ('train', 'val'):
        split_file = tmp_path / 'ImageSets' / 'SegmentationContext' / (
            split + '.txt')
        listed = split_file.read_text().split()
        assert listed == names[split]
        for name in listed:
            img = cv2.imread(str(tmp_path / 'JPEGImages' / (name + '.jpg')),
                             cv2.IMREAD_UNCHANGED)
            ann = cv2.imread(
                str(tmp_path / 'SegmentationClassContext' / (name + '.png')),
                cv2.IMREAD_UNCHANGED)
            assert img.shape == (48, 48, 3) and img.dtype == np.uint8
            assert ann.shape == (48, 48) and ann.dtype == np.uint8
            assert set(np.unique(ann).tolist()) <= VALID_LABELS
    # Train and val are different images.
    assert not set(names['train']) & set(names['val'])


def test_labels_cover_several_classes():
    seen = set()
    for index in range(20):
        _, label = demo_sample('A', 'train', index, size=64, seed=0)
        seen |= set(np.unique(label).tolist())
    # Every demo class and the ignored background occur in a few samples.
    assert seen == VALID_LABELS


def test_same_arguments_give_identical_bytes(tmp_path):
    first, second, other = (tmp_path / 'a', tmp_path / 'b', tmp_path / 'c')
    for root, seed in ((first, 3), (second, 3), (other, 4)):
        generate_demo_dataset(str(root), 'A', num_train=4, num_val=2,
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
    generate_demo_dataset(str(tmp_path), 'A', num_train=3, num_val=1,
                          size=32, seed=0)
    _image, label = demo_sample('A', 'train', 2, size=32, seed=0)
    ann = cv2.imread(
        str(tmp_path / 'SegmentationClassContext' / 'demoA_train_00002.png'),
        cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(ann, label)


def test_domains_differ_in_appearance_not_layout():
    # Same seed: same scenes, rendered in each domain's style.
    mean_colour = {d: {} for d in DOMAINS}
    for index in range(10):
        img_a, lab_a = demo_sample('A', 'val', index, size=64, seed=0)
        img_b, lab_b = demo_sample('B', 'val', index, size=64, seed=0)
        np.testing.assert_array_equal(lab_a, lab_b)
        for domain, img in (('A', img_a), ('B', img_b)):
            for name, class_id in DEMO_CLASSES.items():
                pixels = img[lab_a == class_id].astype(float)
                if len(pixels):
                    mean_colour[domain].setdefault(name, []).append(pixels)
    # Each class looks different in B: its mean colour moves by a clearly
    # visible amount (on the 0..255 scale).
    for name in DEMO_CLASSES:
        colour_a = np.concatenate(mean_colour['A'][name]).mean(0)
        colour_b = np.concatenate(mean_colour['B'][name]).mean(0)
        assert np.abs(colour_a - colour_b).max() > 30, name


@pytest.mark.parametrize('kwargs, bad', [
    ({'domain': 'C'}, "'C'"),
    ({'num_train': 0}, 'num_train: 0'),
    ({'num_val': -1}, 'num_val: -1'),
    ({'size': 8}, 'size: 8'),
    ({'seed': -1}, 'seed: -1'),
])
def test_bad_arguments_are_named(tmp_path, kwargs, bad):
    with pytest.raises(ValueError, match=bad):
        generate_demo_dataset(str(tmp_path / 'data'), **kwargs)
    assert not (tmp_path / 'data').exists()


def test_root_that_is_a_file_is_refused(tmp_path):
    root = tmp_path / 'taken'
    root.write_text('keep me')
    with pytest.raises(NotADirectoryError, match='taken'):
        generate_demo_dataset(str(root), num_train=1, num_val=1, size=16)
    assert root.read_text() == 'keep me'


def test_cli_writes_both_domains(tmp_path, capsys):
    cli = runpy.run_path(osp.join(REPO, 'tools', 'generate_demo_data.py'))
    assert cli['main']([str(tmp_path), '--num-train', '2', '--num-val', '1',
                        '--size', '32']) == 0
    for domain in DOMAINS:
        root = tmp_path / f'domain_{domain}'
        listed = (root / 'ImageSets' / 'SegmentationContext' /
                  'train.txt').read_text().split()
        assert len(listed) == 2
        assert (root / 'JPEGImages' / (listed[0] + '.jpg')).is_file()
    # The domains use different seeds, hence different scenes.
    assert not filecmp.cmp(
        tmp_path / 'domain_A' / 'SegmentationClassContext' /
        'demoA_train_00000.png',
        tmp_path / 'domain_B' / 'SegmentationClassContext' /
        'demoB_train_00000.png', shallow=False)
    assert cli['main']([str(tmp_path), '--size', '4']) == 2
    assert 'size: 4' in capsys.readouterr().err
