"""A plain per-tensor re-implementation of the authors' AdamSPD algorithm.

Written from the algorithm in Tian, Huang and Kira (NeurIPS 2024) and the
behaviour of the authors' ``AdamSPD`` (github.com/GT-RIPL/Selective-
Projection-Decay): Adam without decay, then one Python ``if`` on the sign of
``-<g, theta - a>`` per tensor. Anchors come from the group key ``'pre'`` (a
list, or None for zero anchors), and every parameter keeps an extra ``hyper``
buffer as theirs does. The one deliberate difference: ``r`` is 0 when
``|theta_new - a| == 0``, where theirs divides by zero.

It is the yardstick :class:`~mmspd.optim.AdamSPD` is tested against
(``tests/test_optim``) and timed against (``tools/benchmark_optimizer.py``);
train with :class:`~mmspd.optim.AdamSPD`, which follows the same trajectory
without host synchronisation. Not registered.
"""
import math
from typing import Iterable

import torch
from torch.optim import Optimizer


class ReferenceAdamSPD(Optimizer):
    """Per-tensor AdamSPD mirroring the authors' control flow.

    Args:
        params (Iterable): Param groups, each with a ``'pre'`` key: a list
            of anchors (one per parameter) or None for zero anchors.
        lr (float): Learning rate. Defaults to 1e-3.
        betas (tuple[float, float]): Adam coefficients.
            Defaults to (0.9, 0.999).
        eps (float): Added to the denominator. Defaults to 1e-8.
        weight_decay (float): SPD strength. Defaults to 0.
        amsgrad (bool): Use AMSGrad. Defaults to False.
    """

    def __init__(self,
                 params: Iterable,
                 lr: float = 1e-3,
                 betas: tuple = (0.9, 0.999),
                 eps: float = 1e-8,
                 weight_decay: float = 0.0,
                 amsgrad: bool = False) -> None:
        defaults = {'lr': lr, 'betas': betas, 'eps': eps,
                    'weight_decay': weight_decay, 'amsgrad': amsgrad}
        super().__init__(params, defaults)
        # How often the projection branch ran, out of how many decisions.
        self.selected = 0
        self.decisions = 0

    @staticmethod
    def _ratio(new_param: torch.Tensor, param: torch.Tensor,
               anchor: torch.Tensor) -> torch.Tensor:
        cur = torch.norm(new_param - anchor)
        prev = torch.norm(param - anchor)
        if cur == 0:
            return torch.zeros(())
        return torch.nn.functional.hardtanh((cur - prev) / cur, 0.0, 1.0)

    @torch.no_grad()
    def step(self) -> None:
        """Perform a single optimization step."""
        for group in self.param_groups:
            beta1, beta2 = group['betas']
            for i, param in enumerate(group['params']):
                if param.grad is None:
                    continue
                grad = param.grad
                state = self.state[param]
                if len(state) == 0:
                    state['step'] = 0
                    state['exp_avg'] = torch.zeros_like(param)
                    state['exp_avg_sq'] = torch.zeros_like(param)
                    if group['amsgrad']:
                        state['max_exp_avg_sq'] = torch.zeros_like(param)
                    # Allocated by the authors' code and never read.
                    state['hyper'] = torch.zeros_like(param)
                state['step'] += 1
                exp_avg, exp_avg_sq = state['exp_avg'], state['exp_avg_sq']
                exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                bias_correction1 = 1 - beta1**state['step']
                bias_correction2 = 1 - beta2**state['step']
                if group['amsgrad']:
                    torch.maximum(state['max_exp_avg_sq'], exp_avg_sq,
                                  out=state['max_exp_avg_sq'])
                    second = state['max_exp_avg_sq']
                else:
                    second = exp_avg_sq
                denom = (second.sqrt() /
                         math.sqrt(bias_correction2)).add_(group['eps'])
                step_size = group['lr'] / bias_correction1
                new_param = param - step_size * exp_avg / denom
                if group['pre'] is None:
                    anchor = torch.zeros_like(param)
                else:
                    anchor = group['pre'][i]
                condition = -torch.sum(grad * (param - anchor))
                self.decisions += 1
                if condition < 0.0:
                    self.selected += 1
                    ratio = self._ratio(new_param, param, anchor)
                    new_param = new_param - group['weight_decay'] * ratio * (
                        new_param - anchor)
                param.copy_(new_param)
