"""The multi-tensor path of the Selective Projection Decay rule.

It copies the deviations of a list of tensors into one flat scratch buffer
in which every tensor starts on a chunk boundary. Per-tensor dot products
become chunk sums, reduced per tensor by a segmented sum of fixed order
(:mod:`mmspd.optim._segments`, which also plans the buffer); norms come
from ``torch._foreach_norm`` on the views of the buffer (combined the same
way for tensors split into pieces); per-tensor factors become per-chunk
factors applied to the whole buffer in one op. So the number of kernels
per step does not depend on the number of tensors, nothing waits for the
device (the condition ``c < 0`` is a 0/1 factor), and every sum is taken
in the same order at every step and on every rank: no operator with atomic
floating-point accumulation (``index_add_``, ``scatter_add_``) and no
floating ``cumsum``, which CUDA scans in a varying order and
``torch.use_deterministic_algorithms`` refuses.
:func:`mmspd.optim._spd.spd_pre` and :func:`mmspd.optim._spd.spd_post`
take this path when given an :class:`SPDWorkspace`.

Float16 / bfloat16 tensors are reduced in float32. Their lists are first
copied into a scratch buffer of their own dtype (multi-tensor ops whose
lists share dtype and layout: CUDA's one-kernel route), which is converted
to float32 as a whole; the projection goes back the same way. The result
is that of the per-tensor path, bit for bit.

The buffer holds one batch of tensors at a time; a tensor larger than a
batch is split into pieces of whole rows. On the CPU the batches are small
enough to stay in the cache, so the passes over the buffer cost no memory
traffic: the first half reads weights, anchors and gradients once, the
second reads weights and anchors twice (norms first, then the projection)
and writes the weights once.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
from torch import Tensor

from ._segments import (
    _CHUNK,
    _Batch,
    _cat,
    _pieces,
    _Plan,
    _plan,
    _segment_sums,
    _to_device,
    is_dense,
)
from ._spd_rule import (
    SPDContext,
    SPDStatistics,
    _not_skipped,
    spd_factor,
    stat_dtype,
)


class SPDWorkspace:
    """Scratch memory of the multi-tensor path, reused from step to step.

    One flat buffer per device and dtype, of at most about 32 M elements
    (1 M on the CPU), or one row of the largest tensor if that is larger,
    and the views of it shaped (and, for dense tensors, strided) like the
    tensors or their pieces, so that element-wise multi-tensor ops pair
    tensors of identical layout. Copies of an optimizer start with an
    empty workspace.
    """

    def __init__(self) -> None:
        self._buffers: dict[tuple, Tensor] = {}
        self._views: dict[tuple, tuple[Tensor, list[Tensor],
                                       list[Tensor]]] = {}
        self._zeros: dict[tuple, Tensor] = {}

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()

    def zero(self, like: Tensor) -> Tensor:
        """A one-element zero of ``like``'s dtype and device, never written.
        """
        key = (like.device, like.dtype)
        zero = self._zeros.get(key)
        if zero is None:
            zero = self._zeros[key] = like.new_zeros(1)
        return zero

    def views(self, tensors: list[Tensor], batch: _Batch,
              dtype: torch.dtype | None = None
              ) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        """The flat buffer, a view per tensor, and the padding pieces.

        Args:
            tensors (list[Tensor]): The tensors (or pieces) of ``batch``.
            batch (_Batch): Their place in the buffer.
            dtype (torch.dtype, optional): The buffer's dtype. Defaults to
                the dtype the tensors are reduced in.
        """
        ref = tensors[0]
        key = (ref.device, dtype or stat_dtype(ref.dtype))
        layout = (key, batch.total,
                  tuple((t.shape, t.stride() if is_dense(t) else None)
                        for t in tensors))
        cached = self._views.get(layout)
        buffer = self._buffers.get(key)
        if cached is not None and buffer is not None and cached[0].data_ptr(
        ) == buffer.data_ptr():
            return cached
        if buffer is None or buffer.numel() < batch.total:
            buffer = torch.empty(batch.total, dtype=key[1],
                                 device=ref.device)
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


class _Filled(NamedTuple):
    """A batch's deviations in the reduction dtype, and the staging buffer
    of half-precision tensors (None for others)."""
    flat: Tensor
    views: list[Tensor]
    low: tuple[Tensor, list[Tensor]] | None


def _fill(workspace: SPDWorkspace, pieces: list[Tensor],
          anchors: list[Tensor] | None, batch: _Batch,
          zero_pads: bool = True) -> _Filled:
    """Write ``pieces - anchors`` into the buffer.

    The padding is zeroed for chunk sums, unless ``zero_pads`` is False.
    """
    flat, views, pads = workspace.views(pieces, batch)
    if pieces[0].dtype == flat.dtype:
        if pads and zero_pads:
            # Other tensor lists share the buffer: padding is re-zeroed.
            torch._foreach_zero_(pads)
        torch._foreach_copy_(views, pieces)
        if anchors is not None:
            torch._foreach_sub_(views, anchors)
        return _Filled(flat, views, None)
    # Lists of one dtype and layout, then one conversion of the buffer:
    # a list op mixing dtypes would run a kernel per tensor on CUDA.
    low, low_views, low_pads = workspace.views(pieces, batch,
                                               pieces[0].dtype)
    if low_pads and zero_pads:
        torch._foreach_zero_(low_pads)
    torch._foreach_copy_(low_views, pieces)
    flat.copy_(low)
    if anchors is not None:
        torch._foreach_copy_(low_views, anchors)
        flat.sub_(low)
    return _Filled(flat, views, (low, low_views))


def _tensor_norms(piece_norms: list[Tensor], plan: _Plan, count: int,
                  workspace: SPDWorkspace) -> Tensor:
    """Per-tensor norms from the norms of their pieces, batches in order."""
    norms = _cat(piece_norms)
    if plan.piece_levels is None:
        return norms
    # Squares summed in float64 (where the device has it): no underflow.
    wide = torch.float64 if norms.device.type != 'mps' else norms.dtype
    squares = norms.to(wide).square()
    return _segment_sums(squares, plan.piece_levels, count,
                         workspace.zero(squares)).sqrt().to(norms.dtype)


def _multi_pre(params: list[Tensor], grads: list[Tensor],
               anchors: list[Tensor] | None,
               workspace: SPDWorkspace) -> SPDContext:
    plan = _plan(params)
    dots, norms = [], []
    for batch in plan.batches:
        pieces = _pieces(params, batch)
        filled = _fill(workspace, pieces,
                       None if anchors is None else _pieces(anchors, batch),
                       batch)
        norms.append(torch.stack(torch._foreach_norm(filled.views)))
        if filled.low is None:
            torch._foreach_mul_(filled.views, _pieces(grads, batch))
        else:
            low, low_views = filled.low
            torch._foreach_copy_(low_views, _pieces(grads, batch))
            filled.flat.mul_(low)
        # Pieces start on chunk boundaries and padding is zero.
        dots.append(filled.flat.view(-1, _CHUNK).sum(1))
    chunk_dots = _cat(dots)
    dot = _segment_sums(chunk_dots, plan.levels, len(params),
                        workspace.zero(chunk_dots))
    return SPDContext(-dot, _tensor_norms(norms, plan, len(params),
                                          workspace))


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
    norms, filled = [], None
    for batch in plan.batches:
        # Norms of the views only: the padding may hold anything here.
        filled = _fill(workspace, _pieces(params, batch),
                       None if anchors is None else _pieces(anchors, batch),
                       batch, zero_pads=False)
        norms.append(torch.stack(torch._foreach_norm(filled.views)))
    cur = _tensor_norms(norms, plan, len(params), workspace)
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
        if index != last:
            filled = _fill(
                workspace, pieces,
                None if anchors is None else _pieces(anchors, batch), batch,
                zero_pads=False)
        # s * (theta_new - a) for every tensor at once, then one subtraction:
        # theta_new - s * (theta_new - a).
        chunk_scale = scale.index_select(0, batch.owners)
        filled.flat.view(-1, _CHUNK).mul_(chunk_scale.unsqueeze(1))
        if filled.low is None:
            torch._foreach_sub_(pieces, filled.views)
        else:
            # Rounded to the weights' dtype before the subtraction, as
            # the per-tensor path does.
            low, low_views = filled.low
            low.copy_(filled.flat)
            torch._foreach_sub_(pieces, low_views)
    if stats is not None:
        stats.add(selected, ratio, (1 - scale) * cur, anchors)
