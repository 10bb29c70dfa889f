"""PascalContext21Dataset on a generated PASCAL_MT folder: classes, layout,
label precedence, labels read as they are, 21-class mIoU with background
counted and 255 ignored."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.usefixtures('mmseg_ready')

LOAD = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations')]


def build(root, split='train', **kwargs):
    from mmseg.registry import DATASETS
    return DATASETS.build(
        dict(
            type='PascalContext21Dataset',
            data_root=str(root),
            ann_file=f'ImageSets/Context/{split}.txt',
            **{'pipeline': LOAD, **kwargs}))


def test_classes_are_background_and_voc(pascal_data):
    from mmspd.datasets import PascalContext21Dataset
    meta = PascalContext21Dataset.METAINFO
    assert meta['classes'] == pascal_data.VOC21_CLASSES
    assert len(meta['palette']) == 21
    assert all(len(c) == 3 for c in meta['palette'])
    assert len({tuple(c) for c in meta['palette']}) == 21


def test_reads_the_layout_voc12_first(pascal_mt):
    root, labels = pascal_mt
    dataset = build(root)
    assert len(dataset) == 4
    assert dataset.metainfo['classes'][0] == 'background'
    assert dataset.ignore_index == 255
    assert dataset.metainfo['reduce_zero_label'] is False
    for index in range(len(dataset)):
        sample = dataset[index]
        image_id = sample['img_path'].rsplit('/', 1)[1][:-4]
        assert sample['img_path'] == str(root / 'JPEGImages' /
                                         f'{image_id}.jpg')
        source = ('semseg/VOC12' if 'semseg/VOC12' in labels[image_id] else
                  'semseg/pascal-context')
        assert sample['seg_map_path'] == str(root / source /
                                             f'{image_id}.png')
        # As written: background stays 0, ignored pixels stay 255, and
        # the VOC12 palette PNG gives its indices, not colours.
        np.testing.assert_array_equal(sample['gt_seg_map'],
                                      labels[image_id][source])


def test_lookup_order_is_configurable(pascal_mt):
    root, _ = pascal_mt
    dataset = build(
        root, seg_map_dirs=('semseg/pascal-context', 'semseg/VOC12'))
    assert all('semseg/pascal-context' in dataset.get_data_info(i)
               ['seg_map_path'] for i in range(len(dataset)))


def test_missing_label_map_is_named(pascal_data, tmp_path):
    labels = pascal_data.write_pascal_mt(tmp_path, ['a1', 'a2'], ['a3'])
    (tmp_path / 'semseg' / 'pascal-context' / 'a2.png').unlink()
    (tmp_path / 'JPEGImages' / 'a1.jpg').unlink()
    assert 'a2' in labels
    with pytest.raises(FileNotFoundError) as error:
        build(tmp_path)
    assert 'a2 (label map)' in str(error.value)
    assert 'a1 (image' in str(error.value)
    assert 'tools/prepare_pascal_mt.py check' in str(error.value)


def test_missing_split_file_is_named(pascal_mt, tmp_path):
    root, _ = pascal_mt
    shutil.copytree(root / 'JPEGImages', tmp_path / 'JPEGImages')
    with pytest.raises(FileNotFoundError, match='Context/train.txt'):
        build(tmp_path)


@pytest.mark.parametrize('kwargs, message', [
    (dict(reduce_zero_label=True), 'reduce_zero_label must be False'),
    (dict(seg_map_dirs='semseg/VOC12'), 'non-empty sequence'),
    (dict(seg_map_dirs=()), 'non-empty sequence'),
    (dict(data_prefix=dict(img_path='JPEGImages',
                           seg_map_path='semseg/pascal-context')),
     'seg_map_dirs'),
])
def test_bad_arguments_are_refused(pascal_mt, kwargs, message):
    root, _ = pascal_mt
    with pytest.raises(ValueError, match=message):
        build(root, **kwargs)


def _iou_metric(dataset, gt: np.ndarray, pred: np.ndarray) -> float:
    """mIoU of one prediction through mmseg's IoUMetric, with the
    dataset's metainfo, as the configs' evaluator computes it."""
    from mmengine.structures import PixelData
    from mmseg.evaluation import IoUMetric
    from mmseg.structures import SegDataSample
    metric = IoUMetric(iou_metrics=['mIoU'])
    metric.dataset_meta = dataset.metainfo
    sample = SegDataSample()
    sample.gt_sem_seg = PixelData(data=torch.from_numpy(gt[None]).long())
    sample.pred_sem_seg = PixelData(data=torch.from_numpy(pred[None]).long())
    metric.process([], [sample.to_dict()])
    return metric.evaluate(1)['mIoU']


def _reference_miou(gt: np.ndarray, pred: np.ndarray) -> float:
    """mIoU over the classes present in ``gt`` or ``pred``, 255 ignored."""
    valid = gt != 255
    ious = []
    for c in range(21):
        inter = np.sum((gt == c) & (pred == c) & valid)
        union = np.sum(((gt == c) | (pred == c)) & valid)
        if union:
            ious.append(inter / union)
    return 100 * float(np.mean(ious))


def test_miou_counts_background_and_ignores_255(pascal_mt):
    root, labels = pascal_mt
    dataset = build(root)
    assert len(dataset.metainfo['classes']) == 21
    gt = labels['2008_000002']['semseg/pascal-context'].astype(np.int64)
    assert (gt == 255).any() and (gt == 0).any()

    # Wrong predictions on ignored pixels do not count.
    pred = np.where(gt == 255, 7, gt)
    assert _iou_metric(dataset, gt, pred) == pytest.approx(100.0)

    # Background is a class: predicting it as aeroplane costs its IoU.
    pred = np.where(gt == 0, 1, pred)
    miou = _iou_metric(dataset, gt, pred)
    assert miou < 100.0
    assert miou == pytest.approx(_reference_miou(gt, pred), abs=0.01)


def test_tta_pipeline_runs(pascal_mt):
    """The configs' --tta pipeline: two flips, labels as they are."""
    import os.path as osp

    from mmengine.config import Config
    root, labels = pascal_mt
    cfg = Config.fromfile(
        osp.join(
            osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
            'configs', '_base_', 'datasets', 'pascal_context_21.py'))
    dataset = build(root, split='val', pipeline=cfg.tta_pipeline)
    sample = dataset[0]
    assert len(sample['inputs']) == 2
    flips = [s.flip for s in sample['data_samples']]
    assert flips == [False, True]
    image_id = '2008_000010'
    np.testing.assert_array_equal(
        sample['data_samples'][0].gt_sem_seg.data[0].numpy(),
        labels[image_id]['semseg/pascal-context'])
