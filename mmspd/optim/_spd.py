"""The Selective Projection Decay rule, shared by every optimizer in mmspd.

Tian, Huang and Kira, "Rethinking Weight Decay for Robust Fine-Tuning of
Foundation Models", NeurIPS 2024 (https://arxiv.org/abs/2411.01713).

For one parameter tensor with anchor ``a``, gradient ``g``, weights before the
step ``theta`` and the base optimizer's undecayed update ``theta_new``::

    c = -<g, theta - a>
    if c < 0:
        r = clip((|theta_new - a| - |theta - a|) / |theta_new - a|, 0, 1)
        theta_new = theta_new - lam * r * (theta_new - a)

The rule is split in two halves around the base update: :func:`spd_pre`
(``c`` and ``|theta - a|``, from the weights before the step) and
:func:`spd_post` (``|theta_new - a|`` and the projection). Each half has a
per-tensor reference path and a multi-tensor path.

The multi-tensor path copies the deviations of a list of tensors into one
flat scratch buffer in which every tensor starts on a chunk boundary. Per
tensor sums become chunk sums plus one ``index_add_``, and per-tensor
factors become per-chunk factors applied to the whole buffer in one op, so
the number of kernels per step does not depend on the number of tensors and
nothing waits for the device: the condition ``c < 0`` is a 0/1 factor.
Reductions of float16/bfloat16 tensors run in float32.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
from torch import Tensor

# Every tensor starts on a chunk boundary of the scratch buffer.
_CHUNK = 256


def spd_factor(c: Tensor, prev: Tensor, cur: Tensor,
               lam: float | Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Turn the per-tensor quantities of the rule into projection factors.

    Works element-wise, so ``c``, ``prev`` and ``cur`` may be 0-dim tensors
    (one parameter) or 1-D tensors (one entry per parameter).

    Args:
        c (Tensor): ``-<g, theta - a>``.
        prev (Tensor): ``|theta - a|``.
        cur (Tensor): ``|theta_new - a|``.
        lam (float | Tensor): SPD strength, one for all or one per entry.

    Returns:
        tuple[Tensor, Tensor, Tensor]: ``s = lam * r * [c < 0]`` (the final
        weights are ``theta_new - s * (theta_new - a)``), the ratio ``r`` and
        the 0/1 selection ``[c < 0]``, all in ``cur``'s dtype.
    """
    nonzero = cur > 0
    # r is 0 when theta_new sits on the anchor: nothing is left to project.
    ratio = (cur - prev) / torch.where(nonzero, cur, torch.ones_like(cur))
    ratio = torch.where(nonzero, ratio.clamp(0, 1), torch.zeros_like(cur))
    selected = (c < 0).to(cur.dtype)
    return ratio * selected * lam, ratio, selected


