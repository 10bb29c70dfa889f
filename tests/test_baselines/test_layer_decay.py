"""SwinLayerDecayOptimWrapperConstructor gives every parameter of the real
Swin-T UperNet the learning rate the LLRD config says."""
from __future__ import annotations

import pytest
from torch import nn

pytestmark = pytest.mark.usefixtures('mmseg_ready')

LR = 6e-5


@pytest.fixture(scope='module')
def swin_t(swin_cfg):
    from mmseg.registry import MODELS
    cfg = swin_cfg('llrd')
    return cfg, MODELS.build(cfg.model)


def layers_by_module(model) -> tuple[dict, int, int]:
    """Layer of each parameter found by walking the modules (not names):
    patch embedding 0, block k (over all stages) k + 1, a stage's patch
    merging the layer of its last block, else the top. Also returns the
    stage of each backbone parameter (stage-wise numbering)."""
    layer, stage_of = {}, {}
    for p in model.backbone.patch_embed.parameters():
        layer[p] = 0
        stage_of[p] = -1
    block = 0
    for s, stage in enumerate(model.backbone.stages):
        for b in stage.blocks:
            block += 1
            for p in b.parameters():
                layer[p], stage_of[p] = block, s
        if stage.downsample is not None:
            for p in stage.downsample.parameters():
                layer[p], stage_of[p] = block, s
    return layer, stage_of, block


def lrs(model, optim_wrapper) -> dict:
    return {
        p: g['lr']
        for g in optim_wrapper.optimizer.param_groups for p in g['params']
    }


def test_layer_wise_rates_of_swin_t(swin_t):
    from mmengine.optim import build_optim_wrapper
    cfg, model = swin_t
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    got = lrs(model, optim_wrapper)
    layer, _, blocks = layers_by_module(model)
    assert blocks == 12  # Swin-T: 2 + 2 + 6 + 2
    for name, p in model.named_parameters():
        expected = LR * 0.9**(13 - layer.get(p, 13))
        assert got[p] == pytest.approx(expected, rel=1e-12), name
    # The figures the config's comment quotes.
    assert got[model.backbone.patch_embed.projection.weight] == (
        pytest.approx(1.525e-5, rel=1e-3))
    assert got[next(model.backbone.stages[0].blocks[0].parameters())] == (
        pytest.approx(1.695e-5, rel=1e-3))
    assert got[next(model.backbone.stages[3].blocks[1].parameters())] == (
        pytest.approx(5.4e-5))
    assert got[model.decode_head.conv_seg.weight] == pytest.approx(LR)


def test_custom_keys_still_apply(swin_t):
    from mmengine.optim import build_optim_wrapper
    cfg, model = swin_t
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    decay = {
        p: g['weight_decay']
        for g in optim_wrapper.optimizer.param_groups for p in g['params']
    }
    for name, p in model.named_parameters():
        exempt = 'norm' in name or 'relative_position_bias_table' in name
        assert decay[p] == (0.0 if exempt else 0.01), name


def test_stage_wise_rates(swin_t):
    from mmengine.optim import build_optim_wrapper
    cfg, model = swin_t
    cfg.optim_wrapper.paramwise_cfg.decay_type = 'stage_wise'
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    got = lrs(model, optim_wrapper)
    _, stage_of, _ = layers_by_module(model)
    for name, p in model.named_parameters():
        # Stem 0, stage s is layer s + 1, the top (heads) 5.
        expected = LR * 0.9**(5 - (stage_of[p] + 1 if p in stage_of else 5))
        assert got[p] == pytest.approx(expected, rel=1e-12), name


@pytest.mark.parametrize('paramwise_cfg, message', [
    (dict(), 'decay_rate'),
    (dict(decay_rate=0.0), 'decay_rate'),
    (dict(decay_rate=1.5), 'decay_rate'),
    (dict(decay_rate=True), 'decay_rate'),
    (dict(decay_rate=0.9, decay_type='block_wise'), 'block_wise'),
])
def test_bad_settings_are_refused(paramwise_cfg, message):
    from mmengine.optim import build_optim_wrapper
    with pytest.raises(ValueError, match=message):
        build_optim_wrapper(
            nn.Linear(2, 2),
            dict(
                type='OptimWrapper',
                constructor='SwinLayerDecayOptimWrapperConstructor',
                optimizer=dict(type='AdamW', lr=LR),
                paramwise_cfg=paramwise_cfg))


def test_model_without_swin_is_refused():
    from mmengine.optim import build_optim_wrapper
    model = nn.Module()
    model.backbone = nn.Linear(2, 2)
    with pytest.raises(ValueError, match='SwinTransformer backbone'):
        build_optim_wrapper(
            model,
            dict(
                type='OptimWrapper',
                constructor='SwinLayerDecayOptimWrapperConstructor',
                optimizer=dict(type='AdamW', lr=LR),
                paramwise_cfg=dict(decay_rate=0.9)))
