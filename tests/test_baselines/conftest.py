"""Fixtures for the BitFit and LLRD tests."""
from __future__ import annotations

import os.path as osp

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture(scope='session')
def mmseg_ready() -> None:
    """Skip when mmcv has no compiled ops (mmseg's models import them);
    else register mmseg's and mmspd's modules."""
    pytest.importorskip('mmcv.ops',
                        reason='mmseg imports mmcv\'s compiled ops')
    from mmseg.utils import register_all_modules

    import mmspd  # noqa: F401  registers the baselines
    register_all_modules(init_default_scope=True)


@pytest.fixture(scope='session')
def swin_cfg(mmseg_ready):
    """Return ``load(algo)``: the 21-class Swin-T config of ``algo`` with
    BN for SyncBN and no pre-trained checkpoint."""
    from mmengine.config import Config

    def load(algo: str) -> Config:
        cfg = Config.fromfile(
            osp.join(REPO, 'configs', 'swin', f'upernet_swin-t_{algo}_8xb2-'
                     '80k_pascal-context-21-512x512.py'))
        cfg.merge_from_dict({
            'model.backbone.init_cfg': None,
            'model.decode_head.norm_cfg.type': 'BN',
            'model.auxiliary_head.norm_cfg.type': 'BN',
        })
        return cfg

    return load
