"""tools/prepare_pascal_context.py on small fixtures in the official
formats: ``trainval_merged.json`` as the Detail API reads it (mmseg's
labels), and the ``.mat`` release with ``labels.txt`` (the fallback)."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

HERE = Path(__file__).resolve().parent


def _load(name):
    spec = importlib.util.spec_from_file_location(f'mmspd_test_{name}',
                                                  HERE / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


detail = _load('detail_data')
IMAGES = [  # (stem, phase, annotations); the file lists them unsorted
    ('2008_000005', 'train', 4), ('2008_000002', 'train', 6),
    ('2008_000003', 'val', 3), ('2008_000009', 'test', 2),
    ('2008_000004', 'val', 0), ('2008_000001', 'train', 1)
]


def _names_by_id():
    """Vocabulary id -> name as mmseg has them: its converter numbers the
    ids by rank, its dataset names the numbers."""
    from mmseg.datasets import PascalContextDataset59
    return dict(zip(sorted(set(detail.MMSEG_MAPPING) - {0}),
                    PascalContextDataset59.METAINFO['classes']))


def _voc_root(root, stems):
    voc = root / 'VOC2010'
    (voc / 'JPEGImages').mkdir(parents=True)
    for stem in stems:
        Image.new('RGB', (16, 16)).save(voc / 'JPEGImages' / f'{stem}.jpg')
    return voc


@pytest.fixture
def run(run_tool):
    return lambda *args: run_tool('prepare_pascal_context', *args)


@pytest.fixture
def merged(tmp_path):
    """A VOC2010 folder and a Detail-format trainval_merged.json."""
    pytest.importorskip('pycocotools', reason='the --json route needs it')
    voc = _voc_root(tmp_path, [s for s, _, _ in IMAGES])
    painted = detail.write_detail(tmp_path / 'trainval_merged.json', IMAGES,
                                  _names_by_id())
    return voc, tmp_path / 'trainval_merged.json', painted


def test_fixture_masks_are_what_pycocotools_encodes():
    """The fixture's encoder writes the format COCO's (and Detail's) mask
    code writes and reads."""
    mask_utils = pytest.importorskip('pycocotools.mask')
    rng = np.random.default_rng(3)
    for shape in ((1, 1), (7, 5), (40, 33)):
        for density in (0.0, 0.3, 0.9, 1.0):
            mask = rng.random(shape) < density
            ours = detail.encode_rle(mask)
            theirs = mask_utils.encode(np.asfortranarray(mask, np.uint8))
            assert ours['counts'] == theirs['counts'].decode()
            assert ours['size'] == list(theirs['size'])
            np.testing.assert_array_equal(mask_utils.decode(ours), mask)


def test_json_labels_are_mmseg_converters(run, merged):
    """Each image painted in the file's annotation order, ids numbered by
    their rank among mmseg's vocabulary ids; splits by phase, sorted."""
    voc, json_path, painted = merged
    result = run(voc, '--json', json_path, '--nproc', 1)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'warning' not in result.stdout
    assert 'not mmseg' not in result.stdout

    splits = voc / 'ImageSets' / 'SegmentationContext'
    for split in ('train', 'val'):
        assert (splits / f'{split}.txt').read_text().split() == sorted(
            s for s, (phase, _) in painted.items() if phase == split)
    labels = voc / 'SegmentationClassContext'
    assert not (labels / '2008_000009.png').exists()  # phase test
    for stem, (phase, ids) in painted.items():
        if phase == 'test':
            continue
        png = Image.open(labels / f'{stem}.png')
        assert png.mode == 'L'
        np.testing.assert_array_equal(np.array(png),
                                      detail.mmseg_label(ids))
    # No annotations: all background.
    assert not np.array(Image.open(labels / '2008_000004.png')).any()


def test_numbering_and_names_agree_with_mmseg_and_astmt(tool_module):
    tool = tool_module('prepare_pascal_context')
    ids = [i for i, _ in tool.CONTEXT59]
    assert ids == sorted(set(detail.MMSEG_MAPPING) - {0})
    assert dict(tool.CONTEXT59) == _names_by_id()
    # The 21-class tool's indices of the VOC classes are the same ids.
    mt = tool_module('prepare_pascal_mt')
    by_name = {n: i for i, n in tool.CONTEXT59}
    for name, index in mt.ASTMT_INDICES.items():
        assert by_name[tool.ALIASES.get(name, (name, ))[-1]] == index


def test_category_outside_the_59_is_an_error(run, merged):
    """mmseg's converter stops on an id outside its table left visible in
    an image; the tool names the image and the id and converts the rest.
    Covered by a later annotation, the id is harmless in both."""
    voc, json_path, painted = merged
    data = json.loads(json_path.read_text())

    def full(stem, category_id, ann_id):
        height, width = painted[stem][1].shape
        return dict(id=ann_id, image_id=int(stem.replace('_', '')),
                    category_id=category_id, iscrowd=0, parts=[],
                    segmentation=detail.encode_rle(np.ones((height, width))))

    # 1 is 'accordion', not one of the 59.
    data['annos_segmentation'] = [
        full('2008_000002', 1, 1001), full('2008_000002', 2, 1002)
    ] + data['annos_segmentation'] + [full('2008_000005', 1, 1003)]
    json_path.write_text(json.dumps(data))
    result = run(voc, '--json', json_path, '--nproc', 1)
    assert result.returncode == 1
    assert '2 problems' in result.stdout  # and its label map is missing
    assert ("2008_000005: category ids [1] are not among mmseg's 59 "
            'PASCAL-Context classes; not written') in result.stdout
    labels = voc / 'SegmentationClassContext'
    assert not (labels / '2008_000005.png').exists()
    ids = painted['2008_000002'][1]
    np.testing.assert_array_equal(
        np.array(Image.open(labels / '2008_000002.png')),
        detail.mmseg_label(np.where(ids == 0, 2, ids)))


def test_json_output_loads_in_mmseg(run, merged):
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS

    voc, json_path, _ = merged
    assert run(voc, '--json', json_path, '--nproc', 1).returncode == 0
    init_default_scope('mmseg')
    for dataset_type, reduce_zero_label, classes in (
            ('PascalContextDataset59', True, 59),
            ('PascalContextDataset', False, 60)):
        dataset = DATASETS.build(
            dict(
                type=dataset_type,
                data_root=str(voc),
                data_prefix=dict(
                    img_path='JPEGImages',
                    seg_map_path='SegmentationClassContext'),
                ann_file='ImageSets/SegmentationContext/train.txt',
                pipeline=[
                    dict(type='LoadImageFromFile'),
                    dict(type='LoadAnnotations',
                         reduce_zero_label=reduce_zero_label),
                ]))
        assert len(dataset) == 3
        seg = dataset[1]['gt_seg_map']
        assert set(np.unique(seg)) <= set(range(classes)) | {255}


def test_without_pycocotools_nothing_is_written(run, tmp_path, monkeypatch):
    voc = _voc_root(tmp_path, ['2008_000001'])
    json_path = tmp_path / 'trainval_merged.json'
    json_path.write_text('{}')
    monkeypatch.setitem(__import__('sys').modules, 'pycocotools', None)
    result = run(voc, '--json', json_path)
    assert result.returncode == 1
    assert '--json needs pycocotools' in result.stderr
    assert 'pip install pycocotools' in result.stderr
    assert not (voc / 'SegmentationClassContext').exists()


@pytest.mark.parametrize('content, message', [
    ({'images': []}, 'has no "images" and "annos_segmentation"'),
    ({'images': [{'image_id': 1, 'file_name': 'a.jpg', 'height': 2,
                  'width': 2}], 'annos_segmentation': []},
     "image 0 has no 'phase'"),
    ({'images': [], 'annos_segmentation': [
        {'id': 1, 'image_id': 7, 'category_id': 2,
         'segmentation': {}}]}, 'annotation 1 is of image 7'),
])
def test_bad_json_is_named(run, tmp_path, content, message):
    pytest.importorskip('pycocotools')
    voc = _voc_root(tmp_path, [])
    json_path = tmp_path / 'trainval_merged.json'
    json_path.write_text(json.dumps(content))
    result = run(voc, '--json', json_path)
    assert result.returncode == 1
    assert message in result.stderr
    assert not (voc / 'SegmentationClassContext').exists()


def test_missing_json_is_named(run, tmp_path):
    voc = _voc_root(tmp_path, [])
    result = run(voc, '--json', tmp_path / 'nowhere.json')
    assert result.returncode == 1
    assert f'--json file {tmp_path}/nowhere.json does not exist' in (
        result.stderr)


@pytest.mark.parametrize('args, message', [
    ((), 'give --json trainval_merged.json'),
    (('--json', 'x.json', '--labels', 'labels.txt'), 'give either --json'),
    (('--annotations', 'trainval'), 'give --json trainval_merged.json'),
])
def test_a_route_must_be_chosen(run, tmp_path, args, message):
    result = run(tmp_path, *args)
    assert result.returncode != 0
    assert message in result.stderr


# The .mat fallback.


def _make_release(root, ids_train, ids_val, annotated, skip_jpeg=()):
    """Write VOC2010 images and splits, .mat annotations and labels.txt.

    The vocabulary puts the 59 classes at shuffled indices among unrelated
    names, so the mapping must go by name.
    """
    from scipy.io import savemat

    voc = root / 'VOC2010'
    (voc / 'JPEGImages').mkdir(parents=True)
    (voc / 'ImageSets' / 'Main').mkdir(parents=True)
    ann = root / 'trainval'
    ann.mkdir()
    rng = np.random.default_rng(0)
    names = list(_names_by_id().values()) + [f'other{i}' for i in range(20)]
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


def test_mat_route_numbers_as_mmseg_and_says_it_is_not_mmseg(run, tmp_path):
    train, val = ['2008_000001', '2008_000002'], ['2008_000003']
    voc, ann, inverse, label_maps = _make_release(
        tmp_path, train + ['2008_000009'], val, annotated=train + val)
    result = run(voc, '--annotations', ann, '--labels',
                 tmp_path / 'labels.txt', '--nproc', 1)
    assert result.returncode == 0, result.stdout + result.stderr
    assert '1 of 3 images have no PASCAL-Context annotation' in result.stdout
    assert 'these labels come from the .mat route, not from mmseg' in (
        result.stdout.splitlines()[-1])
    # The fixture's vocabulary is shuffled: not the release's numbering.
    assert 'at other indices than the PASCAL-Context release' in (
        result.stdout)

    split_dir = voc / 'ImageSets' / 'SegmentationContext'
    assert (split_dir / 'train.txt').read_text().split() == train
    assert (split_dir / 'val.txt').read_text().split() == val
    release_id = {n: i for i, n in _names_by_id().items()}
    for image_id, label_map in label_maps.items():
        png = np.array(
            Image.open(voc / 'SegmentationClassContext' / f'{image_id}.png'))
        ids = np.vectorize(lambda v: release_id.get(inverse.get(v), 0))(
            label_map)
        np.testing.assert_array_equal(png, detail.mmseg_label(ids))


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
