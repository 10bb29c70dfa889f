"""What a step dispatches, checked against CUDA's rules on any machine.

A step must not wait for the device (no host syncs), must launch a number
of kernels that does not grow with the number of tensors or param groups
(CUDA's foreach ops take one kernel only for lists that match in shape,
stride and dtype), and must run no operator whose CUDA kernel is
nondeterministic on floating-point data: under DDP every rank decides
``c < 0`` on its own, and only bitwise-equal results keep replicas equal.
All of this holds for float32 and bfloat16 parameters, for AdamSPD and
for SPD on other optimizers. These tests need torch alone.
"""
from __future__ import annotations

import pytest
import torch

import mmspd.optim._segments as segments
from mmspd.optim import AdamL2SP, AdamSPD, SPDWorkspace, attach_spd, spd_pre
from mmspd.optim.profiling import StepRecorder


def test_recorder_sees_syncs_and_per_tensor_kernels():
    # The instrument itself: what the old multi-tensor path did is caught.
    params = [torch.empty(n, device='meta') for n in (3, 5, 7)]
    recorder = StepRecorder()
    with recorder:
        weights = torch.empty(3, device='meta')
        torch._foreach_mul_(params, list(weights.unbind()))
        torch._foreach_mul_(params, 0.5)
        lengths = torch.tensor([3, 5, 7]).to('meta')
        try:
            torch.segment_reduce(torch.cat(params), 'sum', lengths=lengths)
        except (NotImplementedError, RuntimeError):
            pass  # no meta kernel: recorded all the same
    assert recorder.kernels >= 3 + 1
    assert any('segment_reduce' in name for name in recorder.syncs)


def test_recorder_sees_mixed_dtype_lists():
    # A float32 scratch list beside bfloat16 weights: a kernel per tensor.
    weights = [torch.empty(n, device='meta', dtype=torch.bfloat16)
               for n in (3, 5, 7)]
    scratch = [torch.empty(n, device='meta') for n in (3, 5, 7)]
    recorder = StepRecorder()
    with recorder:
        torch._foreach_copy_(scratch, weights)
    assert recorder.kernels == 3


def _nondeterministic_ops(dtype):
    """Each op with a nondeterministic CUDA kernel, on ``dtype`` data."""
    index = torch.tensor([0, 2, 0]).to('meta')
    source = torch.empty(3, device='meta', dtype=dtype)

    def target():
        return torch.zeros(4, device='meta', dtype=dtype)

    return {
        'index_add_': lambda: target().index_add_(0, index, source),
        'scatter_add_': lambda: target().scatter_add_(0, index, source),
        'scatter_reduce_': lambda: target().scatter_reduce_(
            0, index, source, 'sum'),
        'index_reduce_': lambda: target().index_reduce_(
            0, index, source, 'prod'),
        'index_put_': lambda: target().index_put_((index, ), source,
                                                  accumulate=True),
        'put_': lambda: target().put_(index, source, accumulate=True),
        'cumsum': lambda: source.cumsum(0),
    }


@pytest.mark.parametrize('op', list(_nondeterministic_ops(torch.float32)))
def test_recorder_sees_nondeterministic_ops(op):
    recorder = StepRecorder()
    with recorder:
        _nondeterministic_ops(torch.float32)[op]()
    assert len(recorder.nondeterministic) == 1, recorder.nondeterministic
    assert op.rstrip('_') in recorder.nondeterministic[0]
    # Integer accumulation is exact in any order; no accumulation at all
    # is deterministic too.
    recorder = StepRecorder()
    index = torch.tensor([0, 2, 0]).to('meta')
    with recorder:
        _nondeterministic_ops(torch.int64)[op]()
        torch.zeros(4, device='meta').index_put_(
            (index, ), torch.ones(3, device='meta'))
        torch.zeros(4, device='meta').index_select(0, index)
    assert recorder.nondeterministic == []


def _recorded_step(make, num_tensors, paramwise, dtype=torch.float32,
                   length=1025):
    """One steady-state step on ``num_tensors`` tensors of 3 x ``length``.
    """
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.empty(3, length, device='meta',
                                             dtype=dtype))
              for _ in range(num_tensors)]
    if paramwise:  # a group per tensor, as MMEngine's paramwise_cfg makes
        groups = [{'params': [p], 'weight_decay': (0.5, 0.1, 0.0)[i % 3]}
                  for i, p in enumerate(params)]
    else:
        groups = [{'params': params, 'weight_decay': 0.5}]
    optimizer = make(groups)
    for _ in range(2):  # warm: state and cached plans exist
        for param in params:
            param.grad = torch.randn_like(param)
        optimizer.step()
    for param in params:
        param.grad = torch.randn_like(param)
    # A scheduler changed the strengths since the last step.
    for group in optimizer.param_groups:
        group['weight_decay'] *= 0.9
    recorder = StepRecorder()
    with recorder:
        optimizer.step()
    return recorder


def _sgd(groups):
    return torch.optim.SGD(groups, lr=0.01, momentum=0.9, foreach=True)


def _adamw(groups):
    return torch.optim.AdamW(groups, lr=0.01, foreach=True)


def _sgd_spd(groups):
    optimizer = _sgd(groups)
    attach_spd(optimizer)
    return optimizer


def _adamw_spd(groups):
    optimizer = _adamw(groups)
    attach_spd(optimizer)
    return optimizer


DTYPES = [torch.float32, torch.bfloat16, torch.float16]


@pytest.mark.parametrize('dtype', DTYPES, ids=str)
@pytest.mark.parametrize('paramwise', [False, True])
@pytest.mark.parametrize('inner, make', [(_sgd, _sgd_spd),
                                         (_adamw, _adamw_spd)],
                         ids=['SGD', 'AdamW'])
