import copy
import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import mmspd.optim._adam_math as adam_impl
import mmspd.optim._segments as segments
from mmspd.optim import (
    AdamL2SP,
    AdamSPD,
    SPDStatistics,
    SPDWorkspace,
    get_anchors,
    spd_factor,
    spd_post,
    spd_pre,
)


def reference_groups(net, helpers):
    """The groups of ``helpers.split_groups`` in the authors' format."""
    groups = helpers.split_groups(net)
    for group in groups:
        if group.pop('anchor', 'init') == 'zero':
            group['pre'] = None
        else:
            group['pre'] = [p.detach().clone() for p in group['params']]
    return groups


@pytest.mark.parametrize('amsgrad', [False, True])
@pytest.mark.parametrize('foreach', [True, False])
def test_matches_authors_algorithm(helpers, reference_cls, foreach, amsgrad):
    net, ref_net = helpers.make_net(), helpers.make_net()
    optimizer = AdamSPD(helpers.split_groups(net), lr=0.02, amsgrad=amsgrad,
                        foreach=foreach)
    reference = reference_cls(reference_groups(ref_net, helpers), lr=0.02,
                              amsgrad=amsgrad)
    data = helpers.batches(60)
    helpers.train(net, optimizer, data)
    helpers.train(ref_net, reference, data)
    helpers.assert_same_params(net, ref_net, rtol=1e-9, atol=1e-11)
    # The projection branch ran often, but not always.
    assert 0.1 < reference.selected / reference.decisions < 0.9
    # Parameters without gradients are left alone and get no state.
    assert net.unused.weight not in optimizer.state
    assert torch.equal(net.unused.weight, helpers.make_net().unused.weight)


