"""Sample images of each test condition, drawn by mmseg's visualizer."""
from __future__ import annotations

import os
import os.path as osp

import numpy as np
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class ShowSamplesHook(Hook):
    """Save the first ``count`` test images of each condition.

    The condition is the test loop's ``condition`` (``CorruptionTestLoop``
    sets it), else ``'clean'`` (e.g. mmseg's plain ``TestLoop``). The main
    process writes ``<show_dir>/<condition>/<image>.png``: the model input
    (after corruption), then mmseg's ``SegLocalVisualizer`` drawing of the
    ground truth (if loaded) and of the prediction.

    Args:
        show_dir (str): Where the images go.
        count (int): Images per condition. Defaults to 3.

    Example:
        >>> custom_hooks = [dict(type='ShowSamplesHook', show_dir='show')]
    """

    priority = 'LOW'

    def __init__(self, show_dir: str, count: int = 3) -> None:
        if isinstance(count, bool) or not isinstance(count, int) or \
                count < 1:
            raise ValueError(f'Invalid count (show_num) {count!r}; '
                             'expected an integer >= 1')
        self.show_dir, self.count, self.saved = show_dir, count, 0

    def before_test_epoch(self, runner) -> None:
        self.saved = 0

    def after_test_iter(self, runner, batch_idx, data_batch=None,
                        outputs=None) -> None:
        if not is_main_process() or self.saved >= self.count or not outputs:
            return
        import cv2
        from mmseg.visualization import SegLocalVisualizer
        loop = runner.test_loop
        folder = osp.join(self.show_dir, getattr(loop, 'condition', 'clean'))
        os.makedirs(folder, exist_ok=True)
        visualizer = runner.visualizer
        if not isinstance(visualizer, SegLocalVisualizer):
            visualizer = SegLocalVisualizer.get_instance('mmspd_show')
            visualizer.dataset_meta = loop.dataloader.dataset.metainfo
        for inputs, sample in zip(data_batch['inputs'], outputs):
            if self.saved >= self.count:
                break
            height, width = sample.pred_sem_seg.shape
            # Inputs are BGR CHW as packed, possibly resized for testing.
            image = np.ascontiguousarray(
                inputs.cpu().numpy().transpose(1, 2, 0)[..., 2::-1])
            image = cv2.resize(image.astype(np.uint8), (width, height),
                               interpolation=cv2.INTER_LINEAR)
            gt = sample.get('gt_sem_seg')
            name = osp.splitext(osp.basename(sample.img_path))[0]
            out_file = osp.join(folder, f'{name}.png')
            visualizer.add_datasample(
                name, image, sample, out_file=out_file,
                draw_gt=gt is not None and gt.shape == (height, width))
            # The input beside the visualizer's panels (BGR on disk).
            cv2.imwrite(out_file, np.concatenate(
                [image[..., ::-1], cv2.imread(out_file)], axis=1))
            self.saved += 1
