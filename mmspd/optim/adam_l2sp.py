"""Adam with an L2-SP penalty toward anchors (AdamL2SP).

L2-SP: Li, Grandvalet and Davoine, "Explicit Inductive Bias for Transfer
Learning with Convolutional Networks", ICML 2018
(https://arxiv.org/abs/1802.01483); the baseline SPD is compared with in
Tian, Huang and Kira, NeurIPS 2024.
"""
from __future__ import annotations

from typing import Any

import torch

from ._adam import AnchoredAdam


class AdamL2SP(AnchoredAdam):
    r"""Adam on the loss plus :math:`\frac{\alpha}{2}\|\theta - a\|^2`.

    The penalty's gradient :math:`\alpha (\theta - a)` is added to the
    gradient before the Adam update, every step, for every tensor;
    :math:`\alpha` is the group's ``weight_decay``. Anchors behave exactly as
    in :class:`~mmspd.optim.AdamSPD` (taken at the first step, kept in
    ``state[p]['anchor']``, ``anchor='zero'`` and the ``'pre'`` format).

    Args:
        params (Iterable): Parameters or param group dicts.
        lr (float): Learning rate. Defaults to 1e-3.
        betas (tuple[float, float]): Coefficients of the running averages of
            the gradient and its square. Defaults to (0.9, 0.999).
        eps (float): Added to the denominator. Defaults to 1e-8.
        weight_decay (float): Penalty strength :math:`\alpha`.
            Defaults to 0.
        amsgrad (bool): Use the AMSGrad variant. Defaults to False.
        anchor (str): ``'init'`` or ``'zero'``. Defaults to ``'init'``.
        foreach (bool, optional): False selects the per-tensor
            implementation. Defaults to None.
    """

    _strength = 'weight_decay (L2-SP alpha)'

    def _update(self, group: dict[str, Any], lists: dict[str, list],
                foreach: bool) -> None:
        alphas = lists['strengths']
        grads = lists['grads']
        if any(alphas):
            params, anchors = lists['params'], lists['anchors']
            if foreach:
                if anchors is None:
                    penalty = torch._foreach_mul(params, alphas)
                else:
                    penalty = torch._foreach_sub(params, anchors)
                    torch._foreach_mul_(penalty, alphas)
                torch._foreach_add_(penalty, grads)
                grads = penalty
            else:
                grads = [
                    grad.add(param if anchors is None else param - anchors[i],
                             alpha=alphas[i])
                    for i, (grad, param) in enumerate(zip(grads, params))
                ]
        self._adam(group, lists, foreach, grads)
