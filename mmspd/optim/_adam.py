"""Adam without decay, and the anchor bookkeeping shared by AdamSPD/L2-SP.

:class:`AnchoredAdam` checks hyper-parameters, keeps the Adam state and the
anchors, and merges parameter groups into tensor lists; the Adam update
itself is in :mod:`mmspd.optim._adam_math`, the checks of group keys in
:mod:`mmspd.optim._checks`.
"""
from __future__ import annotations

import warnings
from typing import Any, ClassVar, Iterable

import torch
from torch import Tensor
from torch.optim import Optimizer

from ._adam_math import adam_multi_tensor, adam_single_tensor
from ._checks import (
    LEGACY_LAMBDA_KEY,
    SPD_KEY,
    check_anchor,
    check_hyper_parameters,
    check_strength,
    spd_enabled,
)
from ._spd_rule import real_view, refuse_sharded


class AnchoredAdam(Optimizer):
    """Adam whose parameters are tied to anchors kept in the optimizer state.

    Subclasses implement :meth:`_update` for one parameter group. This base
    handles hyper-parameter checks, the authors' ``'pre'`` group format,
    lazy state (``step``, ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq``
    with amsgrad, and ``anchor``) and :meth:`reset_anchors`. Complex
    parameters are stepped as real views, as ``torch.optim.Adam`` does.
    """

    _strength = 'weight_decay'
    #: Group keys a subclass adds to the defaults (name: default value).
    _extra_defaults: ClassVar[dict[str, Any]] = {}

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
        defaults = {
            'lr': lr,
            'betas': tuple(betas),
            'eps': eps,
            'weight_decay': weight_decay,
            'amsgrad': amsgrad,
            'anchor': anchor,
            'foreach': foreach,
            **self._extra_defaults,
        }
        check_hyper_parameters(defaults, self._strength)
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group; accepts the authors' ``'pre'`` key.

        ``'pre'`` is a list of anchor tensors, one per parameter in order
        (they become the anchors, never re-taken at the first step), or None
        for zero anchors (same as ``anchor='zero'``).
        """
        param_group = dict(param_group)
        has_pre = 'pre' in param_group
        pre = param_group.pop('pre', None)
        if has_pre and pre is None:
            param_group['anchor'] = 'zero'
        elif has_pre:
            param_group.setdefault('anchor', 'init')
        if SPD_KEY in param_group and SPD_KEY not in self.defaults:
            raise ValueError(
                f'{type(self).__name__} has no {SPD_KEY!r} group key (it '
                'chooses between SPD and the optimizer\'s own decay in '
                'AdamSPD and in optimizers SPD is attached to)')
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        refuse_sharded(group['params'])
        check_hyper_parameters(group, self._strength)
        if pre is not None:
            params = group['params']
            pre = list(pre)
            if len(pre) != len(params):
                raise ValueError(f"'pre' holds {len(pre)} anchors for "
                                 f'{len(params)} parameters')
            for param, anchor in zip(params, pre):
                check_anchor(param, anchor)
                self.state[param]['anchor'] = anchor.detach().to(
                    device=param.device, dtype=param.dtype)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault('amsgrad', False)
            group.setdefault('anchor', 'init')
            group.setdefault('foreach', None)
            for key, value in self._extra_defaults.items():
                group.setdefault(key, value)
        # load_state_dict ends here. Step counters must stay float32 CPU
        # tensors, read without a device sync; torch leaves them where the
        # checkpoint was mapped, which is the GPU on mmengine's resume.
        for param_state in self.state.values():
            step = param_state.get('step')
            if isinstance(step, Tensor) and (step.device.type != 'cpu'
                                             or step.dtype != torch.float32):
                param_state['step'] = step.to('cpu', torch.float32)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state dict; warn when it comes from another optimizer.

        A state saved by a plain optimizer (``AdamW``, or an optimizer
        wrapped by an mmspd 0.1 SPD wrapper) has no anchors and its own
        meaning of ``weight_decay``: loading it replaces this optimizer's
        strengths with the saved values, and anchors are taken afresh at the
        next step. That is allowed, and said in a warning.
        """
        saved_groups = state_dict['param_groups']
        foreign = any('anchor' not in group for group in saved_groups)
        before = [group['weight_decay'] for group in self.param_groups]
        super().load_state_dict(state_dict)
        for group in self.param_groups:
            if LEGACY_LAMBDA_KEY in group:
                group['weight_decay'] = group.pop(LEGACY_LAMBDA_KEY)
            check_hyper_parameters(group, self._strength)
        if not foreign:
            return
        after = [group['weight_decay'] for group in self.param_groups]
        anchored = sum('anchor' in state for state in self.state.values())
        warnings.warn(
            f'{type(self).__name__}.load_state_dict: the state was saved by '
            'another optimizer (its param groups have no "anchor" key). Its '
            f'weight_decay values {_short(after)} replace the strengths '
            f'{_short(before)} set at construction, and anchors are taken '
            'from the weights at the next step (the state holds '
            f'{anchored}). Call load_state_dict only with a state of this '
            'optimizer to keep both, or set param_group["weight_decay"] '
            'after loading.', UserWarning, stacklevel=2)

    @torch.no_grad()
    def reset_anchors(self) -> None:
        """Re-take the anchors of all ``'init'`` groups from current weights.

        Anchors are otherwise taken once, at the first step that updates a
        parameter, and restored by :meth:`load_state_dict`.
        """
        for group in self.param_groups:
            if group['anchor'] != 'init' or not spd_enabled(group):
                continue
            for param in group['params']:
                self.state[param]['anchor'] = param.detach().clone(
                    memory_format=torch.preserve_format)

    def _init_group(self, group: dict[str, Any]) -> dict[str, list]:
        lists: dict[str, list] = {
            name: []
            for name in ('params', 'grads', 'exp_avgs', 'exp_avg_sqs',
                         'max_exp_avg_sqs', 'state_steps', 'anchors')
        }
        # A group with spd=False takes the optimizer's own decay: no anchor.
        take_anchor = group['anchor'] == 'init' and spd_enabled(group)
        for param in group['params']:
            if param.grad is None:
                continue
            if param.grad.is_sparse:
                raise RuntimeError(
                    f'{type(self).__name__} does not support sparse '
                    'gradients')
            state = self.state[param]
            if 'step' not in state:
                # Step counters stay on the CPU (as in torch.optim.Adam), so
                # bias corrections need no device sync.
                state['step'] = torch.tensor(0.0, dtype=torch.float32)
                # First moment (mean) of the gradient.
                state['exp_avg'] = torch.zeros_like(
                    param, memory_format=torch.preserve_format)
                # Second raw moment of the gradient.
                state['exp_avg_sq'] = torch.zeros_like(
                    param, memory_format=torch.preserve_format)
            if group['amsgrad'] and 'max_exp_avg_sq' not in state:
                # Running maximum of exp_avg_sq (AMSGrad).
                state['max_exp_avg_sq'] = torch.zeros_like(
                    param, memory_format=torch.preserve_format)
            if take_anchor:
                if 'anchor' not in state:
                    # The weights fine-tuning starts from, taken at the
                    # first step, i.e. after any checkpoint was loaded.
                    state['anchor'] = param.detach().clone(
                        memory_format=torch.preserve_format)
                else:
                    check_anchor(param, state['anchor'])
                lists['anchors'].append(real_view(state['anchor']))
            # Complex tensors as real views, as torch.optim.Adam takes them.
            lists['params'].append(real_view(param))
            lists['grads'].append(real_view(param.grad))
            lists['exp_avgs'].append(real_view(state['exp_avg']))
            lists['exp_avg_sqs'].append(real_view(state['exp_avg_sq']))
            if group['amsgrad']:
                lists['max_exp_avg_sqs'].append(
                    real_view(state['max_exp_avg_sq']))
            lists['state_steps'].append(state['step'])
        if not take_anchor:
            lists['anchors'] = None
        return lists

    @torch.no_grad()
    def step(self, closure=None):
        """Perform a single optimization step.

        Args:
            closure (Callable, optional): Re-evaluates the model and returns
                the loss. Defaults to None.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self._begin_step()
        for hyper, lists, foreach in self._buckets():
            parts = _group_by_device_and_dtype(lists) if foreach else [lists]
            for part in parts:
                self._update(hyper, part, foreach)
        self._end_step()
        return loss

    def _buckets(self) -> list[tuple[dict[str, Any], dict[str, list], bool]]:
        """Merge groups that differ only in strength into one tensor list.

        MMEngine's ``paramwise_cfg`` makes one group per parameter; merging
        keeps the number of kernel launches per step independent of the
        number of tensors. The strength becomes a per-tensor list,
        ``lists['strengths']``.
        """
        buckets: dict[tuple, tuple[dict[str, Any], dict[str, list],
                                   bool]] = {}
        for group in self.param_groups:
            lists = self._init_group(group)
            if not lists['params']:
                continue
            foreach = group['foreach'] is not False
            key = (group['lr'], tuple(group['betas']), group['eps'],
                   group['amsgrad'], group['anchor'], foreach,
                   spd_enabled(group))
            # A scheduler may have written the strength since the last step.
            check_strength(group['weight_decay'], self._strength)
            lists['strengths'] = [float(group['weight_decay'])] * len(
                lists['params'])
            if key not in buckets:
                buckets[key] = (group, lists, foreach)
                continue
            merged = buckets[key][1]
            for name, values in lists.items():
                if values is not None:
                    merged[name].extend(values)
        return list(buckets.values())

    def _begin_step(self) -> None:
        pass

    def _end_step(self) -> None:
        pass

    def _update(self, group: dict[str, Any], lists: dict[str, list],
                foreach: bool) -> None:
        """Update one bucket of tensors (one device and dtype if foreach).

        ``group`` supplies the shared hyper-parameters; the strength of each
        tensor is in ``lists['strengths']``.
        """
        raise NotImplementedError

    @staticmethod
    def _adam(group: dict[str, Any], lists: dict[str, list], foreach: bool,
              grads: list[Tensor] | None = None) -> None:
        beta1, beta2 = group['betas']
        func = adam_multi_tensor if foreach else adam_single_tensor
        func(lists['params'],
             lists['grads'] if grads is None else grads,
             lists['exp_avgs'],
             lists['exp_avg_sqs'],
             lists['max_exp_avg_sqs'],
             lists['state_steps'],
             amsgrad=group['amsgrad'],
             beta1=beta1,
             beta2=beta2,
             lr=group['lr'],
             eps=group['eps'])


def _short(values: list) -> str:
    distinct = sorted(set(values))
    return repr(distinct[0]) if len(distinct) == 1 else repr(distinct)


def _group_by_device_and_dtype(
        lists: dict[str, list]) -> list[dict[str, list]]:
    names = [
        name for name, value in lists.items()
        if value and name != 'strengths'
    ]
    grouped = Optimizer._group_tensors_by_device_and_dtype(
        [lists[name] for name in names], with_indices=True)
    parts = []
    for tensorlists, indices in grouped.values():
        part = {name: [] for name in lists}
        part.update(zip(names, tensorlists))
        part['strengths'] = [lists['strengths'][i] for i in indices]
        if lists['anchors'] is None:
            part['anchors'] = None
        parts.append(part)
    return parts
