"""Every shipped Swin-T config builds and trains one iteration.

The real Swin-T UperNet of each config is built, its backbone initialised
from a pre-trained checkpoint file through ``init_cfg`` (random weights
saved by the test), its optimizer wrapper built from the config's
``paramwise_cfg``, and its data pipeline run on the demo data, with crops
shrunk to 64x64 so that an iteration takes seconds on a CPU.
"""
from __future__ import annotations

import glob
import math
import os.path as osp

import pytest
import torch

SWIN_DIR = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs',
    'swin')
SWIN_CONFIGS = sorted(glob.glob(osp.join(SWIN_DIR, '*.py')))


def test_swin_configs_are_shipped():
    names = [osp.basename(path) for path in SWIN_CONFIGS]
    for algo in ('adamw', 'adamspd', 'adaml2sp', 'sgd-spd'):
        assert (f'upernet_swin-t_{algo}_8xb2-80k_pascal-context-59-480x480'
                '.py') in names


@pytest.fixture(scope='module')
def pretrained(mmcv_ops, tmp_path_factory) -> tuple[str, dict]:
    """A Swin-T backbone checkpoint in mmseg's key layout, and its weights."""
    from mmengine.config import Config
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(SWIN_CONFIGS[0])
    backbone_cfg = cfg.model.backbone.copy()
    backbone_cfg.pop('init_cfg')
    torch.manual_seed(1234)  # weights unlike any init the runner draws
    backbone = MODELS.build(backbone_cfg)
    state_dict = {k: v.clone() for k, v in backbone.state_dict().items()}
    path = str(tmp_path_factory.mktemp('pretrain') / 'swin_t.pth')
    torch.save({'state_dict': state_dict}, path)
    return path, state_dict


@pytest.mark.parametrize(
    'config', SWIN_CONFIGS, ids=[osp.basename(p) for p in SWIN_CONFIGS])
def test_swin_config_trains_one_iteration(config, pretrained, tools,
                                          demo_root, tmp_path):
    checkpoint, weights = pretrained
    small = '(64,64)'
    options = [
        f'model.backbone.init_cfg.checkpoint={checkpoint}',
        f'model.data_preprocessor.size={small}',
        'train_cfg.max_iters=1',
        # The real pipelines with smaller sizes: RandomResize, RandomCrop.
        f'train_dataloader.dataset.pipeline.2.scale={small}',
        f'train_dataloader.dataset.pipeline.3.crop_size={small}',
        f'val_dataloader.dataset.pipeline.1.scale={small}',
        'default_hooks.checkpoint.save_last=False',
        f'experiment_name={osp.basename(config)}',
    ]
    for split in ('train', 'val'):
        options += [
            f'{split}_dataloader.dataset.data_root={demo_root}',
            f'{split}_dataloader.num_workers=0',
            f'{split}_dataloader.persistent_workers=False',
        ]
    train = tools.load_tool('train')
    runner = train.main(
        [config, '--work-dir',
         str(tmp_path), '--cfg-options', *options])

    assert runner.iter == 1
    loss = runner.message_hub.get_scalar('train/loss').current()
    assert math.isfinite(loss)
    # Validation ran the test pipeline and the evaluator.
    assert 'val/mIoU' in runner.message_hub.log_scalars

    from mmspd.optim import get_anchors
    anchors = get_anchors(runner.optim_wrapper.optimizer)
    if 'adamw' in osp.basename(config):
        assert not anchors
        return
    # Anchors are the pre-trained backbone, loaded after the optimizer was
    # built: not the random initialisation.
    named = dict(runner.model.named_parameters())
    checked = 0
    for key, value in weights.items():
        param = named.get(f'backbone.{key}')
        if param is None or param not in anchors:
            continue
        assert torch.equal(anchors[param], value), key
        checked += 1
    assert checked > 100
