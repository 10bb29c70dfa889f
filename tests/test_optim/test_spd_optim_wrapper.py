import copy

import pytest
import torch
from mmengine.optim import OptimWrapper, build_optim_wrapper

from mmspd.optim import (
    AdamSPD,
    AmpSPDOptimWrapper,
    SPDOptimWrapper,
    get_anchors,
)


def adam_groups(helpers, net, **overrides):
    # Inner optimizers know no 'anchor' key; the wrapper reads it per group.
    return helpers.split_groups(net, **overrides)


@pytest.mark.parametrize('amsgrad', [False, True])
@pytest.mark.parametrize('foreach', [True, False])
def test_wrapped_adam_reproduces_adam_spd(helpers, foreach, amsgrad):
    net, spd_net = helpers.make_net(), helpers.make_net()
    wrapper = SPDOptimWrapper(
        torch.optim.Adam(adam_groups(helpers, net), lr=0.02,
                         amsgrad=amsgrad),
        foreach=foreach)
    adam_spd = AdamSPD(helpers.split_groups(spd_net), lr=0.02,
                       amsgrad=amsgrad)
    data = helpers.batches(50)
    helpers.train(net, wrapper, data, step=wrapper.update_params)
    helpers.train(spd_net, adam_spd, data)
    helpers.assert_same_params(net, spd_net, rtol=1e-9, atol=1e-11)
    # The strengths stay where schedulers and checkpoints see them.
    assert [g['weight_decay'] for g in wrapper.optimizer.param_groups] == [
        g['weight_decay'] for g in adam_spd.param_groups]
    wrapped_anchors = list(get_anchors(wrapper).values())
    for mine, theirs in zip(wrapped_anchors, get_anchors(adam_spd).values()):
        assert torch.equal(mine, theirs)
    for key, value in adam_spd.spd_statistics().items():
        torch.testing.assert_close(wrapper.spd_statistics()[key], value)


def build_from_config(net, **wrapper_cfg):
    cfg = {
        'type': 'SPDOptimWrapper',
        'optimizer': {'type': 'AdamW', 'lr': 0.02, 'weight_decay': 0.5},
        'paramwise_cfg': {'custom_keys': {
            'norm': {'decay_mult': 0.0},
            'fc1': {'decay_mult': 2.0},
        }}}
    cfg.update(wrapper_cfg)
    return build_optim_wrapper(net, cfg)