def stat_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype SPD reduces tensors of ``dtype`` in.

    Products of small half-precision gradients and deviations underflow, so
    float16 and bfloat16 are reduced in float32.
    """
    return torch.float64 if dtype == torch.float64 else torch.float32


class SPDStatistics:
    """Statistics of the last SPD step, kept as tensors.

    Collected while the step runs from quantities the rule computes anyway,
    so they cost no pass over the weights and no host synchronisation.
    Only tensors that SPD processed count: those with a gradient in groups
    whose strength is above zero. A step skipped by a loss scaler
    (``found_inf``) leaves the previous step's figures in place.
    """

    def __init__(self) -> None:
        self._parts: list[Tensor] = []
        self._anchors: list[list[Tensor]] = []
        self._totals: Tensor | None = None
        self._last_anchors: list[list[Tensor]] = []

    def begin(self) -> None:
        """Start collecting a new step."""
        self._parts = []
        self._anchors = []

    def add(self, selected: Tensor, ratio: Tensor, deviation: Tensor,
            anchors: Sequence[Tensor] | None) -> None:
        """Record one batch of tensors.

        Args:
            selected (Tensor): 1-D 0/1 selection per tensor.
            ratio (Tensor): 1-D ratio ``r`` per tensor.
            deviation (Tensor): 1-D ``|theta - a|`` per tensor after the step.
            anchors (Sequence[Tensor], optional): The anchors, or None for
                zero anchors.
        """
        part = torch.stack([
            torch.full_like(selected, 1.0).sum(),
            selected.sum(), (ratio * selected).sum(),
            deviation.square().sum()
        ]).to(torch.float64)
        self._parts.append(part)
        if anchors is not None:
            self._anchors.append(list(anchors))

    def finish(self, found_inf: Tensor | None = None) -> None:
        """Close the step; its figures replace the previous step's.

        Args:
            found_inf (Tensor, optional): A loss scaler's overflow flag; a
                nonzero value marks the step as skipped. Defaults to None.
        """
        if not self._parts:
            return
        device = self._parts[0].device
        totals = torch.stack([p.to(device) for p in self._parts]).sum(0)
        if found_inf is not None:
            skipped = found_inf.to(device, non_blocking=True).reshape(
                ()) != 0
            previous = self._totals if (
                self._totals is not None
                and self._totals.device == device) else torch.zeros_like(
                    totals)
            totals = torch.where(skipped, previous, totals)
        self._totals = totals
        self._last_anchors = self._anchors
        self._parts, self._anchors = [], []

    def summary(self) -> dict[str, Tensor]:
        """Statistics of the last step as 0-dim tensors.

        Returns:
            dict[str, Tensor]: ``selected`` (fraction of tensors with
            ``c < 0``), ``ratio`` (mean ``r`` over selected tensors, 0 when
            none was selected), ``deviation`` (``|theta - a|`` over all
            processed tensors) and ``rel_deviation`` (``deviation`` divided
            by ``|a|`` over the same tensors; NaN when all anchors are zero).
            Empty before the first step that processed a tensor.
        """
        if self._totals is None:
            return {}
        totals = self._totals
        anchor_sq = totals.new_zeros(())
        for anchors in self._last_anchors:
            # Anchor norms are read here, when statistics are asked for,
            # rather than in every step.
            norms = torch._foreach_norm(anchors)
            anchor_sq = anchor_sq + torch.stack(norms).to(
                totals.device, torch.float64).square().sum()
        count, selected, ratio_sum, dev_sq = totals.unbind()
        deviation = dev_sq.sqrt()
        return {
            'selected': selected / count.clamp(min=1),
            'ratio': ratio_sum / selected.clamp(min=1),
            'deviation': deviation,
            'rel_deviation': torch.where(
                anchor_sq > 0, deviation / anchor_sq.sqrt().clamp(min=1e-300),
                torch.full_like(deviation, float('nan'))),
        }


class SPDContext(NamedTuple):
    """What :func:`spd_pre` hands to :func:`spd_post` for one tensor list."""
    c: Tensor
    prev: Tensor


def _not_skipped(found_inf: Tensor | None, like: Tensor) -> Tensor | None:
    if found_inf is None:
        return None
    # GradScaler's flag has shape (1,); a 0-dim factor broadcasts anywhere.
    flag = found_inf.to(like.device, non_blocking=True).reshape(())
    return (flag == 0).to(like.dtype)


# ----------------------------------------------------------------------------
# Per-tensor reference path.


def _single_pre(params: list[Tensor], grads: list[Tensor],
                anchors: list[Tensor] | None) -> SPDContext:
    cs, prevs = [], []
    for i, (param, grad) in enumerate(zip(params, grads)):
        dtype = stat_dtype(param.dtype)
        diff = param.to(dtype)
        if anchors is not None:
            diff = diff - anchors[i].to(dtype)
        cs.append(-torch.sum(grad.to(dtype) * diff))
        prevs.append(torch.linalg.vector_norm(diff))
    return SPDContext(torch.stack(cs), torch.stack(prevs))


def _single_post(params: list[Tensor], anchors: list[Tensor] | None,
                 lam: float | Sequence[float], ctx: SPDContext,
                 stats: SPDStatistics | None,
                 found_inf: Tensor | None) -> None:
    ratios, selections, deviations = [], [], []
    for i, param in enumerate(params):
        dtype = stat_dtype(param.dtype)
        diff = param.to(dtype)
        if anchors is not None:
            diff = diff - anchors[i].to(dtype)
        cur = torch.linalg.vector_norm(diff)
        lam_i = lam if isinstance(lam, (int, float)) else lam[i]
        c = ctx.c[i]
        keep = _not_skipped(found_inf, c)
        scale, ratio, selected = spd_factor(c, ctx.prev[i], cur, lam_i)
        if keep is not None:
            scale, selected = scale * keep, selected * keep
        param.sub_((diff * scale).to(param.dtype))
        ratios.append(ratio)
        selections.append(selected)
        deviations.append((1 - scale) * cur)
    if stats is not None:
        stats.add(torch.stack(selections), torch.stack(ratios),
                  torch.stack(deviations), anchors)


# ----------------------------------------------------------------------------
# Multi-tensor path.


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
                               torch.tensor(owners, dtype=torch.long,
                                            device=device)))
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
        if like.device.type == 'cuda':
            # A copy from pinned memory does not wait for the device.
            tensor = torch.tensor(lam, dtype=like.dtype,
                                  pin_memory=True).to(like.device,
                                                      non_blocking=True)
        else:
            tensor = torch.tensor(lam, dtype=like.dtype, device=like.device)
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


# ----------------------------------------------------------------------------
# Entry points.


def spd_pre(params: list[Tensor],
            grads: list[Tensor],
            anchors: list[Tensor] | None,
            workspace: SPDWorkspace | None = None) -> SPDContext:
    """First half of the rule: from the weights before the base update.

    Args:
        params (list[Tensor]): Weights before the step; one device and dtype
            when ``workspace`` is given.
        grads (list[Tensor]): Their gradients (clipped; scaled by a positive
            loss scale is fine too: only the sign of ``c`` is used).
        anchors (list[Tensor], optional): Anchors, or None for zero anchors.
        workspace (SPDWorkspace, optional): Scratch memory of the
            multi-tensor path; None selects the per-tensor path.
            Defaults to None.

    Returns:
        SPDContext: Input of :func:`spd_post`.
    """
    if workspace is not None:
        return _multi_pre(params, grads, anchors, workspace)
    return _single_pre(params, grads, anchors)


def spd_post(params: list[Tensor],
             anchors: list[Tensor] | None,
             lam: float | Sequence[float],
             ctx: SPDContext,
             stats: SPDStatistics | None = None,
             workspace: SPDWorkspace | None = None,
             found_inf: Tensor | None = None) -> None:
    """Second half of the rule: project the updated weights in place.

    Args:
        params (list[Tensor]): Weights after the base update.
        anchors (list[Tensor], optional): Anchors, or None for zero anchors.
        lam (float | Sequence[float]): SPD strength, one for all tensors or
            one per tensor.
        ctx (SPDContext): Output of :func:`spd_pre` for the same tensors.
        stats (SPDStatistics, optional): Where to record statistics.
            Defaults to None.
        workspace (SPDWorkspace, optional): As for :func:`spd_pre`.
            Defaults to None.
        found_inf (Tensor, optional): A loss scaler's overflow flag; where
            nonzero, the step was skipped and SPD changes nothing.
            Defaults to None.
    """
    if workspace is not None:
        _multi_post(params, anchors, lam, ctx, stats, workspace, found_inf)
    else:
        _single_post(params, anchors, lam, ctx, stats, found_inf)
