"""Generic tests run over every mmspd optimizer and implementation.

Each implementation is a factory ``make(params, lr, weight_decay)`` naming
its path: the multi-tensor one (the default) and the per-tensor reference
(``foreach=False``), for AdamSPD, AdamL2SP and SPD attached to SGD and
AdamW.
"""
from __future__ import annotations

import copy

import pytest
import torch

from mmspd.optim import AdamL2SP, AdamSPD, attach_spd


def _attached(inner, foreach, **inner_kwargs):

    def make(params, lr, weight_decay):
        optimizer = inner(params, lr=lr, weight_decay=weight_decay,
                          foreach=foreach is not False, **inner_kwargs)
        attach_spd(optimizer, foreach=foreach)
        return optimizer

    return make


def _anchored(cls, foreach):

    def make(params, lr, weight_decay):
        return cls(params, lr=lr, weight_decay=weight_decay, foreach=foreach)

    return make


# name: (factory, learning rate that suits it, takes a closure)
IMPLEMENTATIONS = {
    'AdamSPD': (_anchored(AdamSPD, None), 1e-2, True),
    'AdamSPD-loop': (_anchored(AdamSPD, False), 1e-2, True),
    'AdamL2SP': (_anchored(AdamL2SP, None), 1e-2, True),
    'AdamL2SP-loop': (_anchored(AdamL2SP, False), 1e-2, True),
    'SGD+SPD': (_attached(torch.optim.SGD, None, momentum=0.9), 2e-3, False),
    'SGD+SPD-loop': (_attached(torch.optim.SGD, False, momentum=0.9), 2e-3,
                     False),
    'AdamW+SPD': (_attached(torch.optim.AdamW, None), 1e-2, False),
    'AdamW+SPD-loop': (_attached(torch.optim.AdamW, False), 1e-2, False),
}
PAIRS = [(name, f'{name}-loop') for name in IMPLEMENTATIONS
         if not name.endswith('-loop')]


def _make(name, params, weight_decay=0.1, lr=None):
    factory, default_lr, _ = IMPLEMENTATIONS[name]
    return factory(params, lr=default_lr if lr is None else lr,
                   weight_decay=weight_decay)


def _linear_problem(layout, device, dtype=torch.float32):
    """The weight and bias of issue 14, contiguous or strided views."""
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(10, 5, 2, generator=gen, dtype=dtype)
    bias = torch.randn(10, 2, generator=gen, dtype=dtype)
    x = torch.randn(5, generator=gen, dtype=dtype).to(device)
    if layout == 'contiguous':
        weight, bias = weight[..., 0].clone(), bias[..., 0].clone()
    else:  # views with gaps between their elements
        weight, bias = weight.to(device)[..., 0], bias.to(device)[..., 0]
    weight = torch.nn.Parameter(weight.to(device))
    bias = torch.nn.Parameter(bias.to(device))

    def loss_fn():
        return (weight.mv(x) + bias).pow(2).sum()

    return weight, bias, loss_fn


def _run(optimizer, loss_fn, steps):
    for _ in range(steps):
        optimizer.zero_grad()
        loss_fn().backward()
        optimizer.step()


@pytest.mark.parametrize('layout', ['contiguous', 'strided'])
@pytest.mark.parametrize('name', list(IMPLEMENTATIONS))
def test_loss_falls(name, layout, device):
    weight, bias, loss_fn = _linear_problem(layout, device)
    if layout == 'strided':
        assert not weight.is_contiguous() and not bias.is_contiguous()
    start = float(loss_fn().detach())
    optimizer = _make(name, [weight, bias])
    _run(optimizer, loss_fn, 200)
    assert float(loss_fn().detach()) < 0.1 * start


def _group_layouts(weight, bias):
    return {
        'one group': [{'params': [weight, bias]}],
        'a group each': [{'params': [weight]}, {'params': [bias]}],
        'own settings': [{'params': [weight], 'weight_decay': 0.2},
                         {'params': [bias], 'weight_decay': 0.0,
                          'lr': 5e-3}],
        'zero anchor': [{'params': [weight]},
                        {'params': [bias], 'anchor': 'zero'}],
    }


@pytest.mark.parametrize(
    'layout', ['one group', 'a group each', 'own settings', 'zero anchor'])
