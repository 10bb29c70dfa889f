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

The buffer holds one batch of tensors at a time; a tensor larger than a
batch is split into pieces of whole rows, whose sums and norms are combined
per tensor. On the CPU the batches are small enough to stay in the cache,
so the passes over the buffer cost no memory traffic: the first half reads
weights, anchors and gradients once, the second reads weights and anchors
twice (norms first, then the projection) and writes the weights once.
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
    # (tensor index, rows of it or None for all) of every piece
    pieces: list[tuple[int, slice | None]]
    offsets: list[int]  # where each piece starts in the flat buffer
    total: int  # elements of the flat buffer (a multiple of _CHUNK)
    owners: Tensor  # tensor index of every chunk, on the tensors' device


class _Plan(NamedTuple):
    batches: list[_Batch]
    # Tensor index of every piece, on the device; None when no tensor is
    # split, so that every piece is a whole tensor.
    piece_owners: Tensor | None


# Scratch memory is bounded: tensors are processed in batches of at most this
# many elements (or one row of a tensor, if larger); tensors larger than a
# batch are split into pieces of whole rows (slices of their first dim).
_BATCH_ELEMENTS = 1 << 25
# On the CPU a batch small enough to stay in the cache is faster: the
# passes over the scratch buffer then cost no memory traffic.
_CPU_BATCH_ELEMENTS = 1 << 20
_plans: dict[tuple, _Plan] = {}


def _to_device(values: Sequence, dtype: torch.dtype,
               device: torch.device) -> Tensor:
    """``values`` as a tensor on ``device``, copied without a host sync."""
    if device.type != 'cuda':
        return torch.tensor(values, dtype=dtype, device=device)
    # A copy from pinned memory does not wait for the device, and the
    # pinned block is not handed out again before the copy has run.
    return torch.tensor(values, dtype=dtype, pin_memory=True).to(
        device, non_blocking=True)


