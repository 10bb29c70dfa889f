"""The Adam update without weight decay, on lists of tensors.

Kingma and Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015, with
the AMSGrad variant of Reddi et al., ICLR 2018, written the way
``torch.optim.Adam`` computes it. :func:`adam_single_tensor` is the
per-tensor reference path; :func:`adam_multi_tensor` uses PyTorch's fused
Adam kernel where one takes CPU step counters (CPU), for the tensors that
kernel reads correctly (dense, laid out like their gradient and state), and
``torch._foreach_*`` ops for all others.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from ._segments import is_dense

# Devices whose fused Adam kernel accepts the CPU step counters used here
# (PyTorch has a CPU kernel since 2.4).
_FUSED_DEVICES = ('cpu', ) if tuple(
    int(v) for v in torch.__version__.split('.')[:2]) >= (2, 4) else ()


def adam_single_tensor(params: list[Tensor], grads: list[Tensor],
                       exp_avgs: list[Tensor], exp_avg_sqs: list[Tensor],
                       max_exp_avg_sqs: list[Tensor],
                       state_steps: list[Tensor], *, amsgrad: bool,
                       beta1: float, beta2: float, lr: float,
                       eps: float) -> None:
    """Adam (no weight decay), one tensor at a time; the reference path."""
    for i, param in enumerate(params):
        grad, exp_avg, exp_avg_sq = grads[i], exp_avgs[i], exp_avg_sqs[i]
        step_t = state_steps[i]
        step_t += 1
        # Step counters live on the CPU, so reading one is no device sync.
        step = step_t.item()
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        bias_correction1 = 1 - beta1**step
        bias_correction2 = 1 - beta2**step
        if amsgrad:
            torch.maximum(max_exp_avg_sqs[i], exp_avg_sq,
                          out=max_exp_avg_sqs[i])
            second = max_exp_avg_sqs[i]
        else:
            second = exp_avg_sq
        denom = (second.sqrt() / math.sqrt(bias_correction2)).add_(eps)
        param.addcdiv_(exp_avg, denom, value=-lr / bias_correction1)


def _fusable(*tensors: Tensor) -> bool:
    """Whether a fused kernel may treat the tensors as flat arrays.

    PyTorch's fused Adam reads every tensor as one dense block of memory
    laid out like the parameter; a strided view, or a gradient laid out
    differently from its parameter, would be read wrongly.
    """
    stride = tensors[0].stride()
    return is_dense(tensors[0]) and all(t.stride() == stride
                                        for t in tensors[1:])


def adam_multi_tensor(params: list[Tensor], grads: list[Tensor],
                      exp_avgs: list[Tensor], exp_avg_sqs: list[Tensor],
                      max_exp_avg_sqs: list[Tensor],
                      state_steps: list[Tensor], *, amsgrad: bool,
                      beta1: float, beta2: float, lr: float, eps: float,
                      fused: bool | None = None) -> None:
    """Adam (no weight decay) on tensors of one device and dtype.

    Args:
        fused (bool, optional): Use PyTorch's fused Adam kernel for the
            tensors it can read (dense, laid out like their parameter). None
            picks it where it is available for the device. Defaults to None.
    """
    if fused is None:
        fused = params[0].device.type in _FUSED_DEVICES
    lists = [params, grads, exp_avgs, exp_avg_sqs]
    if amsgrad:
        lists.append(max_exp_avg_sqs)
    kwargs = dict(amsgrad=amsgrad, beta1=beta1, beta2=beta2, lr=lr, eps=eps)
    if not fused:
        _adam_foreach(*lists, state_steps, **kwargs)
        return
    flags = [_fusable(*tensors) for tensors in zip(*lists)]
    if all(flags):
        _adam_fused(*lists, state_steps, **kwargs)
        return
    for wanted, func in ((True, _adam_fused), (False, _adam_foreach)):
        index = [i for i, flag in enumerate(flags) if flag == wanted]
        if index:
            func(*([tensors[i] for i in index] for tensors in lists),
                 [state_steps[i] for i in index], **kwargs)


def _adam_fused(params: list[Tensor], grads: list[Tensor],
                exp_avgs: list[Tensor], exp_avg_sqs: list[Tensor],
                *rest: list[Tensor], amsgrad: bool, beta1: float,
                beta2: float, lr: float, eps: float) -> None:
    max_exp_avg_sqs = rest[0] if amsgrad else []
    state_steps = rest[-1]
    torch._foreach_add_(state_steps, 1)
    torch._fused_adam_(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs,
                       state_steps, lr=lr, beta1=beta1, beta2=beta2,
                       weight_decay=0.0, eps=eps, amsgrad=amsgrad,
                       maximize=False)


def _adam_foreach(params: list[Tensor], grads: list[Tensor],
                  exp_avgs: list[Tensor], exp_avg_sqs: list[Tensor],
                  *rest: list[Tensor], amsgrad: bool, beta1: float,
                  beta2: float, lr: float, eps: float) -> None:
    state_steps = rest[-1]
    torch._foreach_add_(state_steps, 1)
    torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
    torch._foreach_mul_(exp_avg_sqs, beta2)
    torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2)
    # All counters are read in one go from the CPU: no per-tensor op and no
    # device sync. With denom = sqrt(v) + eps * sqrt(bc2), the update is
    # -lr * sqrt(bc2) / bc1 * m / denom, the same as torch.optim.Adam's.
    steps = torch.stack(state_steps).double()
    correction2 = (1 - beta2**steps).sqrt()
    step_sizes = (-lr * correction2 / (1 - beta1**steps)).tolist()
    eps_scaled = (eps * correction2).tolist()
    if amsgrad:
        torch._foreach_maximum_(rest[0], exp_avg_sqs)
        second = rest[0]
    else:
        second = exp_avg_sqs
    denom = torch._foreach_sqrt(second)
    torch._foreach_add_(denom, eps_scaled)
    torch._foreach_addcdiv_(params, exp_avgs, denom, step_sizes)
