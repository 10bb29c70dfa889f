"""The ``spd`` group key through MMEngine's ``paramwise_cfg.custom_keys``:
SPD on a pre-trained backbone, the optimizer's own decay on a new head."""
import pytest
import torch
from mmengine.optim import build_optim_wrapper

import mmspd.optim  # registers AdamSPD
from mmspd.optim import attach_spd, get_anchors

LAMBDA = 1.0
HEAD_DECAY_MULT = 0.05


def _paramwise():
    # What a config writes: the head ('fc2') takes the optimizer's own
    # decay, lambda * decay_mult; norms get neither.
    return dict(custom_keys={
        'fc2': dict(spd=False, decay_mult=HEAD_DECAY_MULT),
        'norm': dict(decay_mult=0.0)})


def _groups_by_name(wrapper, net):
    names = {param: name for name, param in net.named_parameters()}
    return {names[group['params'][0]]: group
            for group in wrapper.optimizer.param_groups}


@pytest.mark.parametrize('inner', ['AdamSPD', 'AdamW', 'SGD'])
def test_custom_keys_choose_spd_or_the_own_decay(helpers, inner):
    net, split = helpers.make_net(), helpers.make_net()
    optimizer = {'type': inner, 'lr': 0.02, 'weight_decay': LAMBDA}
    if inner == 'SGD':
        optimizer.update(lr=0.005, momentum=0.9)
    wrapper = build_optim_wrapper(net, dict(
        type='OptimWrapper', optimizer=dict(optimizer),
        paramwise_cfg=_paramwise()))
    if inner != 'AdamSPD':
        attach_spd(wrapper.optimizer)
    groups = _groups_by_name(wrapper, net)
    assert groups['fc2.weight']['spd'] is False
    assert groups['fc2.weight']['weight_decay'] == pytest.approx(
        LAMBDA * HEAD_DECAY_MULT)
    assert groups['fc1.weight'].get('spd', True) is True

    # The same as SPD on the rest beside the plain optimizer (AdamW for
    # AdamSPD) with its own decay on the head.
    head = [p for n, p in split.named_parameters() if n.startswith('fc2')]
    norms = [p for n, p in split.named_parameters() if n.startswith('norm')]
    rest = [{'params': [p for n, p in split.named_parameters()
                        if not n.startswith(('fc2', 'norm'))]},
            {'params': norms, 'weight_decay': 0.0}]
    spd_type = 'AdamSPD' if inner == 'AdamSPD' else inner
    plain_type = 'AdamW' if inner == 'AdamSPD' else inner
    kwargs = {k: v for k, v in optimizer.items() if k != 'type'}
    backbone = getattr(mmspd.optim if spd_type == 'AdamSPD' else torch.optim,
                       spd_type)(rest, **kwargs)
    if inner != 'AdamSPD':
        attach_spd(backbone)
    plain = getattr(torch.optim, plain_type)(
        head, **{**kwargs, 'weight_decay': LAMBDA * HEAD_DECAY_MULT})
    for batch in helpers.batches(12):
        wrapper.update_params(helpers.loss_fn(net, batch))
        backbone.zero_grad()
        plain.zero_grad()
        helpers.loss_fn(split, batch).backward()
        backbone.step()
        plain.step()
    helpers.assert_same_params(net, split, rtol=1e-10, atol=1e-12)
    anchored = set(get_anchors(wrapper))
    assert net.fc1.weight in anchored and net.fc2.weight not in anchored
