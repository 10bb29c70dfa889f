"""SPD attached to torch optimizers in the settings a PyTorch user reaches:
``maximize``, copies of the optimizer, optimizers without ``weight_decay``,
groups left to the optimizer's own decay, sharded parameters, lambda > 1.

These tests need torch alone.
"""
from __future__ import annotations

import copy
import io
import pickle
import warnings

import pytest
import torch

from mmspd.optim import (
    AdamSPD,
    applies_spd,
    attach_spd,
    get_anchors,
    spd_statistics,
)


def _net(device, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(),
                               torch.nn.Linear(6, 2)).to(device,
                                                         torch.float64)


def _data(device, steps, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return [(torch.randn(8, 4, generator=gen, dtype=torch.float64).to(device),
             torch.randn(8, 2, generator=gen, dtype=torch.float64).to(device))
            for _ in range(steps)]


def _loss(net, batch):
    return torch.nn.functional.mse_loss(net(batch[0]), batch[1])


def _train(net, optimizer, data, sign=1.0):
    for batch in data:
        optimizer.zero_grad()
        (sign * _loss(net, batch)).backward()
        optimizer.step()


# ---------------------------------------------------------------------------
# maximize=True


@pytest.mark.parametrize('foreach', [None, False])
@pytest.mark.parametrize('inner', ['SGD', 'AdamW'])
def test_maximize_is_descent_on_the_negated_loss(inner, foreach, device):
    # maximize=True on -loss takes exactly the steps of maximize=False on
    # loss; so must SPD, whose c is measured along the direction the
    # optimizer moves.
    data = _data(device, 8)
    kwargs = {'lr': 0.05, 'weight_decay': 0.8,
              'foreach': foreach is not False}
    if inner == 'SGD':
        kwargs['momentum'] = 0.9
    runs = []
    for maximize in (False, True):
        net = _net(device)
        optimizer = getattr(torch.optim, inner)(
            net.parameters(), maximize=maximize, **kwargs)
        attach_spd(optimizer, foreach=foreach)
        _train(net, optimizer, data, sign=-1.0 if maximize else 1.0)
        runs.append((net, spd_statistics(optimizer)))
    (descent, stats), (ascent, ascent_stats) = runs
    for a, b in zip(descent.parameters(), ascent.parameters()):
        torch.testing.assert_close(b, a, rtol=0, atol=0)
    assert 0 < float(stats['selected']) < 1
    assert torch.equal(ascent_stats['selected'], stats['selected'])


# ---------------------------------------------------------------------------
# Copies


def _copied(how, objects):
    if how == 'deepcopy':
        return copy.deepcopy(objects)
    if how == 'pickle':
        return pickle.loads(pickle.dumps(objects))
    buffer = io.BytesIO()
    torch.save(objects, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


@pytest.mark.parametrize('foreach', [None, False])
@pytest.mark.parametrize('how', ['deepcopy', 'pickle', 'torch.save'])
def test_a_copy_of_the_optimizer_applies_spd(how, foreach, device):
    # torch's Optimizer.__getstate__ drops hooks: a copy that kept only the
    # groups would step with lambda (1.0) as AdamW's own decay.
    data = _data(device, 8)
    net = _net(device)
    optimizer = torch.optim.AdamW(net.parameters(), lr=0.05,
                                  weight_decay=1.0)
    attach_spd(optimizer, foreach=foreach)
    _train(net, optimizer, data[:3])
    net_copy, optimizer_copy = _copied(how, (net, optimizer))
    assert applies_spd(optimizer_copy)
    assert [g['weight_decay'] for g in optimizer_copy.param_groups] == [1.0]
    anchors = get_anchors(optimizer)
    copied_anchors = get_anchors(optimizer_copy)
    for param, param_copy in zip(net.parameters(), net_copy.parameters()):
        assert torch.equal(copied_anchors[param_copy], anchors[param])
        assert copied_anchors[param_copy].data_ptr() != anchors[
            param].data_ptr()
    _train(net, optimizer, data[3:])
    _train(net_copy, optimizer_copy, data[3:])
    for a, b in zip(net.parameters(), net_copy.parameters()):
        torch.testing.assert_close(b, a, rtol=0, atol=0)
    for key, value in spd_statistics(optimizer).items():
        torch.testing.assert_close(spd_statistics(optimizer_copy)[key],
                                   value, equal_nan=True)


def test_an_optimizer_pickled_by_mmspd_0_3_0_loads():
    # mmspd 0.3.0 kept the rebuild function in mmspd.optim.attach, and a
    # pickle names the function by its module.
    net = _net('cpu')
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, weight_decay=0.5)
    attach_spd(optimizer)
    _train(net, optimizer, _data('cpu', 2))
    here = b'mmspd.optim._optimizer_spd\n_rebuild_with_spd\n'
    then = b'mmspd.optim.attach\n_rebuild_with_spd\n'
    data = pickle.dumps((net, optimizer), protocol=2)  # text GLOBALs
    assert here in data
    net_copy, optimizer_copy = pickle.loads(data.replace(here, then))
    assert applies_spd(optimizer_copy)
    for param, param_copy in zip(net.parameters(), net_copy.parameters()):
        assert torch.equal(get_anchors(optimizer_copy)[param_copy],
                           get_anchors(optimizer)[param])


def test_a_copy_keeps_the_attachment_settings():
    net = _net('cpu')
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, weight_decay=0.5)
    spd = attach_spd(optimizer, anchor='zero', foreach=False)
    spd_copy = copy.deepcopy(spd)
    assert spd_copy.optimizer is not optimizer
    assert applies_spd(spd_copy.optimizer)
    assert (spd_copy.anchor, spd_copy.foreach) == ('zero', False)
    spd.detach()
    with pytest.raises(TypeError, match='detached'):
        copy.deepcopy(spd)
    # A detached optimizer copies as a plain one.
    assert not applies_spd(copy.deepcopy(optimizer))


