"""The SPD rule wherever it runs: precision, strengths, schedules, AMP.

These tests need torch alone.
"""
from __future__ import annotations

import copy
import warnings

import pytest
import torch

from mmspd.optim import (
    AdamL2SP,
    AdamSPD,
    SPDWorkspace,
    applies_spd,
    attach_spd,
    get_anchors,
    spd_pre,
    spd_statistics,
)

# ---------------------------------------------------------------------------
# Half precision


def _small_half_tensors(dtype, device):
    """Gradients and deviations of about 1e-4: their products underflow."""
    gen = torch.Generator().manual_seed(0)
    params, anchors, grads = [], [], []
    for _ in range(12):
        anchor = torch.randn(64, generator=gen)
        dev = 1e-4 * torch.randn(64, generator=gen)
        grad = 1e-4 * torch.randn(64, generator=gen)
        params.append((anchor + dev).to(device, dtype))
        anchors.append(anchor.to(device, dtype))
        grads.append(grad.to(device, dtype))
    return params, anchors, grads


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
@pytest.mark.parametrize('multi', [True, False])
def test_half_precision_condition_matches_float32_math(dtype, multi,
                                                       device):
    params, anchors, grads = _small_half_tensors(dtype, device)
    ctx = spd_pre(params, grads, anchors, SPDWorkspace() if multi else None)
    # float32 math on the same stored values.
    expected = torch.stack([
        -(g.float() * (p.float() - a.float())).sum()
        for p, a, g in zip(params, anchors, grads)
    ])
    assert ctx.c.dtype == torch.float32
    assert (expected != 0).all()
    assert torch.equal(ctx.c < 0, expected < 0)
    torch.testing.assert_close(ctx.c, expected, rtol=1e-5, atol=0)
    prev = torch.stack([(p.float() - a.float()).norm()
                        for p, a in zip(params, anchors)])
    torch.testing.assert_close(ctx.prev, prev, rtol=1e-5, atol=0)


@pytest.mark.parametrize('foreach', [None, False])
def test_half_precision_decisions_in_a_step(foreach, device):
    params, anchors, grads = _small_half_tensors(torch.float16, device)
    params = [torch.nn.Parameter(p) for p in params]
    for param, grad in zip(params, grads):
        param.grad = grad
    optimizer = AdamSPD([{'params': params, 'pre': anchors}], lr=1e-6,
                        weight_decay=0.5, foreach=foreach)
    optimizer.step()
    selected = sum(float(-(g.float() * (p.detach().float() - a.float())
                           ).sum() < 0)
                   for p, a, g in zip(_small_half_tensors(
                       torch.float16, device)[0], anchors, grads))
    assert 0 < selected < len(params)
    stats = spd_statistics(optimizer)
    assert float(stats['selected']) == pytest.approx(selected / len(params))


# ---------------------------------------------------------------------------
# Hyper-parameters


@pytest.mark.parametrize('value', [float('inf'), float('nan'), -1.0])
def test_bad_strength_is_refused(value):
    param = torch.nn.Parameter(torch.zeros(3))
    for build in (lambda: AdamSPD([param], weight_decay=value),
                  lambda: AdamL2SP([param], weight_decay=value),
                  lambda: attach_spd(torch.optim.SGD(
                      [param], lr=0.1, weight_decay=value))):
        with pytest.raises(ValueError,
                           match=f'Invalid weight_decay.* {value!r}'):
            build()


@pytest.mark.parametrize('value', ['0.1', None, True])
def test_strength_must_be_a_number(value):
    with pytest.raises(ValueError, match=f'weight_decay value: {value!r}'):
        AdamSPD([torch.nn.Parameter(torch.zeros(3))], weight_decay=value)


@pytest.mark.parametrize('kwargs, match', [
    ({'lr': float('nan')}, 'learning rate: nan'),
    ({'lr': float('inf')}, 'learning rate: inf'),
    ({'eps': float('inf')}, 'epsilon value: inf'),
    ({'betas': (0.9, float('nan'))}, 'index 1: nan'),
    ({'betas': (0.9, )}, r'betas: \(0.9,\)'),
    ({'amsgrad': 'yes'}, "amsgrad: 'yes'"),
    ({'foreach': 'auto'}, "foreach: 'auto'"),
])
def test_bad_hyper_parameters_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AdamSPD([torch.nn.Parameter(torch.zeros(2))], **kwargs)


