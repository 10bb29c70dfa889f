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
per-tensor reference path and a multi-tensor path built on
``torch._foreach_*``. Neither synchronises with the host: the condition
``c < 0`` becomes a 0/1 factor, so ``step()`` also runs on ``meta`` tensors.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
from torch import Tensor

# Per-tensor dot products are computed as sums over fixed-size chunks of one
# flat scratch buffer, in which every tensor starts on a chunk boundary.
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


def _stat_dtype(dtype: torch.dtype) -> torch.dtype:
    # Reductions of half-precision tensors are kept in float32.
    return torch.float64 if dtype == torch.float64 else torch.float32


class SPDStatistics:
    """Statistics of the last SPD step, kept as tensors.

    Collected while the step runs from quantities the rule computes anyway,
    so they cost no pass over the weights and no host synchronisation.
    Only tensors that SPD processed count: those with a gradient in groups
    whose strength is above zero.
    """

    def __init__(self) -> None:
        self._parts: list[tuple[Tensor, Tensor, Tensor, Tensor,
                                list[Tensor] | None]] = []
        self._last: list | None = None

    def begin(self) -> None:
        """Start collecting a new step."""
        self._parts = []

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
        count = torch.full_like(selected, 1.0).sum()
        self._parts.append((count, selected.sum(), (ratio * selected).sum(),
                            deviation.square().sum(),
                            None if anchors is None else list(anchors)))

    def finish(self) -> None:
        """Close the step; its figures replace the previous step's."""
        self._last = self._parts
        self._parts = []

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
        if not self._last:
            return {}
        device = self._last[0][0].device
        totals = torch.stack([
            torch.stack(part[:4]).to(device, torch.float64)
            for part in self._last
        ]).sum(0)
        anchor_sq = totals.new_zeros(())
        for part in self._last:
            if part[4]:
                # Anchor norms are read here, when statistics are asked for,
                # rather than in every step.
                norms = torch._foreach_norm(part[4])
                anchor_sq = anchor_sq + torch.stack(norms).to(
                    device, torch.float64).square().sum()
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


# ----------------------------------------------------------------------------
# Per-tensor reference path.


def _single_pre(params: list[Tensor], grads: list[Tensor],
                anchors: list[Tensor] | None) -> SPDContext:
    cs, prevs = [], []
    for i, (param, grad) in enumerate(zip(params, grads)):
        diff = param if anchors is None else param - anchors[i]
        dtype = _stat_dtype(param.dtype)
        cs.append(-torch.sum(grad * diff, dtype=dtype))
        prevs.append(torch.linalg.vector_norm(diff, dtype=dtype))
    return SPDContext(torch.stack(cs), torch.stack(prevs))


def _single_post(params: list[Tensor], anchors: list[Tensor] | None,
                 lam: float | Sequence[float], ctx: SPDContext,
                 stats: SPDStatistics | None) -> None:
    scales, ratios, selections, deviations = [], [], [], []
    for i, param in enumerate(params):
        diff = param if anchors is None else param - anchors[i]
        cur = torch.linalg.vector_norm(diff, dtype=_stat_dtype(param.dtype))
        lam_i = lam if isinstance(lam, (int, float)) else lam[i]
        scale, ratio, selected = spd_factor(ctx.c[i], ctx.prev[i], cur,
                                            lam_i)
        param.sub_(diff * scale.to(param.dtype))
        scales.append(scale)
        ratios.append(ratio)
        selections.append(selected)
        deviations.append((1 - scale) * cur)
    if stats is not None:
        stats.add(torch.stack(selections), torch.stack(ratios),
                  torch.stack(deviations), anchors)


# ----------------------------------------------------------------------------
# Multi-tensor path.


class _Batch(NamedTuple):
    start: int
    stop: int
    numels: list[int]
    padded: list[int]
    chunks: Tensor  # chunks per tensor, on the tensors' device
    total: int


# Scratch memory is bounded: tensors are processed in batches of at most this
# many elements (or one tensor, if larger).
_BATCH_ELEMENTS = 1 << 23
_plans: dict[tuple, list[_Batch]] = {}