# ---------------------------------------------------------------------------
# Optimizers without weight_decay


def test_optimizer_without_weight_decay_needs_a_strength(device):
    net = _net(device)
    optimizer = torch.optim.Rprop(net.parameters(), lr=0.01)
    with pytest.raises(ValueError, match="Rprop param group 0 has no "
                       "'weight_decay'.*param_groups\\[0\\]"):
        attach_spd(optimizer)
    assert not applies_spd(optimizer)
    # The documented way: give each group its strength.
    optimizer.param_groups[0]['weight_decay'] = 0.7
    attach_spd(optimizer)
    plain_net = _net(device)
    plain = torch.optim.Rprop(plain_net.parameters(), lr=0.01)
    selected = 0.0
    for batch in _data(device, 6):
        _train(net, optimizer, [batch])
        _train(plain_net, plain, [batch])
        selected += float(spd_statistics(optimizer)['selected'])
    assert selected > 0
    assert any(not torch.equal(a, b) for a, b in zip(
        net.parameters(), plain_net.parameters()))
    assert optimizer.param_groups[0]['weight_decay'] == 0.7
    # A group added later without a strength stops the step, unchanged.
    extra = torch.nn.Parameter(torch.ones(3, device=device,
                                          dtype=torch.float64))
    optimizer.add_param_group({'params': [extra]})
    extra.grad = torch.ones_like(extra)
    before = [p.detach().clone() for p in net.parameters()]
    with pytest.raises(ValueError, match="group 1 has no 'weight_decay'"):
        optimizer.step()
    for a, b in zip(before, net.parameters()):
        assert torch.equal(a, b)


# ---------------------------------------------------------------------------
# Groups left to the optimizer's own decay (spd=False)


def _head_and_backbone(net, head, lam=1.0, decay=0.05):
    return [{'params': list(net[0].parameters()), 'weight_decay': lam},
            {'params': list(net[2].parameters()), 'weight_decay': decay,
             **head}]


