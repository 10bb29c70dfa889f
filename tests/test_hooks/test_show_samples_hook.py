"""ShowSamplesHook: sample images of each test condition."""
from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.registry import HOOKS
from mmseg.structures import SegDataSample

import mmspd  # noqa: F401


def sample(name: str) -> SegDataSample:
    data = SegDataSample(metainfo={'img_path': f'/data/{name}.jpg'})
    data.pred_sem_seg = PixelData(data=torch.ones(1, 40, 48,
                                                  dtype=torch.long))
    data.gt_sem_seg = PixelData(data=torch.zeros(1, 40, 48,
                                                 dtype=torch.long))
    return data


def test_plain_test_loop_gets_samples_under_clean(tmp_path):
    # mmseg's TestLoop has no condition: its images go under 'clean'.
    hook = HOOKS.build(dict(type='ShowSamplesHook', show_dir=str(tmp_path),
                            count=3))
    metainfo = {'classes': ('a', 'b'), 'palette': [[0, 0, 0], [255, 0, 0]]}
    loop = SimpleNamespace(dataloader=SimpleNamespace(
        dataset=SimpleNamespace(metainfo=metainfo)))
    runner = SimpleNamespace(test_loop=loop, visualizer=None)
    # Packed inputs: BGR, CHW, at the test size; blue everywhere.
    inputs = torch.zeros(3, 20, 24, dtype=torch.uint8)
    inputs[0] = 200
    hook.before_test_epoch(runner)
    for batch in range(2):
        names = [f'img{batch}{i}' for i in range(2)]
        hook.after_test_iter(runner, batch, {'inputs': [inputs] * 2},
                             [sample(n) for n in names])
    files = sorted(p.name for p in (tmp_path / 'clean').iterdir())
    assert files == ['img00.png', 'img01.png', 'img10.png']
    panel = cv2.imread(str(tmp_path / 'clean' / 'img00.png'))
    # The input at the prediction's size, then prediction and truth.
    assert panel.shape == (40, 3 * 48, 3)
    assert np.all(panel[:, :48] == [200, 0, 0])


@pytest.mark.parametrize('count', [0, -1, 2.0, True])
def test_bad_count_is_refused(tmp_path, count):
    with pytest.raises(ValueError,
                       match=rf'Invalid count \(show_num\) {count!r}'):
        HOOKS.build(dict(type='ShowSamplesHook', show_dir=str(tmp_path),
                         count=count))