@pytest.mark.parametrize('name', list(IMPLEMENTATIONS))
def test_loss_falls_with_group_layouts(name, layout, device):
    weight, bias, loss_fn = _linear_problem('strided', device)
    start = float(loss_fn().detach())
    groups = _group_layouts(weight, bias)[layout]
    optimizer = _make(name, groups)
    _run(optimizer, loss_fn, 200)
    assert float(loss_fn().detach()) < 0.1 * start


@pytest.mark.parametrize('name', list(IMPLEMENTATIONS))
def test_closure(name, device):
    weight, bias, loss_fn = _linear_problem('contiguous', device)
    optimizer = _make(name, [weight, bias])
    calls = []

    def closure():
        calls.append(1)
        optimizer.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    if not IMPLEMENTATIONS[name][2]:
        # SPD on another optimizer needs the gradients before the step.
        with pytest.raises(RuntimeError, match='cannot run step\\(closure\\)'):
            optimizer.step(closure)
        assert not calls
        # The optimizer's own decay was not left switched off.
        assert optimizer.param_groups[0]['weight_decay'] == 0.1
        return
    start = float(loss_fn().detach())
    losses = [float(optimizer.step(closure).detach()) for _ in range(200)]
    assert len(calls) == 200
    assert losses[0] == pytest.approx(start)
    assert float(loss_fn().detach()) < 0.1 * start


def _tiny_net(device, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.Tanh(),
        torch.nn.Linear(8, 2)).to(device, torch.float64)


@pytest.mark.parametrize('name', list(IMPLEMENTATIONS))
def test_state_dict_round_trip(name, device):
    net = _tiny_net(device)
    optimizer = _make(name, [
        {'params': net[0].parameters(), 'weight_decay': 0.5},
        {'params': net[2].parameters(), 'weight_decay': 0.2},
    ])
    gen = torch.Generator().manual_seed(1)
    data = [(torch.randn(8, 4, generator=gen, dtype=torch.float64),
             torch.randn(8, 2, generator=gen, dtype=torch.float64))
            for _ in range(10)]
    data = [(x.to(device), y.to(device)) for x, y in data]

    def step(model, opt, batch):
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(batch[0]), batch[1]).backward()
        opt.step()

    for batch in data[:5]:
        step(net, optimizer, batch)
    copy_net = _tiny_net(device, seed=1)
    copy_net.load_state_dict(net.state_dict())
    # Built with other strengths: those come back from the state dict.
    copied = _make(name, [
        {'params': copy_net[0].parameters(), 'weight_decay': 0.0},
        {'params': copy_net[2].parameters(), 'weight_decay': 0.0},
    ])
    copied.load_state_dict(copy.deepcopy(optimizer.state_dict()))
    assert [g['weight_decay'] for g in copied.param_groups] == [0.5, 0.2]
    for batch in data[5:]:
        step(net, optimizer, batch)
        step(copy_net, copied, batch)
        for a, b in zip(net.parameters(), copy_net.parameters()):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def _rosenbrock(xy):
    x, y = xy
    return (1 - x)**2 + 100 * (y - x**2)**2


@pytest.mark.parametrize('name', list(IMPLEMENTATIONS))
def test_rosenbrock(name, device):
    xy = torch.nn.Parameter(torch.tensor([1.5, 1.5], dtype=torch.float64,
                                         device=device))
    target = torch.ones(2, dtype=torch.float64, device=device)
    start = float((xy - target).norm().detach())
    lr = 1e-3 if name.startswith('SGD') else 3e-2
    optimizer = _make(name, [xy], weight_decay=0.01, lr=lr)
    _run(optimizer, lambda: _rosenbrock(xy), 1000)
    assert torch.isfinite(xy).all()
    assert float((xy - target).norm().detach()) <= start


def _all_layouts(device):
    """Parameters of every layout torch's optimizers accept, in one list."""
    gen = torch.Generator().manual_seed(3)

    def randn(*shape):
        return torch.randn(*shape, generator=gen,
                           dtype=torch.float64).to(device)

    return {
        'contiguous': randn(6, 5),
        'strided view': randn(7, 4, 2)[..., 1],
        'transposed': randn(5, 6).t(),
        'channels_last': randn(4, 3, 3, 3).contiguous(
            memory_format=torch.channels_last),
        'zero-size': randn(0, 3),
        'slice': randn(12)[::3],
        'scalar': randn(()),
        'bias': randn(4),
    }