@pytest.mark.parametrize('make', ['AdamSPD', 'SGD+SPD'])
def test_strength_written_between_steps_is_checked(make):
    param = torch.nn.Parameter(torch.ones(3))
    if make == 'AdamSPD':
        optimizer = AdamSPD([param], lr=0.1, weight_decay=0.1)
    else:
        optimizer = torch.optim.SGD([param], lr=0.1, weight_decay=0.1)
        attach_spd(optimizer)
    param.grad = torch.ones(3)
    optimizer.step()
    optimizer.param_groups[0]['weight_decay'] = float('inf')
    before = param.detach().clone()
    with pytest.raises(ValueError, match='weight_decay.*inf'):
        optimizer.step()
    assert torch.equal(param, before)
    assert optimizer.param_groups[0]['weight_decay'] == float('inf')


# ---------------------------------------------------------------------------
# weight_decay schedules drive the SPD strength


def _schedule_run(make, device, schedule):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(),
                              torch.nn.Linear(6, 2)).to(device,
                                                        torch.float64)
    optimizer = make(net)
    gen = torch.Generator().manual_seed(1)
    for lam in schedule:
        for group in optimizer.param_groups:
            group['weight_decay'] = lam  # what a ParamScheduler does
        x = torch.randn(8, 4, generator=gen, dtype=torch.float64).to(device)
        optimizer.zero_grad()
        net(x).square().mean().backward()
        optimizer.step()
        assert all(g['weight_decay'] == lam for g in optimizer.param_groups)
    return net


@pytest.mark.parametrize('foreach', [None, False])
def test_weight_decay_schedule_drives_spd(foreach, device, close_tol):
    schedule = [0.9, 0.6, 0.3, 0.0, 0.0, 0.5]

    def adam_spd(net):
        return AdamSPD(net.parameters(), lr=0.05, weight_decay=0.9,
                       foreach=foreach)

    def attached_adam(net):
        optimizer = torch.optim.Adam(net.parameters(), lr=0.05,
                                     weight_decay=0.9)
        attach_spd(optimizer, foreach=foreach)
        return optimizer

    def plain_adam(net):
        return torch.optim.Adam(net.parameters(), lr=0.05)

    spd = _schedule_run(adam_spd, device, schedule)
    attached = _schedule_run(attached_adam, device, schedule)
    for a, b in zip(spd.parameters(), attached.parameters()):
        torch.testing.assert_close(a, b, **close_tol(torch.float64))
    # With the strength at 0 throughout, Adam's own decay stays off: the
    # run is plain Adam.
    zero = _schedule_run(attached_adam, device, [0.0] * 4)
    plain = _schedule_run(plain_adam, device, [0.0] * 4)
    for a, b in zip(zero.parameters(), plain.parameters()):
        torch.testing.assert_close(a, b, **close_tol(torch.float64))
    differs = _schedule_run(attached_adam, device, [0.9] * 4)
    assert any(not torch.allclose(a, b) for a, b in zip(
        differs.parameters(), plain.parameters()))


def test_inner_decay_restored_after_a_failed_step():
    param = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.SGD([param], lr=0.1, weight_decay=0.4)
    attach_spd(optimizer)
    param.grad = torch.ones(3)
    optimizer.step()
    assert optimizer.param_groups[0]['weight_decay'] == 0.4
    optimizer.param_groups[0]['lr'] = 'bad'  # the inner step fails
    with pytest.raises(TypeError):
        optimizer.step()
    optimizer.param_groups[0]['lr'] = 0.1
    optimizer.step()
    assert optimizer.param_groups[0]['weight_decay'] == 0.4


def test_inner_decay_restored_as_soon_as_a_step_raises():
    param = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.SGD([param], lr=0.1, weight_decay=0.4)
    attach_spd(optimizer)
    param.grad = torch.ones(3)
    optimizer.param_groups[0]['lr'] = 'bad'  # the inner step fails
    with pytest.raises(TypeError):
        optimizer.step()
    # A checkpoint saved or a scheduler run now sees the strength, not the
    # 0 the inner step ran with.
    assert optimizer.param_groups[0]['weight_decay'] == 0.4
    assert optimizer.state_dict()['param_groups'][0]['weight_decay'] == 0.4