@pytest.mark.parametrize('foreach', [None, False])
@pytest.mark.parametrize('inner', ['SGD', 'AdamW'])
def test_group_with_spd_false_gets_the_optimizers_own_decay(
        inner, foreach, device, close_tol):
    data = _data(device, 10)
    kwargs = {'lr': 0.05, 'foreach': foreach is not False}
    if inner == 'SGD':
        kwargs['momentum'] = 0.9
    make = getattr(torch.optim, inner)
    net = _net(device)
    optimizer = make(_head_and_backbone(net, {'spd': False}), **kwargs)
    attach_spd(optimizer, foreach=foreach)
    # The same as two optimizers: SPD on the backbone, and the plain
    # optimizer with its own weight decay on the head.
    split = _net(device)
    backbone = make(_head_and_backbone(split, {})[:1], **kwargs)
    attach_spd(backbone, foreach=foreach)
    head = make(_head_and_backbone(split, {})[1:], **kwargs)
    for batch in data:
        for opts, model in (((optimizer, ), net), ((backbone, head), split)):
            for opt in opts:
                opt.zero_grad()
            _loss(model, batch).backward()
            for opt in opts:
                opt.step()
    for a, b in zip(net.parameters(), split.parameters()):
        torch.testing.assert_close(a, b, **close_tol(torch.float64))
    assert set(get_anchors(optimizer)) == set(net[0].parameters())
    assert optimizer.param_groups[1]['weight_decay'] == 0.05
    # Without the key the head gets SPD with lambda 0.05 instead.
    other = _net(device)
    spd_head = make(_head_and_backbone(other, {}), **kwargs)
    attach_spd(spd_head, foreach=foreach)
    _train(other, spd_head, data)
    assert not torch.allclose(other[2].weight, net[2].weight)


def test_spd_flag_must_be_a_bool():
    param = torch.nn.Parameter(torch.zeros(3))
    optimizer = torch.optim.SGD([{'params': [param], 'spd': 'no'}], lr=0.1)
    with pytest.raises(ValueError, match="Invalid 'spd' value: 'no'"):
        attach_spd(optimizer)


# ---------------------------------------------------------------------------
# Sharded parameters and lambda > 1


def test_sharded_parameters_are_refused():
    flat_param = pytest.importorskip(
        'torch.distributed.fsdp._flat_param',
        reason='this torch build has no FSDP').FlatParameter
    param = flat_param(torch.zeros(6), requires_grad=True)
    with pytest.raises(ValueError, match='sharded parameter.*FSDP'):
        attach_spd(torch.optim.SGD([param], lr=0.1, weight_decay=1.0))
    with pytest.raises(ValueError, match='sharded parameter'):
        AdamSPD([param], weight_decay=1.0)


def test_strength_above_one_warns_what_it_does():
    param = torch.nn.Parameter(torch.ones(3))
    with pytest.warns(UserWarning, match=r'\(weight_decay\) 1.5 > 1.*past '
                      'its anchor'):
        attach_spd(torch.optim.SGD([param], lr=0.1, weight_decay=1.5))
    with pytest.warns(UserWarning, match=r'AdamSPD.* 2.0 > 1'):
        AdamSPD([param], weight_decay=2.0)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        optimizer = torch.optim.SGD([param], lr=0.1, weight_decay=1.0)
        attach_spd(optimizer)
        adam_spd = AdamSPD([param], weight_decay=1.0)
        # Own decay is not lambda: no warning for spd=False groups.
        AdamSPD([{'params': [param], 'spd': False}], weight_decay=5.0)
    # A schedule that raises lambda above 1 warns at that step, once.
    for opt in (optimizer, adam_spd):
        opt.param_groups[0]['weight_decay'] = 1.2
        param.grad = torch.ones(3)
        with pytest.warns(UserWarning, match='1.2 > 1'):
            opt.step()
        with warnings.catch_warnings():
            warnings.simplefilter('error')
            opt.step()
