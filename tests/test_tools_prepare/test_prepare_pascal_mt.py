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
ASTMT_VOCABULARY.update({1: 'accordion', 440: 'wall'})
IGNORE = 255


@pytest.fixture
def run(run_tool):
    return lambda *args: run_tool('prepare_pascal_mt', *args)


def test_derive_writes_21_class_labels(run, tmp_path):
    train, val = ['2008_000001', '2008_000002'], ['2008_000003']
    voc, ann, labels_txt, label_maps, index_to_name = data.write_release(
        tmp_path, train + ['2008_000009'], val, annotated=train + val)
    out = tmp_path / 'PASCAL_MT'
    # The fixture's vocabulary is shuffled: not the release's numbering.
    result = run('derive', voc, '--annotations', ann, '--labels',
                 labels_txt, '--out', out, '--nproc', 1, '--force')
    assert result.returncode == 0, result.stdout + result.stderr
    assert '1 of 3 images have no PASCAL-Context annotation' in result.stdout
    assert 'warning: --force: deriving although aeroplane at' in (
        result.stdout)

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
    assert not (out / 'semseg' / 'VOC12').exists()


def test_derive_refuses_another_numbering_before_writing(run, tmp_path):
    ids = ['2008_000001']
    voc, ann, labels_txt, _, _ = data.write_release(tmp_path, ids, ids,
                                                    annotated=ids)
    out = tmp_path / 'PASCAL_MT'
    result = run('derive', voc, '--annotations', ann, '--labels',
                 labels_txt, '--out', out, '--nproc', 1)
    assert result.returncode == 1
    assert f'{labels_txt} puts 20 of the 20 classes at other vocabulary' in (
        result.stderr)
    assert 'aeroplane at [' in result.stderr
    assert '(ASTMT: 2)' in result.stderr
    assert 'or --force to derive with this one' in result.stderr
    assert not out.exists()


def test_derive_says_what_differs_from_the_archive(run, tmp_path):
    ids = ['2008_000001']
    voc, ann, labels_txt, _, _ = data.write_release(
        tmp_path, ids, ids, annotated=ids, index_to_name=ASTMT_VOCABULARY)
    out = tmp_path / 'out'
    result = run('derive', voc, '--annotations', ann, '--labels',
                 labels_txt, '--out', out, '--nproc', 1)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'warning' not in result.stdout
    assert '11 diningtable  <- vocabulary [397]' in result.stdout
    tail = result.stdout[result.stdout.index('ok\n'):]
    assert "How these labels differ from the PASCAL_MT archive's" in tail
    assert 'semseg/VOC12/' in tail and 'marked 255 (ignored)' in tail
    assert 'pixels the archive ignores are scored' in tail
    assert f'prepare_pascal_mt.py compare ARCHIVE {out}' in tail
    # Indeed no 255 anywhere.
    png = np.array(
        Image.open(out / 'semseg' / 'pascal-context' / f'{ids[0]}.png'))
    assert IGNORE not in png


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


def _compare_lines(stdout):
    """Per-image rows of ``compare``: ``{id: (maps, counts)}``."""
    rows = {}
    for line in stdout.splitlines()[1:]:
        if line.startswith('totals'):
            break
        image_id, map_a, map_b, *counts = line.split('\t')
        rows[image_id] = ((map_a, map_b),
                          [int(c.split()[0]) for c in counts])
    return rows


def test_compare_reports_per_image_disagreement(run, tmp_path):
    """An archive-like tree (VOC12 maps for some images) against derived
    labels in a plain folder: 255 against a class, and class against
    class, counted per image and in total."""
    ids = ['a1', 'a2', 'a3']
    archive = tmp_path / 'PASCAL_MT'
    written = data.write_pascal_mt(archive, ids[:1], ids[1:], voc12=('a2', ))
    derived = tmp_path / 'derived'
    derived.mkdir()
    expected = {}
    for image_id in ids:
        folder = ('semseg/VOC12' if image_id == 'a2' else
                  'semseg/pascal-context')
        a = written[image_id][folder]
        b = a.copy()
        b[b == IGNORE] = 0                         # no ignore band
        b[-1, -4:] = (b[-1, -4:] + 1) % 21         # 4 pixels disagree
        Image.fromarray(b).save(derived / f'{image_id}.png')
        band = int((a == IGNORE).sum())
        expected[image_id] = (folder, [a.size, band + 4, band, 0, 4])
    result = run('compare', archive, derived, '--split', 'val')
    assert result.returncode == 0, result.stdout + result.stderr
    rows = _compare_lines(result.stdout)
    assert set(rows) == {'a2', 'a3'}  # the val split of the archive
    for image_id, (maps, counts) in rows.items():
        assert maps == (expected[image_id][0], '.')
        assert counts == expected[image_id][1]
    total = [sum(expected[i][1][k] for i in rows) for k in range(5)]
    share = 100 * total[1] / total[0]
    assert (f'  all: 2 of 2 images differ; of {total[0]} pixels: differ '
            f'{share:.2f}%') in result.stdout
    assert '  semseg/VOC12: 1 of 1 images differ' in result.stdout

    # Against itself: nothing differs.
    result = run('compare', archive, archive, '--split', 'train')
    assert result.returncode == 0
    assert _compare_lines(result.stdout)['a1'][1][1:] == [0, 0, 0, 0]


def test_compare_names_missing_and_mismatched_maps(run, tmp_path):
    ids = ['a1', 'a2', 'a3']
    archive = tmp_path / 'PASCAL_MT'
    data.write_pascal_mt(archive, ids, [])
    other = tmp_path / 'other'
    other.mkdir()
    Image.fromarray(np.zeros((48, 64), np.uint8)).save(other / 'a1.png')
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(other / 'a2.png')
    result = run('compare', archive, other, '--split', 'train')
    assert result.returncode == 1
    assert '2 problems' in result.stdout
    assert f'a2: {archive}/semseg/pascal-context/a2.png is (48, 64), ' in (
        result.stdout)
    assert f'a3: no label map in {other}' in result.stdout
    assert list(_compare_lines(result.stdout)) == ['a1']
