"""The Swin-T SPD configs through mmseg's own tools/train.py and test.py.

Users run mmseg's scripts (``mmseg/.mim/tools/`` of the installed mmseg,
or their checkout's ``tools/``) on mmspd's configs. Each run here is such a
process: 2 training iterations of a shrunk Swin UperNet (same modules,
fewer channels and blocks) started from a pre-trained backbone file, on
generated data, then an evaluation of the checkpoint. SPD must be applied
(anchors in the optimizer state, equal to the pre-trained weights), and a
config that asks for SPD but builds an optimizer SPD cannot run on must stop
before training.
"""
from __future__ import annotations

import glob
import json
import os.path as osp
import sys

import pytest
import torch

from mmspd.utils import mmseg_tool_path

SWIN_DIR = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs',
    'swin')
ADAMSPD = 'upernet_swin-t_adamspd_8xb2-80k_pascal-context-59-480x480.py'
SGD_SPD = 'upernet_swin-t_sgd-spd_8xb2-80k_pascal-context-59-480x480.py'

SMALL = '(64,64)'
SHRINK = [
    'model.backbone.embed_dims=16',
    'model.backbone.depths=[1,1,1,1]',
    'model.backbone.num_heads=[1,1,1,1]',
    'model.decode_head.in_channels=[16,32,64,128]',
    'model.decode_head.channels=16',
    'model.auxiliary_head.in_channels=64',
    'model.auxiliary_head.channels=16',
]


def load(path) -> dict:
    # Files written by these tests; the full unpickler is safe here.
    return torch.load(path, map_location='cpu', weights_only=False)


@pytest.fixture(scope='module')
def pretrained(mmcv_ops, tmp_path_factory) -> tuple[str, dict]:
    """A shrunk Swin backbone checkpoint (random weights) and its weights."""
    from mmengine.config import Config
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(osp.join(SWIN_DIR, ADAMSPD))
    backbone_cfg = cfg.model.backbone.copy()
    backbone_cfg.pop('init_cfg')
    backbone_cfg.update(embed_dims=16, depths=[1, 1, 1, 1],
                        num_heads=[1, 1, 1, 1])
    torch.manual_seed(4321)  # unlike any init the runner draws
    weights = {
        k: v.clone()
        for k, v in MODELS.build(backbone_cfg).state_dict().items()
    }
    path = tmp_path_factory.mktemp('pretrain') / 'swin.pth'
    torch.save({'state_dict': weights}, str(path))
    return str(path), weights


def options(checkpoint: str, data_root: str) -> list[str]:
    opts = SHRINK + [
        f'model.backbone.init_cfg.checkpoint={checkpoint}',
        f'model.data_preprocessor.size={SMALL}',
        'train_cfg.max_iters=2',
        'train_cfg.val_interval=2',
        'default_hooks.checkpoint.interval=2',
        'default_hooks.logger.interval=1',
        'custom_hooks.1.interval=1',
        f'train_dataloader.dataset.pipeline.2.scale={SMALL}',
        f'train_dataloader.dataset.pipeline.3.crop_size={SMALL}',
        f'val_dataloader.dataset.pipeline.1.scale={SMALL}',
        f'test_dataloader.dataset.pipeline.1.scale={SMALL}',
    ]
    for split in ('train', 'val', 'test'):
        opts += [
            f'{split}_dataloader.dataset.data_root={data_root}',
            f'{split}_dataloader.num_workers=0',
            f'{split}_dataloader.persistent_workers=False',
        ]
    return opts


def anchors_matching(anchors: list[torch.Tensor],
                     weights: dict[str, torch.Tensor]) -> int:
    """How many pre-trained tensors some anchor equals exactly."""
    return sum(
        any(a.shape == w.shape and torch.equal(a, w) for a in anchors)
        for w in weights.values())


@pytest.mark.parametrize('config', [ADAMSPD, SGD_SPD])
def test_spd_config_trains_and_tests_with_mmseg_tools(
        config, pretrained, tools, demo_root, tmp_path):
    checkpoint, weights = pretrained
    opts = options(checkpoint, demo_root)
    work_dir = str(tmp_path / 'train')
    log = tools.run_tool([
        sys.executable,
        mmseg_tool_path('train.py'),
        osp.join(SWIN_DIR, config), '--work-dir', work_dir,
        '--cfg-options', *opts
    ])
    # SPDStatsHook logged SPD's statistics.
    assert 'spd_selected' in log

    saved = load(osp.join(work_dir, 'iter_2.pth'))
    assert saved['meta']['iter'] == 2
    anchors = [
        state['anchor'] for state in saved['optimizer']['state'].values()
        if 'anchor' in state
    ]
    # The anchors are the pre-trained backbone, loaded after the optimizer
    # was built, not the random initialisation.
    assert anchors_matching(anchors, weights) >= len(weights) // 3

    test_dir = str(tmp_path / 'test')
    tools.run_tool([
        sys.executable,
        mmseg_tool_path('test.py'),
        osp.join(SWIN_DIR, config),
        osp.join(work_dir, 'iter_2.pth'), '--work-dir', test_dir,
        '--cfg-options', *opts
    ])
    (metrics_file, ) = glob.glob(osp.join(test_dir, '*', '*.json'))
    with open(metrics_file) as f:
        metrics = json.load(f)
    assert 0.0 <= metrics['mIoU'] <= 100.0


def test_spd_config_with_an_optimizer_spd_cannot_run_on_stops(
        pretrained, tools, demo_root, tmp_path):
    checkpoint, _ = pretrained
    work_dir = tmp_path / 'train'
    # An override that swaps in an optimizer with anchors of its own.
    log = tools.run_tool([
        sys.executable,
        mmseg_tool_path('train.py'),
        osp.join(SWIN_DIR, ADAMSPD), '--work-dir',
        str(work_dir), '--cfg-options',
        *options(checkpoint, demo_root),
        'optim_wrapper.optimizer.type=AdamL2SP'
    ],
                         expect_failure=True)
    assert ('SPDHook cannot apply SPD to the optimizer the config built '
            '(OptimWrapper around AdamL2SP)') in log
    assert "remove dict(type='SPDHook') from custom_hooks" in log
    assert not glob.glob(str(work_dir / 'iter_*.pth'))
