"""``--show-dir``: a few corrupted inputs and predictions per condition."""
from __future__ import annotations

import os
import os.path as osp

import numpy as np
from mmengine.dist import is_main_process
from mmengine.hooks import Hook


def _colour(labels: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Label map -> RGB; labels outside the palette (ignore) are black."""
    out = np.zeros(labels.shape + (3, ), dtype=np.uint8)
    valid = (labels >= 0) & (labels < len(palette))
    out[valid] = palette[labels[valid]]
    return out


def _palette(dataset, size: int) -> np.ndarray:
    palette = (getattr(dataset, 'metainfo', None) or {}).get('palette')
    if palette is not None and len(palette) >= size:
        return np.asarray(palette, dtype=np.uint8)
    # No or too short palette: fixed pseudo-random colours.
    return np.random.RandomState(0).randint(0, 256, (max(size, 1), 3),
                                            dtype=np.uint8)


class ShowSamplesHook(Hook):
    """Save the first ``count`` test images of each condition (per main
    process) as ``<show_dir>/<condition>/<image>.png``: the model input
    (after corruption), the prediction and the ground truth side by side.

    :func:`~mmspd.evaluation.evaluate_robustness` sets :attr:`condition`
    before each condition.

    Args:
        show_dir (str): Output folder.
        count (int): Images per condition. Defaults to 3.
    """

    priority = 'LOW'

    def __init__(self, show_dir: str, count: int = 3) -> None:
        if count < 1:
            raise ValueError(f'Invalid count {count}; expected >= 1')
        self.show_dir = show_dir
        self.count = count
        self.condition = 'clean'
        self.saved = 0

    def start(self, condition: str) -> None:
        """Begin a condition: images go to ``<show_dir>/<condition>``."""
        self.condition = condition
        self.saved = 0

    def after_test_iter(self, runner, batch_idx, data_batch=None,
                        outputs=None) -> None:
        if not is_main_process() or self.saved >= self.count or not outputs:
            return
        import cv2
        folder = osp.join(self.show_dir, self.condition)
        os.makedirs(folder, exist_ok=True)
        dataset = runner.test_loop.dataloader.dataset
        for inputs, sample in zip(data_batch['inputs'], outputs):
            if self.saved >= self.count:
                break
            pred = sample.pred_sem_seg.data.cpu().numpy()[0]
            height, width = pred.shape
            # Inputs are BGR CHW as packed, possibly resized for testing.
            image = inputs.cpu().numpy().transpose(1, 2, 0)[..., :3]
            image = cv2.resize(np.ascontiguousarray(image).astype(np.uint8),
                               (width, height),
                               interpolation=cv2.INTER_LINEAR)
            palette = _palette(dataset, int(pred.max()) + 1)
            panels = [image, _colour(pred, palette)[..., ::-1]]
            if 'gt_sem_seg' in sample:
                gt = sample.gt_sem_seg.data.cpu().numpy()[0]
                if gt.shape == pred.shape:
                    panels.append(_colour(gt, palette)[..., ::-1])
            name = osp.splitext(osp.basename(sample.img_path))[0]
            cv2.imwrite(osp.join(folder, f'{name}.png'),
                        np.concatenate(panels, axis=1))
            self.saved += 1