def _padded(numel: int) -> int:
    return -(-numel // _CHUNK) * _CHUNK


def _split(shape: torch.Size, limit: int) -> list[slice | None]:
    """Row ranges of a tensor of ``shape``: ``limit`` elements or one row.

    None stands for the whole tensor, kept whole if it fits in a batch or
    has no rows to split along.
    """
    numel = shape.numel()
    if _padded(numel) <= limit or len(shape) == 0 or shape[0] < 2:
        return [None]
    row = numel // shape[0]
    rows = max(1, limit // max(row, 1))
    return [slice(i, min(i + rows, shape[0]))
            for i in range(0, shape[0], rows)]


def _plan(tensors: list[Tensor]) -> _Plan:
    device = tensors[0].device
    limit = _BATCH_ELEMENTS if device.type != 'cpu' else min(
        _BATCH_ELEMENTS, _CPU_BATCH_ELEMENTS)
    key = (device, limit, tuple(t.shape for t in tensors))
    plan = _plans.get(key)
    if plan is not None:
        return plan
    if len(_plans) > 64:  # parameter sets change rarely; stay small
        _plans.clear()
    pieces = []  # (tensor index, rows, padded length)
    for i, shape in enumerate(key[2]):
        row = shape.numel() // shape[0] if len(shape) and shape[0] else 0
        for rows in _split(shape, limit):
            numel = shape.numel() if rows is None else row * (
                rows.stop - rows.start)
            pieces.append((i, rows, _padded(numel)))
    batches, start, size = [], 0, 0
    for k in range(len(pieces) + 1):
        if k == len(pieces) or (size and size + pieces[k][2] > limit):
            offsets, owners, at = [], [], 0
            for i, _, length in pieces[start:k]:
                offsets.append(at)
                at += length
                owners.extend([i] * (length // _CHUNK))
            # Built once per parameter set and cached: no copy per step.
            batches.append(_Batch([p[:2] for p in pieces[start:k]],
                                  offsets, size,
                                  _to_device(owners, torch.long, device)))
            start, size = k, 0
        if k < len(pieces):
            size += pieces[k][2]
    split = len(pieces) > len(tensors)
    plan = _Plan(batches, _to_device([p[0] for p in pieces], torch.long,
                                     device) if split else None)
    _plans[key] = plan
    return plan


def _pieces(tensors: list[Tensor], batch: _Batch) -> list[Tensor]:
    return [tensors[i] if rows is None else tensors[i][rows]
            for i, rows in batch.pieces]


def _norms(parts: list[Tensor], plan: _Plan, count: int) -> Tensor:
    """Per-tensor norms from the norms of the pieces of every batch."""
    norms = parts[0] if len(parts) == 1 else torch.cat(parts)
    if plan.piece_owners is None:
        return norms
    # Squares summed in float64 (where the device has it): no underflow.
    wide = torch.float64 if norms.device.type != 'mps' else norms.dtype
    squares = norms.to(wide).square()
    return squares.new_zeros(count).index_add_(
        0, plan.piece_owners, squares).sqrt().to(norms.dtype)


class SPDWorkspace:
    """Scratch memory of the multi-tensor path, reused from step to step.

    One flat buffer per device and reduction dtype, of at most about 32 M
    elements (1 M on the CPU), or one row of the largest tensor if that is
    larger, and the views of it shaped (and, for dense tensors, strided)
    like the tensors or their pieces, so that element-wise
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
        layout = (key, batch.total,
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
        if len(self._views) > 1024:  # a batch per 1 M elements on CPU
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
    plan = _plan(params)
    dot, norms = None, []
    for batch in plan.batches:
        pieces = _pieces(params, batch)
        flat, views, pads = workspace.views(pieces, batch)
        if pads:
            # Other tensor lists share the buffer: padding must be re-zeroed.
            torch._foreach_zero_(pads)
        _fill_deviation(views, pieces,
                        None if anchors is None else _pieces(anchors, batch))
        norms.append(torch.stack(torch._foreach_norm(views)))
        torch._foreach_mul_(views, _pieces(grads, batch))
        # Per-tensor dot products: sums over chunks, then over each tensor's
        # chunks (pieces start on chunk boundaries, padding is zero).
        chunk_sums = flat.view(-1, _CHUNK).sum(1)
        if dot is None:
            dot = flat.new_zeros(len(params))
        dot.index_add_(0, batch.owners, chunk_sums)
    return SPDContext(-dot, _norms(norms, plan, len(params)))


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
    norms = []
    for batch in plan.batches:
        pieces = _pieces(params, batch)
        _, views, _ = workspace.views(pieces, batch)
        _fill_deviation(views, pieces,
                        None if anchors is None else _pieces(anchors, batch))
        norms.append(torch.stack(torch._foreach_norm(views)))
    cur = _norms(norms, plan, len(params))
    scale, ratio, selected = spd_factor(ctx.c, ctx.prev, cur,
                                        _strengths(lam, cur))
    keep = _not_skipped(found_inf, scale)
    if keep is not None:
        scale, selected = scale * keep, selected * keep
    last = len(plan.batches) - 1
    # The last batch first: the buffer still holds its deviations.
    for index in range(last, -1, -1):
        batch = plan.batches[index]
        pieces = _pieces(params, batch)
        flat, views, _ = workspace.views(pieces, batch)
        if index != last:
            _fill_deviation(
                views, pieces,
                None if anchors is None else _pieces(anchors, batch))
        # s * (theta_new - a) for every tensor at once, then one subtraction:
        # theta_new - s * (theta_new - a).
        chunk_scale = scale.index_select(0, batch.owners)
        flat.view(-1, _CHUNK).mul_(chunk_scale.unsqueeze(1))
        torch._foreach_sub_(pieces, views)
    if stats is not None:
        stats.add(selected, ratio, (1 - scale) * cur, anchors)
