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
per-tensor reference path, here, and a multi-tensor path in
:mod:`mmspd.optim._spd_multi`, which an :class:`SPDWorkspace` selects. The
factors and statistics both paths share are in :mod:`mmspd.optim._spd_rule`.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from ._spd_multi import SPDWorkspace, _multi_post, _multi_pre
from ._spd_rule import (
    SPDContext,
    SPDStatistics,
    _not_skipped,
    spd_factor,
    stat_dtype,
)

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