def _plan(tensors: list[Tensor]) -> list[_Batch]:
    key = (tensors[0].device, tuple(t.numel() for t in tensors))
    plan = _plans.get(key)
    if plan is not None:
        return plan
    if len(_plans) > 64:  # parameter sets change rarely; stay small
        _plans.clear()
    padded = [-(-n // _CHUNK) * _CHUNK for n in key[1]]
    plan, start, size = [], 0, 0
    for i, length in enumerate(padded + [None]):
        if i == len(padded) or (size and size + length > _BATCH_ELEMENTS):
            chunks = torch.tensor([n // _CHUNK for n in padded[start:i]],
                                  device=key[0])
            plan.append(_Batch(start, i, list(key[1][start:i]),
                               padded[start:i], chunks, size))
            start, size = i, 0
        if length is not None:
            size += length
    _plans[key] = plan
    return plan


class SPDWorkspace:
    """Scratch memory of the multi-tensor path, reused from step to step.

    One flat buffer per device and dtype, of at most about 8 M elements (or
    the largest tensor). Reusing it spares a fresh allocation every step,
    which on CPU costs page faults over the whole buffer. Copies of an
    optimizer start with an empty workspace.
    """

    def __init__(self) -> None:
        self._buffers: dict[tuple, Tensor] = {}

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self._buffers = {}

    def views(self, tensors: list[Tensor],
              batch: _Batch) -> tuple[Tensor, list[Tensor]]:
        """A flat buffer with a view shaped like each tensor, padding 0."""
        ref = tensors[0]
        key = (ref.device, ref.dtype)
        buffer = self._buffers.get(key)
        if buffer is None or buffer.numel() < batch.total:
            buffer = torch.empty(batch.total, dtype=ref.dtype,
                                 device=ref.device)
            self._buffers[key] = buffer
        flat = buffer[:batch.total]
        views, pads = [], []
        for piece, tensor, numel, padded in zip(
                flat.split(batch.padded), tensors, batch.numels,
                batch.padded):
            views.append(piece[:numel].view(tensor.shape))
            if padded > numel:
                pads.append(piece[numel:])
        if pads:
            torch._foreach_zero_(pads)
        return flat, views


def _fill_diff(out: list[Tensor], params: list[Tensor],
               anchors: list[Tensor]) -> None:
    torch._foreach_copy_(out, params)
    torch._foreach_sub_(out, anchors)


def _multi_pre(params: list[Tensor], grads: list[Tensor],
               anchors: list[Tensor] | None,
               workspace: SPDWorkspace) -> SPDContext:
    dtype = _stat_dtype(params[0].dtype)
    dots, prevs = [], []
    for batch in _plan(params):
        part = slice(batch.start, batch.stop)
        flat, views = workspace.views(params[part], batch)
        if anchors is None:
            torch._foreach_copy_(views, params[part])
        else:
            _fill_diff(views, params[part], anchors[part])
            prevs.extend(torch._foreach_norm(views, dtype=dtype))
        torch._foreach_mul_(views, grads[part])
        # Per-tensor dot products: sums over chunks, then over each tensor's
        # chunks (tensors start on chunk boundaries, padding is zero).
        chunk_sums = flat.view(-1, _CHUNK).sum(1, dtype=dtype)
        dots.append(
            torch.segment_reduce(chunk_sums, 'sum', lengths=batch.chunks))
    if anchors is None:
        prevs = torch._foreach_norm(params, dtype=dtype)
    dots = dots[0] if len(dots) == 1 else torch.cat(dots)
    return SPDContext(-dots, torch.stack(prevs))


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
        tensor = torch.tensor(lam, dtype=like.dtype, device=like.device)
        _strength_tensors[key] = tensor
    return tensor


_strength_tensors: dict[tuple, Tensor] = {}


def _multi_post(params: list[Tensor], anchors: list[Tensor] | None,
                lam: float | Sequence[float], ctx: SPDContext,
                stats: SPDStatistics | None,
                workspace: SPDWorkspace) -> None:
    dtype = _stat_dtype(params[0].dtype)
    if anchors is None:
        cur = torch._foreach_norm(params, dtype=dtype)
    else:
        cur = []
        for batch in _plan(params):
            part = slice(batch.start, batch.stop)
            _, views = workspace.views(params[part], batch)
            _fill_diff(views, params[part], anchors[part])
            cur.extend(torch._foreach_norm(views, dtype=dtype))
    cur = torch.stack(cur)
    scale, ratio, selected = spd_factor(ctx.c, ctx.prev, cur,
                                        _strengths(lam, cur))
    if anchors is None:
        keep = (1 - scale).to(params[0].dtype)
        torch._foreach_mul_(params, list(keep.unbind()))
    else:
        # theta_new - s * (theta_new - a), in one pass over the weights.
        weights = scale.to(params[0].dtype)
        torch._foreach_lerp_(params, anchors, list(weights.unbind()))
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
        grads (list[Tensor]): Their (unscaled, clipped) gradients.
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
             workspace: SPDWorkspace | None = None) -> None:
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
    """
    if workspace is not None:
        _multi_post(params, anchors, lam, ctx, stats, workspace)
    else:
        _single_post(params, anchors, lam, ctx, stats)