@pytest.mark.parametrize('scheduler_first', [True, False])
def test_torch_lr_scheduler_still_sees_the_step(scheduler_first):
    param = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.SGD([param], lr=0.1, weight_decay=0.4)
    if scheduler_first:
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1, 0.5)
        spd = attach_spd(optimizer)
    else:
        spd = attach_spd(optimizer)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1, 0.5)
    param.grad = torch.ones(3)
    with warnings.catch_warnings():
        # The scheduler warns when it cannot see optimizer.step() run.
        warnings.simplefilter('error')
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]['lr'] == 0.05
    assert applies_spd(optimizer)
    spd.detach()
    assert not applies_spd(optimizer)
    optimizer.step()
    assert optimizer.param_groups[0]['weight_decay'] == 0.4


# ---------------------------------------------------------------------------
# GradScaler with a fused inner optimizer


def _fused_run(device, scaler, data, overflow_at=None, foreach=None):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(),
                              torch.nn.Linear(6, 2)).to(device)
    net.gain = torch.nn.Parameter(torch.tensor(1.0, device=device))
    optimizer = torch.optim.Adam(net.parameters(), lr=0.05,
                                 weight_decay=0.7, fused=True)
    attach_spd(optimizer, foreach=foreach)
    snapshots = {}
    for i, (x, y) in enumerate(data):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(net(x) * net.gain, y)
        if i == overflow_at:
            loss = loss * float('inf')
            snapshots['before'] = (
                [p.detach().clone() for p in net.parameters()],
                {k: v.clone() for k, v in spd_statistics(optimizer).items()})
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        if i == overflow_at:
            snapshots['after'] = (
                [p.detach().clone() for p in net.parameters()],
                spd_statistics(optimizer))
    return net, optimizer, snapshots


@pytest.mark.parametrize('foreach', [None, False])
def test_grad_scaler_with_fused_optimizer(device, foreach):
    gen = torch.Generator().manual_seed(2)
    data = [(torch.randn(8, 4, generator=gen).to(device),
             torch.randn(8, 2, generator=gen).to(device)) for _ in range(8)]
    try:
        scaler = torch.amp.GradScaler(device.type, init_scale=2.0**12)
        _fused_run(device, scaler, data[:1])
    except RuntimeError as error:  # pragma: no cover - depends on the build
        pytest.skip(f'fused Adam with GradScaler unavailable here: {error}')
    scaler = torch.amp.GradScaler(device.type, init_scale=2.0**12)
    scaled, scaled_opt, _ = _fused_run(device, scaler, data,
                                       foreach=foreach)
    plain, plain_opt, _ = _fused_run(device, None, data, foreach=foreach)
    # A power-of-two scale is exact: SPD saw the true gradients' signs and
    # the same updates.
    for a, b in zip(scaled.parameters(), plain.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    for key, value in spd_statistics(plain_opt).items():
        torch.testing.assert_close(spd_statistics(scaled_opt)[key], value,
                                   rtol=1e-6, atol=1e-7)

    # An overflow step changes no weight and no statistic.
    scaler = torch.amp.GradScaler(device.type, init_scale=2.0**12)
    _, optimizer, snaps = _fused_run(device, scaler, data, overflow_at=4,
                                     foreach=foreach)
    for before, after in zip(snaps['before'][0], snaps['after'][0]):
        assert torch.equal(before, after)
    for key, value in snaps['before'][1].items():
        assert torch.equal(snaps['after'][1][key], value), key
    steps = {float(s['step']) for s in optimizer.state.values()}
    assert steps == {7.0}


def test_overflow_in_one_tensor_leaves_the_statistics(device):
    # Only one tensor overflows, so the others have finite gradients and a
    # condition c of their own: only the scaler's flag marks the step as
    # skipped.
    gen = torch.Generator().manual_seed(2)
    data = [(torch.randn(8, 4, generator=gen).to(device),
             torch.randn(8, 2, generator=gen).to(device)) for _ in range(4)]

    def run(overflow_at):
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(),
                                  torch.nn.Linear(6, 2)).to(device)
        optimizer = torch.optim.Adam(net.parameters(), lr=0.05,
                                     weight_decay=0.7, fused=True)
        attach_spd(optimizer)
        scaler = torch.amp.GradScaler(device.type, init_scale=2.0**12)
        stats = []
        for i, (x, y) in enumerate(data):
            optimizer.zero_grad()
            scaler.scale(torch.nn.functional.mse_loss(net(x), y)).backward()
            if i == overflow_at:
                net[2].bias.grad[0] = float('inf')
            scaler.step(optimizer)
            scaler.update()
            stats.append(
                {k: v.clone() for k, v in spd_statistics(optimizer).items()})
        return stats

    try:
        clean = run(None)
    except RuntimeError as error:  # pragma: no cover - depends on the build
        pytest.skip(f'fused Adam with GradScaler unavailable here: {error}')
    # The step before selected tensors with r > 0; a skipped step moves no
    # weight, so its own figures would show r = 0.
    assert clean[1]['ratio'] > 0
    stats = run(2)
    for key, value in stats[1].items():
        assert torch.equal(stats[2][key], value), key