def _layout_params(device, names):
    """Fresh parameters (same values each call) in the named layouts."""
    layouts = _all_layouts(device)
    return [torch.nn.Parameter(layouts[n]) for n in names]


LAYOUT_SETS = {
    'strided view': ['strided view'],
    'transposed': ['transposed'],
    'channels_last': ['channels_last'],
    'zero-size': ['zero-size', 'bias'],
    'mix': ['contiguous', 'strided view', 'transposed', 'channels_last',
            'zero-size', 'slice', 'scalar', 'bias'],
}


def _noisy_loss(params, step):
    """A loss whose gradients change direction from step to step."""
    gen = torch.Generator().manual_seed(100 + step)
    loss = 0
    for param in params:
        target = torch.randn(param.shape, generator=gen,
                             dtype=param.dtype).to(param.device)
        loss = loss + ((param - target)**2).sum() + param.sum()**2
    return loss


@pytest.mark.parametrize('layout', list(LAYOUT_SETS))
@pytest.mark.parametrize('multi, loop', PAIRS)
def test_multi_tensor_equals_per_tensor(multi, loop, layout, device,
                                        close_tol):
    names = LAYOUT_SETS[layout]
    runs = []
    for name in (multi, loop):
        params = _layout_params(device, names)
        if layout == 'strided view' or layout == 'mix':
            assert not params[names.index('strided view')].is_contiguous()
        groups = [{'params': params[::2], 'weight_decay': 0.8},
                  {'params': params[1::2], 'weight_decay': 0.3}]
        if len(params) > 2:
            groups.append({'params': [groups[1]['params'].pop()],
                           'weight_decay': 0.5, 'anchor': 'zero'})
        groups = [g for g in groups if g['params']]
        optimizer = _make(name, groups, lr=2e-2 if 'SGD' not in name
                          else 2e-3)
        for step in range(12):
            optimizer.zero_grad()
            _noisy_loss(params, step).backward()
            optimizer.step()
        runs.append(params)
    moved = 0.0
    for a, b, start in zip(*runs, _layout_params(device, names)):
        assert a.stride() == b.stride()
        torch.testing.assert_close(a, b, **close_tol(torch.float64))
        if a.numel():
            moved = max(moved, float((a - start).abs().max()))
    assert moved > 1e-3  # the parameters really moved


@pytest.mark.parametrize('name', list(IMPLEMENTATIONS))
def test_complex_parameters_step_as_their_real_view(name, device,
                                                    close_tol):
    # torch's optimizers step a complex tensor as view_as_real of it; SPD
    # measures and projects that same real tensor.
    gen = torch.Generator().manual_seed(4)
    values = torch.randn(6, 5, 2, generator=gen, dtype=torch.float64)
    other = torch.randn(7, generator=gen, dtype=torch.float64)
    zeroed = torch.randn(3, 2, generator=gen, dtype=torch.float64)
    runs = []
    for as_complex in (True, False):
        def param(t, as_complex=as_complex):
            t = t.to(device)
            return torch.nn.Parameter(
                torch.view_as_complex(t.clone()) if as_complex else t.clone())

        params = [param(values), torch.nn.Parameter(other.to(device).clone()),
                  param(zeroed)]
        optimizer = _make(name, [
            {'params': params[:2], 'weight_decay': 0.8},
            {'params': params[2:], 'weight_decay': 0.5, 'anchor': 'zero'},
        ], lr=2e-3 if 'SGD' in name else 2e-2)
        steps = torch.Generator().manual_seed(5)
        for _ in range(8):
            for p in params:
                shape = p.shape + ((2, ) if p.is_complex() else ())
                grad = torch.randn(shape, generator=steps,
                                   dtype=torch.float64).to(device)
                p.grad = (torch.view_as_complex(grad) if p.is_complex()
                          else grad)
                # Gradients that disagree with the progress now and then.
                p.grad.add_(p.detach(), alpha=0.5)
            optimizer.step()
        runs.append([torch.view_as_real(p.detach()) if p.is_complex()
                     else p.detach() for p in params])
    for a, b, start in zip(*runs, (values, other, zeroed)):
        torch.testing.assert_close(a, b, **close_tol(torch.float64))
        assert not torch.allclose(a, start.to(device))
