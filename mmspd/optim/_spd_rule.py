"""The per-tensor quantities of the Selective Projection Decay rule.

:func:`spd_factor` turns the quantities of the rule (see
:mod:`mmspd.optim._spd`) into projection factors, :func:`stat_dtype` says
what dtype they are reduced in, and :class:`SPDStatistics` collects the
figures of a step from them. The per-tensor path (:mod:`mmspd.optim._spd`)
and the multi-tensor path (:mod:`mmspd.optim._spd_multi`) share them.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
from torch import Tensor


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


def real_view(tensor: Tensor) -> Tensor:
    """A complex tensor as a real view (``view_as_real``), others as is.

    torch's optimizers step a complex parameter as the real tensor of its
    real and imaginary parts; SPD measures and projects that same tensor.
    """
    return torch.view_as_real(tensor) if tensor.is_complex() else tensor


def refuse_sharded(params: Sequence[Tensor]) -> None:
    """Raise ValueError for parameters sharded across ranks.

    SPD decides per layer from the whole tensor. An FSDP flat parameter
    holds a shard of several layers and a DTensor a shard of one; the rule
    on a shard would decide per shard and rank.
    """
    dtensor: type | tuple = ()
    if torch.distributed.is_available():
        try:
            from torch.distributed.tensor import DTensor as dtensor
        except ImportError:  # pragma: no cover - torch < 2.5
            pass
    for param in params:
        # FSDP marks its flat parameters (FlatParameter is a Parameter
        # with this flag); DTensor is a class of its own.
        if getattr(param, '_is_flat_param', False) or isinstance(
                param, dtensor):
            raise ValueError(
                f'SPD got a sharded parameter ({type(param).__name__} of '
                f'shape {tuple(param.shape)}, from FSDP or DTensor): it '
                'decides per layer from whole tensors and is not '
                'shard-aware yet. Train with DDP (MMDistributedDataParallel)'
                ' instead.')


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
