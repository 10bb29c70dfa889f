"""BitFit: PartialEncoderDecoder freezes everything but the backbone's
biases and the heads when it is built, and freeze_except refuses patterns
that would silently train nothing or the wrong thing."""
from __future__ import annotations

import pytest
import torch
from torch import nn

pytestmark = pytest.mark.usefixtures('mmseg_ready')


def test_bitfit_config_freezes_all_but_biases_and_heads(swin_cfg):
    from mmseg.registry import MODELS
    model = MODELS.build(swin_cfg('bitfit').model)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    for name, _ in model.named_parameters():
        in_head = name.startswith(('decode_head.', 'auxiliary_head.'))
        bias = name.startswith('backbone.') and name.endswith('.bias')
        assert (name in trainable) == (in_head or bias), name
    # Learned tables are not bias terms.
    assert not any('relative_position_bias_table' in n for n in trainable)
    assert any(n.startswith('backbone.stages.') for n in trainable)


def _toy():
    model = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 2))
    model[1].weight.requires_grad_(False)  # frozen by the model itself
    return model


def test_freeze_except_keeps_matches_and_own_freezing():
    from mmspd.baselines import freeze_except
    model = _toy()
    kept = freeze_except(model, [r'.*\.bias', r'2\..*'])
    assert kept == ['0.bias', '1.bias', '2.weight', '2.bias']
    assert not model[0].weight.requires_grad
    assert not model[1].weight.requires_grad


def test_frozen_parameters_do_not_move_under_adamw():
    from mmspd.baselines import freeze_except
    model = _toy()
    freeze_except(model, [r'.*\.bias'])
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1,
                                  weight_decay=0.5)
    for _ in range(2):
        optimizer.zero_grad()
        model(torch.randn(5, 3)).square().sum().backward()
        optimizer.step()
    for name, p in model.named_parameters():
        assert torch.equal(p, before[name]) != name.endswith('.bias'), name


@pytest.mark.parametrize('trainable, message', [
    ([], 'non-empty'),
    (r'.*\.bias', 'non-empty'),
    (['(unclosed'], 'invalid trainable pattern'),
    ([r'.*\.bias', r'head\..*'], r"match no parameter"),
    ([r'1\.weight'], 'no parameter .* is left trainable'),
])
def test_bad_patterns_are_refused(trainable, message):
    from mmspd.baselines import freeze_except
    with pytest.raises(ValueError, match=message):
        freeze_except(_toy(), trainable)
