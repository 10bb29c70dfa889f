"""tools/prepare_pascal_context.py on a small release-shaped fixture."""
import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat


def _classes59():
    from mmseg.datasets import PascalContextDataset59
    return list(PascalContextDataset59.METAINFO['classes'])


def _make_release(root, ids_train, ids_val, annotated, skip_jpeg=()):
    """Write VOC2010 images and splits, .mat annotations and labels.txt.

    The vocabulary puts the 59 classes at shuffled indices among unrelated
    names, as in the real 459-class list, so the mapping must go by name.
    """
    voc = root / 'VOC2010'
    (voc / 'JPEGImages').mkdir(parents=True)
    (voc / 'ImageSets' / 'Main').mkdir(parents=True)
    ann = root / 'trainval'
    ann.mkdir()
    rng = np.random.default_rng(0)
    names = _classes59() + [f'other{i}' for i in range(20)]
    order = rng.permutation(len(names))
    vocabulary = {names[j]: i + 1 for i, j in enumerate(order)}
    (root / 'labels.txt').write_text(''.join(
        f'{i}: {n}\n' for n, i in sorted(vocabulary.items(),
                                          key=lambda kv: kv[1])))
    for split, ids in (('train', ids_train), ('val', ids_val)):
        (voc / 'ImageSets' / 'Main' / f'{split}.txt').write_text(
            ''.join(f'{i}\n' for i in ids))
    label_maps = {}
    for image_id in ids_train + ids_val:
        if image_id not in skip_jpeg:
            Image.fromarray(rng.integers(0, 255, (12, 16, 3),
                                         dtype=np.uint8)).save(
                                             voc / 'JPEGImages' /
                                             f'{image_id}.jpg')
        if image_id in annotated:
            label_map = rng.integers(0, len(names) + 1, (12, 16)).astype(
                np.uint16)
            savemat(ann / f'{image_id}.mat', {'LabelMap': label_map})
            label_maps[image_id] = label_map
    inverse = {i: n for n, i in vocabulary.items()}
    return voc, ann, inverse, label_maps


@pytest.fixture
def run(run_tool):
    return lambda *args: run_tool('prepare_pascal_context', *args)


def test_converts_labels_and_splits(run, tmp_path):
    train, val = ['2008_000001', '2008_000002'], ['2008_000003']
    voc, ann, inverse, label_maps = _make_release(
        tmp_path, train + ['2008_000009'], val, annotated=train + val)
    result = run(voc, '--annotations', ann, '--labels',
                 tmp_path / 'labels.txt', '--nproc', 1)
    assert result.returncode == 0, result.stdout + result.stderr
    assert '1 of 3 images have no PASCAL-Context annotation' in result.stdout

    split_dir = voc / 'ImageSets' / 'SegmentationContext'
    assert (split_dir / 'train.txt').read_text().split() == train
    assert (split_dir / 'val.txt').read_text().split() == val

    classes = _classes59()
    for image_id, label_map in label_maps.items():
        png = np.array(
            Image.open(voc / 'SegmentationClassContext' / f'{image_id}.png'))
        expected = np.array([
            classes.index(inverse[v]) + 1 if inverse.get(v) in classes else 0
            for v in label_map.ravel()
        ]).reshape(label_map.shape)
        np.testing.assert_array_equal(png, expected)


def test_output_loads_in_mmseg(run, tmp_path):
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS

    ids = ['2008_000001', '2008_000002']
    voc, ann, _, _ = _make_release(tmp_path, ids, ids[:1], annotated=ids)
    assert run(voc, '--annotations', ann, '--labels',
               tmp_path / 'labels.txt', '--nproc', 1).returncode == 0
    init_default_scope('mmseg')
    dataset = DATASETS.build(
        dict(
            type='PascalContextDataset59',
            data_root=str(voc),
            data_prefix=dict(
                img_path='JPEGImages',
                seg_map_path='SegmentationClassContext'),
            ann_file='ImageSets/SegmentationContext/train.txt',
            pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='LoadAnnotations', reduce_zero_label=True),
            ]))
    assert len(dataset) == 2
    seg = dataset[0]['gt_seg_map']
    assert seg.shape == (12, 16)
    assert set(np.unique(seg)) <= set(range(59)) | {255}


def test_reports_missing_images(run, tmp_path):
    ids = ['2008_000001', '2008_000002']
    voc, ann, _, _ = _make_release(
        tmp_path, ids, [], annotated=ids, skip_jpeg={'2008_000002'})
    result = run(voc, '--annotations', ann, '--labels',
                 tmp_path / 'labels.txt', '--nproc', 1)
    assert result.returncode == 1
    assert 'JPEGImages/2008_000002.jpg is missing' in result.stdout


@pytest.mark.parametrize('what', ['voc', 'labels'])
def test_bad_inputs_are_named(run, tmp_path, what):
    ids = ['2008_000001']
    voc, ann, _, _ = _make_release(tmp_path, ids, ids, annotated=ids)
    labels = tmp_path / 'labels.txt'
    if what == 'voc':
        voc = tmp_path / 'nowhere'
        message = f'VOC_ROOT folder {voc} does not exist'
    else:
        labels.write_text('1: person\n2: sky\n')
        message = "classes ['aeroplane'"
    result = run(voc, '--annotations', ann, '--labels', labels)
    assert result.returncode != 0
    assert message in result.stderr