def test_attached_spd_adds_a_flat_kernel_count(inner, make, paramwise,
                                               dtype):
    # torch's own optimizers step group by group; SPD adds the same number
    # of kernels however many tensors and groups there are, deterministic
    # ones, and no sync.
    def undecayed(groups):  # what SPD runs the inner optimizer with
        return inner([{**group, 'weight_decay': 0.0} for group in groups])

    added = []
    for num_tensors in (16, 64):
        spd = _recorded_step(make, num_tensors, paramwise, dtype)
        plain = _recorded_step(undecayed, num_tensors, paramwise, dtype)
        assert spd.syncs == [] and plain.syncs == []
        assert spd.nondeterministic == []
        added.append(spd.kernels - plain.kernels)
    assert added[0] == added[1]
    if dtype != torch.float32:
        # Half precision costs a few conversions of the scratch buffer,
        # not a kernel per tensor.
        spd32 = _recorded_step(make, 64, paramwise)
        plain32 = _recorded_step(undecayed, 64, paramwise)
        assert added[1] <= spd32.kernels - plain32.kernels + 8


@pytest.mark.parametrize('dtype', DTYPES, ids=str)
@pytest.mark.parametrize('paramwise', [False, True])
@pytest.mark.parametrize('make', [
    lambda groups: AdamSPD(groups, lr=0.01),
    lambda groups: AdamSPD(groups, lr=0.01, amsgrad=True),
    lambda groups: AdamL2SP(groups, lr=0.01)
], ids=['AdamSPD', 'AdamSPD-amsgrad', 'AdamL2SP'])
def test_step_has_no_sync_and_flat_kernel_count(make, paramwise, dtype):
    few = _recorded_step(make, 16, paramwise, dtype)
    many = _recorded_step(make, 64, paramwise, dtype)
    assert few.syncs == [] and many.syncs == []
    assert few.nondeterministic == [] and many.nondeterministic == []
    assert few.kernels == many.kernels
    if dtype != torch.float32:
        assert many.kernels <= _recorded_step(make, 64, paramwise).kernels + 8


@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16], ids=str)
def test_split_tensors_and_several_batches_stay_deterministic(
        monkeypatch, dtype):
    # Tensors larger than a batch are split, and their pieces summed per
    # tensor: with the same fixed-order sums.
    monkeypatch.setattr(segments, '_BATCH_ELEMENTS', 4096)
    monkeypatch.setattr(segments, '_CPU_BATCH_ELEMENTS', 4096)
    monkeypatch.setattr(segments, '_plans', {})
    for num_tensors in (4, 12):
        recorder = _recorded_step(lambda groups: AdamSPD(groups, lr=0.01),
                                  num_tensors, False, dtype, length=2000)
        assert recorder.syncs == [] and recorder.nondeterministic == []


@pytest.mark.parametrize('make', ['AdamSPD', 'SGD+SPD'])
def test_deterministic_mode_changes_nothing(make, device):
    # torch.use_deterministic_algorithms(True) neither raises in a step nor
    # changes its result (no op falls back to another algorithm).
    def run():
        torch.manual_seed(0)
        params = [torch.nn.Parameter(torch.randn(n, 3, device=device))
                  for n in (300, 7, 1)]
        if make == 'AdamSPD':
            optimizer = AdamSPD(params, lr=0.01, weight_decay=0.8)
        else:
            optimizer = torch.optim.SGD(params, lr=0.01, momentum=0.9,
                                        weight_decay=0.8)
            attach_spd(optimizer)
        gen = torch.Generator().manual_seed(1)
        for _ in range(4):
            for param in params:
                param.grad = torch.randn(param.shape, generator=gen).to(
                    device) + param.detach()
            optimizer.step()
        return params

    free = run()
    torch.use_deterministic_algorithms(True)
    strict = run()
    for a, b in zip(free, strict):
        assert torch.equal(a, b)


@pytest.mark.parametrize('lengths', [[1, 1, 1], [0, 5, 1, 0], [300, 2],
                                     [20000, 0, 129, 128, 1]])
def test_segment_sums(lengths):
    # The fixed-order segmented sum gives every segment's sum, empty ones
    # zero, and the same bits every time.
    gen = torch.Generator().manual_seed(0)
    values = torch.randn(sum(lengths), generator=gen, dtype=torch.float64)
    levels = [torch.tensor(index)
              for index in segments._segment_levels(lengths)]
    zero = values.new_zeros(1)
    sums = segments._segment_sums(values, levels, len(lengths), zero)
    expected = torch.stack([part.sum() for part in values.split(lengths)])
    torch.testing.assert_close(sums, expected, rtol=1e-12, atol=1e-12)
    assert torch.equal(
        segments._segment_sums(values, levels, len(lengths), zero), sums)
    # One level per factor of _FAN_IN in the longest segment, at least one.
    depth = 1
    while segments._FAN_IN**depth < max(lengths):
        depth += 1
    assert len(levels) == depth


def test_large_tensors_match_the_per_tensor_path():
    # Tensors of many chunks need several levels of the segmented sum.
    gen = torch.Generator().manual_seed(0)
    params = [torch.randn(n, generator=gen, dtype=torch.float64)
              for n in (70000, 3, 0, 40000, 256)]
    anchors = [p + 0.1 * torch.randn(p.shape, generator=gen,
                                     dtype=torch.float64) for p in params]
    grads = [torch.randn(p.shape, generator=gen, dtype=torch.float64)
             for p in params]
    multi = spd_pre(params, grads, anchors, SPDWorkspace())
    single = spd_pre(params, grads, anchors, None)
    assert len(segments._plan(params).levels) == 2
    torch.testing.assert_close(multi.c, single.c, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(multi.prev, single.prev, rtol=1e-12,
                               atol=1e-12)
