"""Every Swin-T PASCAL-Context 59/60 config builds and trains one iteration.

Each config's Swin UperNet is built (the real Swin-T for one of them, a
narrower and shallower one through overrides for the others), its backbone
initialised from a pre-trained checkpoint file through ``init_cfg`` (random
weights saved by the test), its optimizer wrapper built from the config's
``paramwise_cfg``, and its train and test pipelines run on the demo data
with crops of 64x64, so that an iteration takes seconds on a CPU. The
configs are read as mmseg's tools read them (``Config.fromfile``, then
MMEngine's ``Runner``).
"""
from __future__ import annotations

import argparse
import glob
import math
import os.path as osp

import pytest
import torch

SWIN_DIR = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs',
    'swin')
SWIN_CONFIGS = sorted(
    glob.glob(osp.join(SWIN_DIR, '*_pascal-context-59-480x480.py')) +
    glob.glob(osp.join(SWIN_DIR, '*_pascal-context-480x480.py')))


def test_swin_configs_are_shipped():
    names = [osp.basename(path) for path in SWIN_CONFIGS]
    for algo in ('adamw', 'adamspd', 'adaml2sp', 'sgd-spd'):
        assert (f'upernet_swin-t_{algo}_8xb2-80k_pascal-context-59-480x480'
                '.py') in names


@pytest.mark.parametrize(
    'config', SWIN_CONFIGS, ids=[osp.basename(p) for p in SWIN_CONFIGS])
def test_swin_config_works_with_mmseg_tools(config):
    from mmengine.config import Config
    cfg = Config.fromfile(config, import_custom_modules=False)
    assert 'mmspd' in cfg.custom_imports.imports
    # mmseg's --amp switches only this wrapper type to AmpOptimWrapper.
    assert cfg.optim_wrapper.type == 'OptimWrapper'
    hooks = [hook.type for hook in cfg.get('custom_hooks', [])]
    name = osp.basename(config)
    if 'spd' in name:
        assert 'SPDHook' in hooks
    # mmseg's top-level SGD `optimizer` (which MMEngine ignores) is cleared.
    assert cfg.optimizer is None


# Built at full size once; the others are shrunk (same modules, fewer
# channels and blocks) to keep the test suite fast.
FULL_SIZE = 'upernet_swin-t_adamspd_8xb2-80k_pascal-context-59-480x480.py'
SHRINK = {
    'model.backbone.embed_dims': 16,
    'model.backbone.depths': [1, 1, 1, 1],
    'model.backbone.num_heads': [1, 1, 1, 1],
    'model.decode_head.in_channels': [16, 32, 64, 128],
    'model.decode_head.channels': 16,
    'model.auxiliary_head.in_channels': 64,
    'model.auxiliary_head.channels': 16,
}


def cli_value(value) -> str:
    if isinstance(value, list):
        return '[' + ','.join(str(v) for v in value) + ']'
    return str(value)


@pytest.fixture(scope='module')
def pretrained(mmcv_ops, tmp_path_factory):
    """Return ``make(shrink)``: a Swin backbone checkpoint in mmseg's key
    layout (random weights) for the Swin-T configs, and its weights."""
    from mmengine.config import Config
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    made = {}

    def make(shrink: bool) -> tuple[str, dict]:
        if shrink not in made:
            cfg = Config.fromfile(osp.join(SWIN_DIR, FULL_SIZE))
            if shrink:
                cfg.merge_from_dict(SHRINK)
            backbone_cfg = cfg.model.backbone.copy()
            backbone_cfg.pop('init_cfg')
            torch.manual_seed(1234)  # unlike any init the runner draws
            backbone = MODELS.build(backbone_cfg)
            weights = {
                k: v.clone()
                for k, v in backbone.state_dict().items()
            }
            path = tmp_path_factory.mktemp('pretrain') / 'swin.pth'
            torch.save({'state_dict': weights}, str(path))
            made[shrink] = (str(path), weights)
        return made[shrink]

    return make


@pytest.mark.parametrize(
    'config', SWIN_CONFIGS, ids=[osp.basename(p) for p in SWIN_CONFIGS])
def test_swin_config_trains_one_iteration(config, pretrained, demo_root,
                                          tmp_path):
    shrink = osp.basename(config) != FULL_SIZE
    checkpoint, weights = pretrained(shrink)
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
    if shrink:
        options += [f'{k}={cli_value(v)}' for k, v in SHRINK.items()]
    for split in ('train', 'val'):
        options += [
            f'{split}_dataloader.dataset.data_root={demo_root}',
            f'{split}_dataloader.num_workers=0',
            f'{split}_dataloader.persistent_workers=False',
        ]
    from mmengine.config import Config, DictAction
    from mmengine.runner import Runner
    cfg = Config.fromfile(config)
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    cfg.merge_from_dict(parser.parse_args(['--cfg-options',
                                           *options]).cfg_options)
    cfg.work_dir = str(tmp_path)
    runner = Runner.from_cfg(cfg)
    runner.train()

    assert runner.iter == 1
    loss = runner.message_hub.get_scalar('train/loss').current()
    assert math.isfinite(loss)
    # Validation ran the test pipeline and the evaluator.
    assert 'val/mIoU' in runner.message_hub.log_scalars
    if not shrink:  # Swin-T: 27.5M backbone parameters
        backbone = runner.model.backbone
        assert sum(p.numel() for p in backbone.parameters()) > 27_000_000

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
    assert checked >= len(named) // 3
