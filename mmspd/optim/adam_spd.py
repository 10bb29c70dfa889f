"""Adam with Selective Projection Decay (AdamSPD).

Tian, Huang and Kira, "Rethinking Weight Decay for Robust Fine-Tuning of
Foundation Models", NeurIPS 2024 (https://arxiv.org/abs/2411.01713); the
authors' reference code is github.com/GT-RIPL/Selective-Projection-Decay.
This implementation follows the same trajectory as a per-tensor
re-implementation of theirs (:mod:`mmspd.optim.adam_spd_reference`),
computed without host synchronisation and, by default, with multi-tensor
kernels.
"""
from __future__ import annotations

from typing import Any, ClassVar, Iterable

import torch
from torch import Tensor

from ._adam import AnchoredAdam
from ._checks import SPD_KEY, warn_strength_above_one
from ._spd import SPDStatistics, SPDWorkspace, spd_post, spd_pre


class AdamSPD(AnchoredAdam):
    r"""Adam followed by Selective Projection Decay toward anchors.

    For each parameter tensor, with anchor :math:`a`, gradient :math:`g`,
    weights :math:`\theta_{t-1}` and the plain Adam step
    :math:`\tilde\theta_t` (no weight decay):

    .. math::
        c_t &= -\langle g_t, \theta_{t-1} - a \rangle \\
        r_t &= \mathrm{clip}\Big(\frac{\|\tilde\theta_t - a\|
               - \|\theta_{t-1} - a\|}{\|\tilde\theta_t - a\|}, 0, 1\Big)
               \quad (0 \text{ when } \tilde\theta_t = a) \\
        \theta_t &= \tilde\theta_t - \lambda\, r_t\, [c_t < 0]\,
               (\tilde\theta_t - a)

    :math:`\lambda` is the group's ``weight_decay``; Adam itself applies no
    decay. Anchors are taken at the first step that updates a parameter (so
    after pre-trained weights or a checkpoint were loaded), stored as
    ``state[p]['anchor']``, saved with :meth:`state_dict` and restored by
    :meth:`load_state_dict`; :meth:`reset_anchors` re-takes them.

    Param groups may set ``anchor`` (``'init'`` or ``'zero'``, the latter for
    adapters / PEFT parameters: decay toward zero, no copy kept), ``spd``
    and any of the arguments below. ``spd=False`` gives a group AdamW's
    decoupled weight decay instead of SPD (:math:`\theta \leftarrow
    \theta (1 - \mathrm{lr}\, \lambda)` before the Adam step, exactly
    as ``torch.optim.AdamW``), ``weight_decay`` being its coefficient: e.g.
    a new, randomly initialised head beside a pre-trained backbone. The
    authors' format is accepted too: a group key ``'pre'`` holding a list of
    anchor tensors, or None for zero anchors. Complex parameters are
    stepped as real views (``torch.view_as_real``), as in
    ``torch.optim.Adam``. A strength above 1 warns: it can pull a tensor
    past its anchor.

    Args:
        params (Iterable): Parameters or param group dicts.
        lr (float): Learning rate. Defaults to 1e-3.
        betas (tuple[float, float]): Coefficients of the running averages of
            the gradient and its square. Defaults to (0.9, 0.999).
        eps (float): Added to the denominator. Defaults to 1e-8.
        weight_decay (float): SPD strength :math:`\lambda`. Defaults to 0.
        amsgrad (bool): Use the AMSGrad variant. Defaults to False.
        anchor (str): ``'init'`` or ``'zero'``. Defaults to ``'init'``.
        foreach (bool, optional): False selects the per-tensor reference
            implementation; None or True the multi-tensor one.
            Defaults to None.

    Example:
        >>> optimizer = AdamSPD(model.parameters(), lr=1e-4,
        ...                     weight_decay=0.5)
        >>> optimizer = AdamSPD([
        ...     {'params': backbone.parameters()},        # SPD, lambda 0.5
        ...     {'params': head.parameters(), 'spd': False,
        ...      'weight_decay': 0.01}],                  # AdamW decay
        ...     lr=1e-4, weight_decay=0.5)
        >>> # In an MMEngine / MMSegmentation config:
        >>> optim_wrapper = dict(type='OptimWrapper', optimizer=dict(
        ...     type='AdamSPD', lr=6e-5, betas=(0.9, 0.999),
        ...     weight_decay=0.5))
    """

    _extra_defaults: ClassVar[dict[str, Any]] = {SPD_KEY: True}

    def __init__(self,
                 params: Iterable,
                 lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8,
                 weight_decay: float = 0.0,
                 amsgrad: bool = False,
                 *,
                 anchor: str = 'init',
                 foreach: bool | None = None) -> None:
        self._spd_stats = SPDStatistics()
        self._spd_workspace = SPDWorkspace()
        super().__init__(
            params,
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            anchor=anchor,
            foreach=foreach)
        self._spd_warned = warn_strength_above_one(
            (group['weight_decay'] for group in self.param_groups
             if group[SPD_KEY]), type(self).__name__)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self.defaults.setdefault(SPD_KEY, True)
        self.__dict__.setdefault('_spd_stats', SPDStatistics())
        self.__dict__.setdefault('_spd_workspace', SPDWorkspace())
        self.__dict__.setdefault('_spd_warned', False)

    def spd_statistics(self) -> dict[str, Tensor]:
        """Statistics of the last step; see :meth:`SPDStatistics.summary`."""
        return self._spd_stats.summary()

    def _begin_step(self) -> None:
        self._spd_stats.begin()

    def _end_step(self) -> None:
        self._spd_stats.finish()

    def _update(self, group: dict[str, Any], lists: dict[str, list],
                foreach: bool) -> None:
        strengths = lists['strengths']
        if not group[SPD_KEY]:
            self._decay(group['lr'], lists['params'], strengths, foreach)
            self._adam(group, lists, foreach)
            return
        if not self._spd_warned:
            self._spd_warned = warn_strength_above_one(
                strengths, type(self).__name__)
        spd = [i for i, lam in enumerate(strengths) if lam != 0]
        if not spd:
            self._adam(group, lists, foreach)
            return
        params, grads, anchors = lists['params'], lists['grads'], lists[
            'anchors']
        if len(spd) < len(params):
            params = [params[i] for i in spd]
            grads = [grads[i] for i in spd]
            anchors = None if anchors is None else [anchors[i] for i in spd]
            strengths = [strengths[i] for i in spd]
        workspace = self._spd_workspace if foreach else None
        ctx = spd_pre(params, grads, anchors, workspace)
        self._adam(group, lists, foreach)
        spd_post(params, anchors, strengths, ctx, self._spd_stats, workspace)

    @staticmethod
    def _decay(lr: float, params: list[Tensor], strengths: list[float],
               foreach: bool) -> None:
        """AdamW's decoupled decay, ``param *= 1 - lr * weight_decay``."""
        factors = [1 - lr * lam for lam in strengths]
        if all(factor == 1 for factor in factors):
            return
        if not foreach:
            for param, factor in zip(params, factors):
                param.mul_(factor)
        elif all(factor == factors[0] for factor in factors):
            torch._foreach_mul_(params, factors[0])
        else:
            torch._foreach_mul_(params, factors)