# ---------------------------------------------------------------------------
# Checkpoints of other optimizers


def test_loading_an_adamw_state_warns_what_it_overrides():
    net = torch.nn.Linear(3, 2)
    adamw = torch.optim.AdamW(net.parameters(), lr=0.1, weight_decay=0.01)
    net(torch.ones(1, 3)).sum().backward()
    adamw.step()
    optimizer = AdamSPD(net.parameters(), lr=0.1, weight_decay=0.5)
    with pytest.warns(UserWarning, match=r'weight_decay values 0\.01 '
                      r'replace the strengths 0\.5.*anchors are taken'):
        optimizer.load_state_dict(adamw.state_dict())
    assert optimizer.param_groups[0]['weight_decay'] == 0.01
    # A state of the same optimizer loads silently.
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        optimizer.load_state_dict(copy.deepcopy(optimizer.state_dict()))


def test_legacy_wrapper_state_gives_its_strength():
    # mmspd 0.1 wrappers saved weight_decay=0 and the strength beside it.
    net = torch.nn.Linear(3, 2)
    saved = torch.optim.AdamW(net.parameters(), lr=0.1, weight_decay=0.0)
    state = saved.state_dict()
    state['param_groups'][0]['spd_weight_decay'] = 0.3
    optimizer = AdamSPD(net.parameters(), lr=0.1, weight_decay=0.5)
    with pytest.warns(UserWarning, match='weight_decay values 0.3'):
        optimizer.load_state_dict(copy.deepcopy(state))
    assert optimizer.param_groups[0]['weight_decay'] == 0.3
    attached = torch.optim.AdamW(net.parameters(), lr=0.1)
    attach_spd(attached)
    attached.load_state_dict(copy.deepcopy(state))
    assert attached.param_groups[0]['weight_decay'] == 0.3
    assert 'spd_weight_decay' not in attached.param_groups[0]


# ---------------------------------------------------------------------------
# attach_spd


def test_attach_refuses_what_it_cannot_serve():
    param = torch.nn.Parameter(torch.zeros(2))
    with pytest.raises(TypeError, match='AdamSPD already ties'):
        attach_spd(AdamSPD([param]))
    optimizer = torch.optim.SGD([param], lr=0.1)
    spd = attach_spd(optimizer)
    with pytest.raises(ValueError, match='already attached'):
        attach_spd(optimizer)
    with pytest.raises(ValueError, match="anchor mode: 'first'"):
        attach_spd(torch.optim.SGD([param], lr=0.1), anchor='first')
    assert applies_spd(optimizer)
    spd.detach()
    assert not applies_spd(optimizer)
    attach_spd(optimizer)  # may be attached again after detaching


def test_deepcopy_of_attached_optimizer_keeps_spd():
    net = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(net.parameters(), lr=0.1,
                                  weight_decay=0.5)
    spd = attach_spd(optimizer)
    net(torch.ones(2, 3)).sum().backward()
    optimizer.step()
    spd_copy = copy.deepcopy(spd)
    assert applies_spd(spd_copy.optimizer)
    assert spd_copy.optimizer is not optimizer
    assert get_anchors(spd_copy.optimizer).keys() != get_anchors(
        optimizer).keys()