def test_matches_authors_algorithm_float32(helpers, reference_cls):
    net = helpers.make_net(torch.float32)
    ref_net = helpers.make_net(torch.float32)
    optimizer = AdamSPD(helpers.split_groups(net), lr=0.01)
    reference = reference_cls(reference_groups(ref_net, helpers), lr=0.01)
    data = helpers.batches(50, torch.float32)
    helpers.train(net, optimizer, data)
    helpers.train(ref_net, reference, data)
    helpers.assert_same_params(net, ref_net, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('foreach', [True, False])
def test_authors_pre_format(helpers, foreach):
    net, pre_net = helpers.make_net(), helpers.make_net()
    optimizer = AdamSPD(helpers.split_groups(net), lr=0.02, foreach=foreach)
    groups = reference_groups(pre_net, helpers)
    pre_opt = AdamSPD(groups, lr=0.02, foreach=foreach)
    data = helpers.batches(20)
    helpers.train(net, optimizer, data)
    helpers.train(pre_net, pre_opt, data)
    helpers.assert_same_params(net, pre_net, rtol=1e-12, atol=1e-14)
    # The given anchors are the ones kept; 'pre': None means zero anchors.
    anchors = get_anchors(pre_opt)
    assert torch.equal(anchors[pre_net.conv.weight], groups[0]['pre'][0])
    assert pre_net.fc2.weight not in anchors
    assert 'pre' not in pre_opt.param_groups[0]


@pytest.mark.parametrize('fused, amsgrad, batch', [
    (True, False, None),
    (True, True, None),
    (False, False, None),
    (False, True, 600),
])
def test_multi_tensor_equals_per_tensor(helpers, monkeypatch, fused,
                                        amsgrad, batch):
    if not fused:  # the non-CPU path: Adam from torch._foreach_* ops
        monkeypatch.setattr(adam_impl, '_FUSED_DEVICES', ())
    if batch:  # scratch memory smaller than the model: several batches
        monkeypatch.setattr(segments, '_BATCH_ELEMENTS', batch)
        monkeypatch.setattr(segments, '_plans', {})
    net, loop_net = helpers.make_net(), helpers.make_net()
    optimizer = AdamSPD(helpers.split_groups(net), lr=0.02, amsgrad=amsgrad)
    loop = AdamSPD(helpers.split_groups(loop_net), lr=0.02, amsgrad=amsgrad,
                   foreach=False)
    data = helpers.batches(30)
    helpers.train(net, optimizer, data)
    helpers.train(loop_net, loop, data)
    helpers.assert_same_params(net, loop_net, rtol=1e-12, atol=1e-14)
    for key, value in optimizer.spd_statistics().items():
        torch.testing.assert_close(value, loop.spd_statistics()[key])


def _split_case(dtype):
    """Tensors larger than a 512-element batch, in several layouts."""
    gen = torch.Generator().manual_seed(3)

    def rand(*shape):
        return torch.randn(shape, generator=gen, dtype=torch.float64)

    params = [rand(40, 30), rand(300, 7).t(), rand(9, 400)[:, ::3],
              rand(1, 900), rand(5), rand(2000), rand()]
    anchors = [p + 0.1 * rand(*p.shape) for p in params]
    grads = [rand(*p.shape) for p in params]
    return [[t.to(dtype) for t in ts] for ts in (params, anchors, grads)]


@pytest.mark.parametrize('dtype', [torch.float64, torch.float16])
def test_tensors_larger_than_a_batch_are_split(monkeypatch, dtype):
    monkeypatch.setattr(segments, '_BATCH_ELEMENTS', 512)
    monkeypatch.setattr(segments, '_plans', {})
    params, anchors, grads = _split_case(dtype)
    assert segments._plan(params).split
    results = []
    for workspace in (SPDWorkspace(), None):
        # clone keeps the transposed layout; the strided one is rebuilt.
        weights = [p.clone() for p in params]
        weights[2] = params[2].new_zeros(9, 400)[:, ::3].copy_(params[2])
        stats = SPDStatistics()
        stats.begin()
        ctx = spd_pre(weights, grads, anchors, workspace)
        for weight, grad in zip(weights, grads):
            weight.sub_(0.05 * grad.sign())
        spd_post(weights, anchors, 0.7, ctx, stats, workspace)
        stats.finish()
        results.append((ctx, weights, stats.summary()))
    (ctx, weights, stats), (ref_ctx, ref_weights, ref_stats) = results
    # float16 is reduced in float32, in another order than per tensor.
    tol = ({'rtol': 1e-5, 'atol': 1e-6} if dtype == torch.float16 else {
        'rtol': 1e-12, 'atol': 1e-14})
    torch.testing.assert_close(ctx.c, ref_ctx.c, **tol)
    torch.testing.assert_close(ctx.prev, ref_ctx.prev, **tol)
    for weight, ref in zip(weights, ref_weights):
        # float16 weights: the dtype's own tolerance.
        torch.testing.assert_close(
            weight, ref, **({} if dtype == torch.float16 else tol))
    assert 0 < float(stats['selected']) < 1
    for key, value in ref_stats.items():
        torch.testing.assert_close(stats[key], value, **tol)


def test_state_holds_only_documented_keys(helpers):
    net = helpers.make_net()
    optimizer = AdamSPD(helpers.split_groups(net), lr=0.01, amsgrad=True)
    helpers.train(net, optimizer, helpers.batches(2))
    assert set(optimizer.state[net.conv.weight]) == {
        'step', 'exp_avg', 'exp_avg_sq', 'max_exp_avg_sq', 'anchor'
    }
    # Zero anchors keep no copy.
    assert set(optimizer.state[net.fc2.weight]) == {
        'step', 'exp_avg', 'exp_avg_sq', 'max_exp_avg_sq'
    }


def test_anchor_taken_at_first_step_not_at_construction(helpers):
    net = helpers.make_net()
    optimizer = AdamSPD(net.parameters(), lr=0.01, weight_decay=0.5)
    assert get_anchors(optimizer) == {}
    # What Runner.train does after building the optimizer: load weights.
    with torch.no_grad():
        for param in net.parameters():
            param.add_(1.0)
    loaded = copy.deepcopy(net)
    helpers.train(net, optimizer, helpers.batches(3))
    anchors = get_anchors(optimizer)
    for (name, param), start in zip(net.named_parameters(),
                                    loaded.parameters()):
        if name.startswith('unused'):
            assert param not in anchors
            continue
        assert torch.equal(anchors[param], start), name
        assert not torch.equal(param, start), name


def test_reset_anchors(helpers):
    net = helpers.make_net()
    optimizer = AdamSPD(net.parameters(), lr=0.01, weight_decay=0.5)
    helpers.train(net, optimizer, helpers.batches(3))
    optimizer.reset_anchors()
    for param, anchor in get_anchors(optimizer).items():
        assert torch.equal(param, anchor)
        assert anchor.data_ptr() != param.data_ptr()


@pytest.mark.parametrize('foreach', [True, False])
def test_state_dict_round_trip(helpers, foreach):
    net = helpers.make_net()
    optimizer = AdamSPD(helpers.split_groups(net), lr=0.02, amsgrad=True,
                        foreach=foreach)
    data = helpers.batches(20)
    helpers.train(net, optimizer, data[:10])

    resumed_net = helpers.make_net(seed=3)
    resumed_net.load_state_dict(net.state_dict())
    resumed = AdamSPD(helpers.split_groups(resumed_net), lr=0.5,
                      foreach=foreach)
    resumed.load_state_dict(copy.deepcopy(optimizer.state_dict()))
    # Anchors come back from the state dict, not from the current weights.
    for (param, anchor), resumed_param in zip(
            get_anchors(optimizer).items(), resumed_net.parameters()):
        resumed_anchor = get_anchors(resumed)[resumed_param]
        assert torch.equal(resumed_anchor, anchor)
        assert not torch.equal(resumed_anchor, resumed_param)
    helpers.train(net, optimizer, data[10:])
    helpers.train(resumed_net, resumed, data[10:])
    helpers.assert_same_params(net, resumed_net, rtol=0, atol=0)


def test_loaded_step_counters_are_float32_cpu_tensors(helpers):
    # mmengine resumes with map_location='cuda', which moves the counters
    # to the GPU; this machine can only vary their dtype, which the same
    # normalisation handles.
    net = helpers.make_net()
    optimizer = AdamSPD(net.parameters(), lr=0.02)
    data = helpers.batches(4)
    helpers.train(net, optimizer, data[:2])
    state_dict = copy.deepcopy(optimizer.state_dict())
    for param_state in state_dict['state'].values():
        param_state['step'] = param_state['step'].double()
    resumed = AdamSPD(net.parameters(), lr=0.02)
    resumed.load_state_dict(state_dict)
    steps = [state['step'] for state in resumed.state.values()]
    assert steps and all(
        step.device.type == 'cpu' and step.dtype == torch.float32
        and step.item() == 2 for step in steps)
    helpers.train(net, resumed, data[2:])


def test_deepcopy(helpers):
    net = helpers.make_net()
    optimizer = AdamSPD(helpers.split_groups(net), lr=0.02)
    data = helpers.batches(10)
    helpers.train(net, optimizer, data[:5])
    net_copy, optimizer_copy = copy.deepcopy((net, optimizer))
    helpers.train(net, optimizer, data[5:])
    helpers.train(net_copy, optimizer_copy, data[5:])
    helpers.assert_same_params(net, net_copy, rtol=0, atol=0)
    assert optimizer_copy.spd_statistics().keys() == {
        'selected', 'ratio', 'deviation', 'rel_deviation'
    }


def test_old_state_gets_new_group_keys(helpers):
    net = helpers.make_net()
    optimizer = AdamSPD(net.parameters(), lr=0.01, weight_decay=0.1)
    state = optimizer.__getstate__()
    for key in ('amsgrad', 'anchor', 'foreach', 'spd'):
        del state['param_groups'][0][key]
    del state['defaults']['spd']
    optimizer.__setstate__(state)
    assert optimizer.param_groups[0]['anchor'] == 'init'
    assert optimizer.param_groups[0]['spd'] is True
    assert optimizer.defaults['spd'] is True
    helpers.train(net, optimizer, helpers.batches(2))


@pytest.mark.parametrize('foreach', [True, False])
def test_step_on_meta_device(foreach):
    # No host synchronisation: data-dependent Python control flow would
    # fail on tensors without data.
    params = [torch.nn.Parameter(torch.empty(5, 3, device='meta')),
              torch.nn.Parameter(torch.empty(7, device='meta'))]
    for param in params:
        param.grad = torch.empty_like(param)
    optimizer = AdamSPD([{'params': params[:1]},
                         {'params': params[1:], 'anchor': 'zero'}],
                        lr=0.01, weight_decay=0.5, amsgrad=True,
                        foreach=foreach)
    optimizer.step()
    optimizer.step()
    assert optimizer.state[params[0]]['anchor'].device.type == 'meta'
    assert optimizer.spd_statistics()['selected'].device.type == 'meta'


def test_ratio_is_zero_on_the_anchor():
    cur = torch.tensor([0.0, 2.0, 2.0, 1.0])
    prev = torch.tensor([0.0, 1.0, 1.0, 3.0])
    c = torch.tensor([-1.0, -1.0, 1.0, -1.0])
    scale, ratio, selected = spd_factor(c, prev, cur, 0.5)
    torch.testing.assert_close(ratio, torch.tensor([0.0, 0.5, 0.5, 0.0]))
    torch.testing.assert_close(selected, torch.tensor([1.0, 1.0, 0.0, 1.0]))
    torch.testing.assert_close(scale, torch.tensor([0.0, 0.25, 0.0, 0.0]))


def test_statistics_describe_the_step(helpers):
    net = helpers.make_net()
    optimizer = AdamSPD(helpers.split_groups(net), lr=0.02, foreach=False)
    assert optimizer.spd_statistics() == {}
    helpers.train(net, optimizer, helpers.batches(5))
    stats = optimizer.spd_statistics()
    # conv (1 tensor), fc1 (2) and fc2 (2) are processed; norm has lam 0.
    processed = [net.conv.weight, net.fc1.weight,
                 net.fc1.bias, net.fc2.weight, net.fc2.bias]
    anchors = get_anchors(optimizer)
    deviation = math.sqrt(sum(
        float((p.detach() - anchors.get(p, 0)).square().sum())
        for p in processed))
    anchor_norm = math.sqrt(sum(
        float(anchors[p].square().sum()) for p in processed[:3]))
    assert float(stats['deviation']) == pytest.approx(deviation)
    assert float(stats['rel_deviation']) == pytest.approx(
        deviation / anchor_norm)
    assert float(stats['selected']) * 5 == pytest.approx(
        round(float(stats['selected']) * 5))
    assert 0 <= float(stats['ratio']) <= 1


@pytest.mark.parametrize('kwargs, match', [
    ({'lr': -0.1}, 'learning rate: -0.1'),
    ({'weight_decay': -1.0}, 'weight_decay.*-1.0'),
    ({'betas': (1.0, 0.999)}, 'beta parameter at index 0: 1.0'),
    ({'betas': (0.9, -0.1)}, 'beta parameter at index 1: -0.1'),
    ({'eps': -1e-8}, 'epsilon value: -1e-08'),
    ({'anchor': 'pretrained'}, "anchor mode: 'pretrained'"),
])
def test_rejects_bad_hyper_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AdamSPD([torch.nn.Parameter(torch.zeros(2))], **kwargs)


def test_rejects_bad_group_values_and_anchors():
    param = torch.nn.Parameter(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="anchor mode: 'both'"):
        AdamSPD([{'params': [param], 'anchor': 'both'}])
    with pytest.raises(ValueError, match=r'\(3, 2\) does not match .*\(2, '
                       r'3\)'):
        AdamSPD([{'params': [param], 'pre': [torch.zeros(3, 2)]}])
    with pytest.raises(ValueError, match="'pre' holds 2 anchors for 1"):
        AdamSPD([{'params': [param], 'pre': [torch.zeros(2, 3)] * 2}])
    optimizer = AdamSPD([param], weight_decay=0.1)
    optimizer.state[param]['anchor'] = torch.zeros(6)
    param.grad = torch.ones_like(param)
    with pytest.raises(ValueError, match=r'\(6,\) does not match'):
        optimizer.step()


class _OpCounter(TorchDispatchMode):

    def __init__(self):
        super().__init__()
        self.ops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func._schema.is_mutable or not func.is_view:  # views: no kernel
            self.ops += 1
        return func(*args, **(kwargs or {}))


def test_ops_per_step_do_not_grow_with_tensor_count():
    counts = []
    for num_tensors in (8, 64):
        params = [torch.nn.Parameter(torch.randn(4000 // num_tensors))
                  for _ in range(num_tensors)]
        for param in params:
            param.grad = torch.randn_like(param)
        optimizer = AdamSPD(
            [{'params': params[::2], 'weight_decay': 0.5},
             {'params': params[1::2], 'weight_decay': 0.1}], lr=0.01)
        optimizer.step()
        counter = _OpCounter()
        with counter:
            optimizer.step()
        counts.append(counter.ops)
    assert counts[0] == counts[1]


def test_bfloat16_parameters(helpers):
    net = helpers.make_net(torch.float32)
    low = helpers.make_net(torch.float32).to(torch.bfloat16)
    data = helpers.batches(5, torch.float32)
    optimizer = AdamSPD(helpers.split_groups(net), lr=0.01)
    low_optimizer = AdamSPD(helpers.split_groups(low), lr=0.01)
    helpers.train(net, optimizer, data)
    helpers.train(low, low_optimizer, [(x.bfloat16(), y.bfloat16())
                                       for x, y in data])
    for a, b in zip(net.parameters(), low.parameters()):
        assert b.dtype == torch.bfloat16
        torch.testing.assert_close(b.float(), a, rtol=0.05, atol=0.02)
    assert low_optimizer.spd_statistics()['selected'].dtype == torch.float64


@pytest.mark.parametrize('foreach', [None, False])
def test_group_with_spd_false_steps_as_adamw(helpers, foreach):
    # A pre-trained backbone with SPD, and a new head with AdamW's own
    # decoupled decay: the same as AdamSPD on the backbone beside
    # torch.optim.AdamW on the head.
    def groups(net, head):
        return [{'params': [*net.conv.parameters(), *net.fc1.parameters()],
                 'weight_decay': 1.0},
                {'params': list(net.fc2.parameters()), 'weight_decay': 0.05,
                 **head}]

    net, split = helpers.make_net(), helpers.make_net()
    optimizer = AdamSPD(groups(net, {'spd': False}), lr=0.02,
                        foreach=foreach)
    backbone = AdamSPD(groups(split, {})[:1], lr=0.02, foreach=foreach)
    head = torch.optim.AdamW(groups(split, {})[1:], lr=0.02,
                             foreach=foreach is not False)
    for batch in helpers.batches(20):
        optimizer.zero_grad()
        backbone.zero_grad()
        head.zero_grad()
        helpers.loss_fn(net, batch).backward()
        helpers.loss_fn(split, batch).backward()
        optimizer.step()
        backbone.step()
        head.step()
    helpers.assert_same_params(net, split, rtol=1e-12, atol=1e-14)
    # The head keeps no anchor, and its strength is not lambda.
    assert set(get_anchors(optimizer)) == {
        *net.conv.parameters(), *net.fc1.parameters()}
    stats = optimizer.spd_statistics()
    assert float(stats['selected']) * 3 == pytest.approx(
        round(float(stats['selected']) * 3))
    with pytest.raises(ValueError, match="Invalid 'spd' value: 1"):
        AdamSPD([{'params': [net.conv.weight], 'spd': 1}])


def test_l2sp_refuses_the_spd_key():
    with pytest.raises(ValueError, match="AdamL2SP has no 'spd'"):
        AdamL2SP([{'params': [torch.nn.Parameter(torch.zeros(2))],
                   'spd': False}])
