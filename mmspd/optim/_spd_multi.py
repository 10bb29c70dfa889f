"""The multi-tensor path of the Selective Projection Decay rule.

It copies the deviations of a list of tensors into one flat scratch buffer
in which every tensor starts on a chunk boundary. Per tensor sums become
chunk sums plus one ``index_add_``, and per-tensor factors become per-chunk
factors applied to the whole buffer in one op, so the number of kernels per
step does not depend on the number of tensors and nothing waits for the
device: the condition ``c < 0`` is a 0/1 factor. Reductions of
float16/bfloat16 tensors run in float32. :func:`mmspd.optim._spd.spd_pre`
and :func:`mmspd.optim._spd.spd_post` take this path when given an
:class:`SPDWorkspace`.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
from torch import Tensor

from ._spd_rule import (
    SPDContext,
    SPDStatistics,
    _not_skipped,
    spd_factor,
    stat_dtype,
)

# Every tensor starts on a chunk boundary of the scratch buffer.
_CHUNK = 256


def is_dense(tensor: Tensor) -> bool:
    """Whether ``tensor`` covers its memory without gaps or overlap."""
    expected = 1
    for size, stride in sorted(zip(tensor.shape, tensor.stride()),
                               key=lambda item: item[1]):
        if size == 1:
            continue
        if stride != expected:
            return False
        expected *= size
    return True


class _Batch(NamedTuple):
    start: int
    stop: int
    offsets: list[int]  # where each tensor starts in the flat buffer
    total: int  # elements of the flat buffer (a multiple of _CHUNK)
    owners: Tensor  # tensor index of every chunk, on the tensors' device


# Scratch memory is bounded: tensors are processed in batches of at most this
# many elements (or one tensor, if larger).
_BATCH_ELEMENTS = 1 << 25
_plans: dict[tuple, list[_Batch]] = {}


def _to_device(values: Sequence, dtype: torch.dtype,
               device: torch.device) -> Tensor:
    """``values`` as a tensor on ``device``, copied without a host sync."""
    if device.type != 'cuda':
        return torch.tensor(values, dtype=dtype, device=device)
    # A copy from pinned memory does not wait for the device, and the
    # pinned block is not handed out again before the copy has run.
    return torch.tensor(values, dtype=dtype, pin_memory=True).to(
        device, non_blocking=True)


def _plan(tensors: list[Tensor]) -> list[_Batch]:
    device = tensors[0].device
    key = (device, tuple(t.numel() for t in tensors))
    plan = _plans.get(key)
    if plan is not None:
        return plan
    if len(_plans) > 64:  # parameter sets change rarely; stay small
        _plans.clear()
    padded = [-(-n // _CHUNK) * _CHUNK for n in key[1]]
    plan, start, size = [], 0, 0
    for i, length in enumerate(padded + [None]):
        if i == len(padded) or (size and size + length > _BATCH_ELEMENTS):
            offsets, owners, at = [], [], 0
            for j in range(start, i):
                offsets.append(at)
                at += padded[j]
                owners.extend([j - start] * (padded[j] // _CHUNK))
            # Built once per parameter set and cached: no copy per step.
            plan.append(_Batch(start, i, offsets, size,
                               _to_device(owners, torch.long, device)))
            start, size = i, 0
        if length is not None:
            size += length
    _plans[key] = plan
    return plan


class SPDWorkspace:
    """Scratch memory of the multi-tensor path, reused from step to step.

    One flat buffer per device and reduction dtype, of at most about 32 M
    elements (or the largest tensor), and the views of it shaped (and, for
    dense tensors, strided) like the tensors, so that element-wise
    multi-tensor ops pair tensors of identical layout. Copies of an
    optimizer start with an empty workspace.
    """

    def __init__(self) -> None:
        self._buffers: dict[tuple, Tensor] = {}
        self._views: dict[tuple, tuple[Tensor, list[Tensor],
                                       list[Tensor]]] = {}

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()

    def views(self, tensors: list[Tensor], batch: _Batch
              ) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        """The flat buffer, a view per tensor, and the padding pieces."""
        ref = tensors[0]
        dtype = stat_dtype(ref.dtype)
        key = (ref.device, dtype)
        layout = (key, batch.start, batch.total,
                  tuple((t.shape, t.stride() if is_dense(t) else None)
                        for t in tensors))
        cached = self._views.get(layout)
        buffer = self._buffers.get(key)
        if cached is not None and buffer is not None and cached[0].data_ptr(
        ) == buffer.data_ptr():
            return cached
        if buffer is None or buffer.numel() < batch.total:
            buffer = torch.empty(batch.total, dtype=dtype, device=ref.device)
            self._buffers[key] = buffer
            self._views = {k: v for k, v in self._views.items()
                           if k[0] != key}
        flat = buffer[:batch.total]
        views, pads = [], []
        ends = batch.offsets[1:] + [batch.total]
        for tensor, begin, end in zip(tensors, batch.offsets, ends):
            numel = tensor.numel()
            if is_dense(tensor):
                view = flat.as_strided(tensor.shape, tensor.stride(),
                                       flat.storage_offset() + begin)
            else:
                view = flat[begin:begin + numel].view(tensor.shape)
            views.append(view)
            if end > begin + numel:
                pads.append(flat[begin + numel:end])
        if len(self._views) > 64:
            self._views.clear()
        self._views[layout] = (flat, views, pads)
        return flat, views, pads


def _fill_deviation(views: list[Tensor], params: list[Tensor],
                    anchors: list[Tensor] | None) -> None:
    torch._foreach_copy_(views, params)
    if anchors is not None:
        torch._foreach_sub_(views, anchors)


def _multi_pre(params: list[Tensor], grads: list[Tensor],
               anchors: list[Tensor] | None,
               workspace: SPDWorkspace) -> SPDContext:
    dots, prevs = [], []
    for batch in _plan(params):
        part = slice(batch.start, batch.stop)
        flat, views, pads = workspace.views(params[part], batch)
        if pads:
            # Other tensor lists share the buffer: padding must be re-zeroed.
            torch._foreach_zero_(pads)
        _fill_deviation(views, params[part],
                        None if anchors is None else anchors[part])
        prevs.append(torch.stack(torch._foreach_norm(views)))
        torch._foreach_mul_(views, grads[part])
        # Per-tensor dot products: sums over chunks, then over each tensor's
        # chunks (tensors start on chunk boundaries, padding is zero).
        chunk_sums = flat.view(-1, _CHUNK).sum(1)
        count = batch.stop - batch.start
        dots.append(flat.new_zeros(count).index_add_(0, batch.owners,
                                                     chunk_sums))
    dot = dots[0] if len(dots) == 1 else torch.cat(dots)
    prev = prevs[0] if len(prevs) == 1 else torch.cat(prevs)
    return SPDContext(-dot, prev)


def _strengths(lam: float | Sequence[float], like: Tensor) -> float | Tensor:
    if isinstance(lam, (int, float)):
        return lam
    if all(value == lam[0] for value in lam):
        return lam[0]
    key = (like.device, like.dtype, tuple(lam))
    tensor = _strength_tensors.get(key)
    if tensor is None:
        if len(_strength_tensors) > 64:
            _strength_tensors.clear()
        # Kept until the strengths change: one copy, not one per step.
        tensor = _to_device(lam, like.dtype, like.device)
        _strength_tensors[key] = tensor
    return tensor


_strength_tensors: dict[tuple, Tensor] = {}


def _multi_post(params: list[Tensor], anchors: list[Tensor] | None,
                lam: float | Sequence[float], ctx: SPDContext,
                stats: SPDStatistics | None, workspace: SPDWorkspace,
                found_inf: Tensor | None) -> None:
    plan = _plan(params)
    curs = []
    for batch in plan:
        part = slice(batch.start, batch.stop)
        _, views, _ = workspace.views(params[part], batch)
        _fill_deviation(views, params[part],
                        None if anchors is None else anchors[part])
        curs.append(torch.stack(torch._foreach_norm(views)))
    cur = curs[0] if len(curs) == 1 else torch.cat(curs)
    scale, ratio, selected = spd_factor(ctx.c, ctx.prev, cur,
                                        _strengths(lam, cur))
    keep = _not_skipped(found_inf, scale)
    if keep is not None:
        scale, selected = scale * keep, selected * keep
    for batch in plan:
        part = slice(batch.start, batch.stop)
        flat, views, _ = workspace.views(params[part], batch)
        if len(plan) > 1:  # the buffer holds the last batch only
            _fill_deviation(views, params[part],
                            None if anchors is None else anchors[part])
        # s * (theta_new - a) for every tensor at once, then one subtraction:
        # theta_new - s * (theta_new - a).
        chunk_scale = scale[batch.start:batch.stop].index_select(
            0, batch.owners)
        flat.view(-1, _CHUNK).mul_(chunk_scale.unsqueeze(1))
        torch._foreach_sub_(params[part], views)
    if stats is not None:
        stats.add(selected, ratio, (1 - scale) * cur, anchors)
