"""tools/prepare_pascal_mt.py: checking a PASCAL_MT folder, and deriving
the 21-class labels from a small release-shaped PASCAL-Context fixture.

The tool runs in this process (``run_tool``); ``tests/test_datasets`` runs
it as a command.
"""
from __future__ import annotations

import importlib.util
import os.path as osp
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]


def _load_pascal_data():
    path = REPO / 'tests' / 'test_datasets' / 'pascal_data.py'
    spec = importlib.util.spec_from_file_location('mmspd_test_pascal_data',
                                                  path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


data = _load_pascal_data()
ASTMT_VOCABULARY = dict(
    zip((2, 23, 25, 31, 34, 45, 59, 65, 72, 98, 397, 113, 207, 258, 284, 308,
         347, 368, 416, 427),
        (data.CONTEXT_NAMES.get(n, n) for n in data.VOC21_CLASSES[1:])))
ASTMT_VOCABULARY.update({1: 'accordion', 400: 'wall'})


@pytest.fixture
def run(run_tool):
    return lambda *args: run_tool('prepare_pascal_mt', *args)


def test_derive_writes_21_class_labels(run, tmp_path):
    train, val = ['2008_000001', '2008_000002'], ['2008_000003']
    voc, ann, labels_txt, label_maps, index_to_name = data.write_release(
        tmp_path, train + ['2008_000009'], val, annotated=train + val)
    out = tmp_path / 'PASCAL_MT'
    result = run('derive', voc, '--annotations', ann, '--labels',
                 labels_txt, '--out', out, '--nproc', 1)
    assert result.returncode == 0, result.stdout + result.stderr
    assert '1 of 3 images have no PASCAL-Context annotation' in result.stdout
    # The fixture's vocabulary is shuffled: not the release's numbering.
    assert "differ from those ASTMT's loader lists" in result.stdout

    split_dir = out / 'ImageSets' / 'Context'
    assert (split_dir / 'train.txt').read_text().split() == train
    assert (split_dir / 'val.txt').read_text().split() == val
    for image_id, label_map in label_maps.items():
        png = np.array(
            Image.open(out / 'semseg' / 'pascal-context' / f'{image_id}.png'))
        np.testing.assert_array_equal(
            png, data.expected_21(label_map, index_to_name))
        assert (out / 'JPEGImages' / f'{image_id}.jpg').is_file()
    assert 'from semseg/pascal-context' in result.stdout


def test_derive_with_the_release_numbering_does_not_warn(run, tmp_path):
    ids = ['2008_000001']
    voc, ann, labels_txt, label_maps, _ = data.write_release(
        tmp_path, ids, ids, annotated=ids, index_to_name=ASTMT_VOCABULARY)
    result = run('derive', voc, '--annotations', ann, '--labels',
                 labels_txt, '--out', tmp_path / 'out', '--nproc', 1)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'warning' not in result.stdout
    assert '11 diningtable  <- vocabulary [397]' in result.stdout


def test_check_reports_what_is_missing(run, tmp_path):
    ids = ['a1', 'a2', 'a3', 'a4']
    data.write_pascal_mt(tmp_path, ids[:3], ids[3:], voc12=('a2', 'a3'))
    # a3 keeps only its VOC12 label map, which is enough.
    (tmp_path / 'semseg' / 'pascal-context' / 'a3.png').unlink()
    (tmp_path / 'semseg' / 'pascal-context' / 'a1.png').unlink()
    (tmp_path / 'JPEGImages' / 'a4.jpg').unlink()
    result = run('check', tmp_path)
    assert result.returncode == 1
    assert '2 problems' in result.stdout
    assert ('train: label map a1.png is in none of semseg/VOC12, '
            'semseg/pascal-context') in result.stdout
    assert f'val: image {tmp_path}/JPEGImages/a4.jpg is missing' in (
        result.stdout)
    assert ('train: 3 images; label maps: 2 from semseg/VOC12, 0 from '
            'semseg/pascal-context') in result.stdout
    assert 'the PASCAL_MT archive lists 4998 train images' in result.stdout


def test_check_values_finds_bad_labels(run, tmp_path):
    ids = ['a1', 'a2', 'a3']
    data.write_pascal_mt(tmp_path, ids[:2], ids[2:])
    labels = tmp_path / 'semseg' / 'pascal-context'
    bad = np.array(Image.open(labels / 'a1.png'))
    bad[5, 5] = 30
    Image.fromarray(bad).save(labels / 'a1.png')
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(labels / 'a3.png')
    assert run('check', tmp_path).returncode == 0
    result = run('check', tmp_path, '--values')
    assert result.returncode == 1
    assert f'{labels}/a1.png has values [30], outside 0-20 and 255' in (
        result.stdout)
    assert f'{labels}/a3.png is 10x10 but its image is 64x48' in result.stdout


@pytest.mark.parametrize('command', ['check', 'derive'])
def test_missing_inputs_are_named(run, tmp_path, command):
    nowhere = tmp_path / 'nowhere'
    if command == 'check':
        result = run('check', nowhere)
        message = f'PASCAL_MT folder {nowhere} does not exist'
    else:
        result = run('derive', nowhere, '--annotations', tmp_path,
                     '--labels', tmp_path / 'labels.txt', '--out',
                     tmp_path / 'out')
        message = f'VOC_ROOT folder {nowhere} does not exist'
    assert result.returncode != 0
    assert message in result.stderr
    assert not osp.exists(tmp_path / 'out')
