"""Adam without decay, and the anchor bookkeeping shared by AdamSPD/L2-SP.

:class:`AnchoredAdam` checks hyper-parameters, keeps the Adam state and the
anchors, and merges parameter groups into tensor lists; the Adam update
itself is in :mod:`mmspd.optim._adam_math`.
"""
from __future__ import annotations

import math
import warnings
from typing import Any, Iterable

import torch
from torch import Tensor
from torch.optim import Optimizer

from ._adam_math import adam_multi_tensor, adam_single_tensor
from ._spd_rule import real_view, refuse_sharded

ANCHOR_MODES = ('init', 'zero')

#: Group key under which mmspd 0.1 SPD wrappers saved the SPD strength
#: (with ``weight_decay`` set to 0); read when such a checkpoint is loaded.
LEGACY_LAMBDA_KEY = 'spd_weight_decay'


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_strength(value: Any, name: str = 'weight_decay') -> None:
    """Raise ValueError unless ``value`` is a finite float >= 0."""
    if not _is_number(value) or not 0.0 <= value < math.inf:
        raise ValueError(f'Invalid {name} value: {value!r} (expected a '
                         'finite float >= 0)')


#: Param group key choosing, per group, between SPD (True, the default) and
#: the optimizer's own weight decay (False), ``weight_decay`` then being
#: that decay's coefficient.
SPD_KEY = 'spd'


def spd_enabled(group: dict[str, Any]) -> bool:
    """Whether SPD applies to a param group (its :data:`SPD_KEY`; True if
    absent): False groups take the optimizer's own weight decay."""
    return group.get(SPD_KEY, True)


def check_spd_flag(value: Any) -> None:
    """Raise ValueError unless ``value`` is True or False."""
    if not isinstance(value, bool):
        raise ValueError(f'Invalid {SPD_KEY!r} value: {value!r} (expected '
                         'True, SPD toward the anchor, or False, the '
                         "optimizer's own weight decay)")


def warn_strength_above_one(strengths: Iterable[float],
                            owner: str) -> bool:
    """Warn when an SPD strength is above 1; return whether it warned.

    A selected tensor moves to ``theta_new - lam * r * (theta_new - a)``
    with ``0 <= r <= 1``: where ``lam * r > 1`` it lands past its anchor.
    """
    above = sorted({lam for lam in strengths if lam > 1})
    if not above:
        return False
    warnings.warn(
        f'{owner}: SPD strength (weight_decay) '
        f'{above[0] if len(above) == 1 else above} > 1. A tensor SPD '
        'selects moves to theta_new - lambda * r * (theta_new - anchor), '
        'r in [0, 1]: where lambda * r > 1 that pulls it past its anchor, '
        'to the other side (lambda = 2, r = 1 mirrors it). lambda <= 1 '
        'only pulls toward the anchor.', UserWarning, stacklevel=3)
    return True


def check_hyper_parameters(group: dict[str, Any],
                           strength: str = 'weight_decay') -> None:
    """Raise ValueError naming any invalid hyper-parameter of ``group``."""
    lr = group['lr']
    if not _is_number(lr) or not 0.0 <= lr < math.inf:
        raise ValueError(f'Invalid learning rate: {lr!r} (expected a '
                         'finite float >= 0)')
    eps = group['eps']
    if not _is_number(eps) or not 0.0 <= eps < math.inf:
        raise ValueError(f'Invalid epsilon value: {eps!r} (expected a '
                         'finite float >= 0)')
    betas = group['betas']
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f'Invalid betas: {betas!r} (expected two values)')
    for i, beta in enumerate(betas):
        if not _is_number(beta) or not 0.0 <= beta < 1.0:
            raise ValueError(f'Invalid beta parameter at index {i}: '
                             f'{beta!r} (expected 0 <= beta < 1)')
    check_strength(group['weight_decay'], strength)
    if group['anchor'] not in ANCHOR_MODES:
        raise ValueError(f"Invalid anchor mode: {group['anchor']!r} "
                         f'(expected one of {ANCHOR_MODES})')
    if not isinstance(group['amsgrad'], bool):
        raise ValueError(f"Invalid amsgrad: {group['amsgrad']!r} (expected "
                         'True or False)')
    if group['foreach'] not in (None, True, False):
        raise ValueError(f"Invalid foreach: {group['foreach']!r} (expected "
                         'None, True or False)')
    if SPD_KEY in group:
        check_spd_flag(group[SPD_KEY])


def check_anchor(param: Tensor, anchor: Tensor) -> None:
    """Raise ValueError when ``anchor`` cannot anchor ``param``."""
    if not isinstance(anchor, Tensor) or anchor.shape != param.shape:
        shape = getattr(anchor, 'shape', type(anchor).__name__)
        raise ValueError(f'Anchor shape {tuple(shape)} does not match '
                         f'parameter shape {tuple(param.shape)}')


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
    _extra_defaults: dict[str, Any] = {}

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