def test_build_from_config_with_paramwise_cfg(helpers):
    net, spd_net = helpers.make_net(), helpers.make_net()
    wrapper = build_from_config(net)
    strengths = {id(p): g['weight_decay']
                 for g in wrapper.optimizer.param_groups for p in g['params']}
    assert strengths[id(net.norm.weight)] == 0.0
    assert strengths[id(net.fc1.weight)] == 1.0
    assert strengths[id(net.conv.weight)] == 0.5
    # AdamW without decay is Adam: the same per-layer strengths in AdamSPD
    # give the same trajectory; decay_mult=0 turns SPD off for norm layers.
    groups = [{'params': list(spd_net.norm.parameters()), 'weight_decay': 0.0},
              {'params': list(spd_net.fc1.parameters()), 'weight_decay': 1.0},
              {'params': [*spd_net.conv.parameters(),
                           *spd_net.fc2.parameters()], 'weight_decay': 0.5}]
    adam_spd = AdamSPD(groups, lr=0.02)
    data = helpers.batches(30)
    helpers.train(net, wrapper, data, step=wrapper.update_params)
    helpers.train(spd_net, adam_spd, data)
    helpers.assert_same_params(net, spd_net, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize('how', [
    {}, {'type': 'OptimWrapper', 'constructor': 'SPDOptimWrapperConstructor'}
], ids=['SPDOptimWrapper', 'constructor'])
def test_state_dict_round_trip_keeps_lambda_and_anchors(helpers, how):
    net = helpers.make_net()
    wrapper = build_from_config(net, **how)
    data = helpers.batches(20)
    helpers.train(net, wrapper, data[:10], step=wrapper.update_params)
    saved = copy.deepcopy(wrapper.state_dict())

    resumed_net = helpers.make_net(seed=5)
    resumed_net.load_state_dict(net.state_dict())
    resumed = build_from_config(resumed_net, **how)
    resumed.load_state_dict(saved)
    assert [g['weight_decay'] for g in resumed.optimizer.param_groups] == [
        g['weight_decay'] for g in wrapper.optimizer.param_groups]
    for anchor, resumed_anchor in zip(get_anchors(wrapper).values(),
                                      get_anchors(resumed).values()):
        assert torch.equal(anchor, resumed_anchor)
    helpers.train(net, wrapper, data[10:], step=wrapper.update_params)
    helpers.train(resumed_net, resumed, data[10:],
                  step=resumed.update_params)
    helpers.assert_same_params(net, resumed_net, rtol=0, atol=0)


def test_plain_optimizer_checkpoint_gives_lambda(helpers):
    net = helpers.make_net()
    plain = torch.optim.AdamW(net.parameters(), lr=0.01, weight_decay=0.3)
    wrapper = SPDOptimWrapper(
        torch.optim.AdamW(net.parameters(), lr=0.01, weight_decay=0.0))
    wrapper.load_state_dict(plain.state_dict())
    assert wrapper.optimizer.param_groups[0]['weight_decay'] == 0.3
    # A checkpoint of an mmspd 0.1 wrapper kept the strength aside.
    legacy = plain.state_dict()
    legacy['param_groups'][0].update(weight_decay=0.0, spd_weight_decay=0.2)
    wrapper.load_state_dict(legacy)
    assert wrapper.optimizer.param_groups[0]['weight_decay'] == 0.2


def test_accumulation_and_clipping_match_optim_wrapper(helpers):
    net, spd_net = helpers.make_net(), helpers.make_net()
    clip = {'max_norm': 0.05}
    wrapper = SPDOptimWrapper(
        torch.optim.Adam(helpers.split_groups(net), lr=0.02),
        accumulative_counts=2, clip_grad=dict(clip))
    reference = OptimWrapper(
        AdamSPD(helpers.split_groups(spd_net), lr=0.02),
        accumulative_counts=2, clip_grad=dict(clip))
    data = helpers.batches(20)
    helpers.train(net, wrapper, data, step=wrapper.update_params)
    helpers.train(spd_net, reference, data, step=reference.update_params)
    helpers.assert_same_params(net, spd_net, rtol=1e-9, atol=1e-11)
    # SPD ran at the 10 real steps only.
    assert wrapper.optimizer.state[net.fc1.weight]['step'] == 10


def test_deepcopy_keeps_spd(helpers):
    net = helpers.make_net()
    wrapper = build_from_config(net)
    data = helpers.batches(10)
    helpers.train(net, wrapper, data[:5], step=wrapper.update_params)
    net_copy, wrapper_copy = copy.deepcopy((net, wrapper))
    helpers.train(net, wrapper, data[5:], step=wrapper.update_params)
    helpers.train(net_copy, wrapper_copy, data[5:],
                  step=wrapper_copy.update_params)
    helpers.assert_same_params(net, net_copy, rtol=0, atol=0)


def test_amp_wrapper_on_cpu_skips_overflow_steps(helpers):
    net, plain_net = helpers.make_net(), helpers.make_net()
    amp = AmpSPDOptimWrapper(
        torch.optim.Adam(helpers.split_groups(net), lr=0.02),
        loss_scale={'init_scale': 2.0**10})
    plain = SPDOptimWrapper(
        torch.optim.Adam(helpers.split_groups(plain_net), lr=0.02))
    assert isinstance(amp.loss_scaler, torch.amp.GradScaler)
    data = helpers.batches(12)
    helpers.train(net, amp, data[:6], step=amp.update_params)
    helpers.train(plain_net, plain, data[:6], step=plain.update_params)
    # Scaling by a power of two is exact: SPD saw the true gradients.
    helpers.assert_same_params(net, plain_net, rtol=1e-12, atol=1e-14)

    weights = {k: v.detach().clone() for k, v in net.named_parameters()}
    anchors = [a.clone() for a in get_anchors(amp).values()]
    stats = amp.spd_statistics()
    scale = amp.loss_scaler.get_scale()
    loss = helpers.loss_fn(net, data[6]) * float('inf')
    amp.update_params(loss)
    assert amp.loss_scaler.get_scale() < scale
    for key, value in net.named_parameters():
        assert torch.equal(value, weights[key]), key
    for before, after in zip(anchors, get_anchors(amp).values()):
        assert torch.equal(before, after)
    for key, value in amp.spd_statistics().items():
        assert torch.equal(value, stats[key]), key
    assert amp.optimizer.state[net.fc1.weight]['step'] == 6

    helpers.train(net, amp, data[7:], step=amp.update_params)
    helpers.train(plain_net, plain, data[7:], step=plain.update_params)
    helpers.assert_same_params(net, plain_net, rtol=1e-12, atol=1e-14)


def test_amp_overflow_on_first_step_takes_no_anchor(helpers):
    net = helpers.make_net()
    amp = AmpSPDOptimWrapper(
        torch.optim.SGD(net.parameters(), lr=0.1, weight_decay=0.2))
    amp.update_params(helpers.loss_fn(net, helpers.batches(1)[0]) *
                      float('nan'))
    assert get_anchors(amp) == {}
    assert amp.spd_statistics() == {}


def test_zero_anchor_mode_keeps_no_copy(helpers):
    net = helpers.make_net()
    wrapper = SPDOptimWrapper(
        torch.optim.SGD(net.parameters(), lr=0.1, weight_decay=0.2),
        anchor='zero')
    helpers.train(net, wrapper, helpers.batches(3), step=wrapper.update_params)
    assert get_anchors(wrapper) == {}
    assert 'anchor' not in wrapper.optimizer.state[net.fc1.weight]


def test_meta_device_step():
    param = torch.nn.Parameter(torch.empty(4, 3, device='meta'))
    param.grad = torch.empty_like(param)
    wrapper = SPDOptimWrapper(
        torch.optim.AdamW([param], lr=0.1, weight_decay=0.2, foreach=True))
    wrapper.step()
    wrapper.step()
    assert get_anchors(wrapper)[param].device.type == 'meta'


def test_rejects_bad_settings(helpers):
    net = helpers.make_net()
    with pytest.raises(ValueError, match="anchor mode: 'first'"):
        SPDOptimWrapper(torch.optim.SGD(net.parameters(), lr=0.1),
                        anchor='first')
    with pytest.raises(ValueError, match=r'weight_decay.*-0\.1'):
        SPDOptimWrapper(torch.optim.SGD([
            {'params': net.fc1.parameters(), 'weight_decay': -0.1}
        ], lr=0.1))
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    SPDOptimWrapper(optimizer)
    with pytest.raises(ValueError, match='already attached'):
        SPDOptimWrapper(optimizer)
    with pytest.raises(TypeError, match='AdamSPD already ties'):
        SPDOptimWrapper(AdamSPD(net.parameters(), weight_decay=0.5))
    # FSDP would run the rule per flat shard and rank, not per layer.
    with pytest.raises(ValueError, match='use_fsdp=True.*not shard-aware'):
        AmpSPDOptimWrapper(torch.optim.SGD(net.parameters(), lr=0.1),
                           use_fsdp=True)


def test_reset_anchors(helpers):
    net = helpers.make_net()
    wrapper = SPDOptimWrapper(
        torch.optim.AdamW(net.parameters(), lr=0.02, weight_decay=0.5))
    wrapper.reset_anchors()  # before any step: nothing to re-take yet
    data = helpers.batches(6)
    helpers.train(net, wrapper, data[:3], step=wrapper.update_params)
    wrapper.reset_anchors()
    anchors = get_anchors(wrapper)
    assert anchors
    for param, anchor in anchors.items():
        assert torch.equal(param, anchor)
    helpers.train(net, wrapper, data[3:], step=wrapper.update_params)
