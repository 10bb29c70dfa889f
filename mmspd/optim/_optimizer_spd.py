"""OptimizerSPD, the step hooks that run SPD on a ``torch.optim`` optimizer
(made by :func:`mmspd.optim.attach_spd`), and the ``step`` and ``pickle``
support that keeps ``weight_decay`` and SPD on the optimizer and its copies.
"""
from __future__ import annotations

import types
from typing import Any, Callable

import torch
from torch import Tensor
from torch.optim import Optimizer

from ._adam import AnchoredAdam
from ._checks import (
    LEGACY_LAMBDA_KEY,
    SPD_KEY,
    check_anchor_mode,
    check_strength,
    checked_spd_enabled,
    spd_enabled,
    warn_strength_above_one,
)
from ._spd import SPDStatistics, SPDWorkspace, spd_post, spd_pre
from ._spd_rule import SPDContext, real_view, refuse_sharded

# Attribute of an optimizer holding the OptimizerSPD attached to it.
_ATTR = '_mmspd_spd'


class OptimizerSPD:
    """SPD attached to one optimizer; made by :func:`attach_spd`.

    Args:
        optimizer (Optimizer): The optimizer to extend.
        anchor (str): ``'init'`` (anchors taken at the first step that
            updates a parameter) or ``'zero'`` (decay toward zero). A param
            group key ``'anchor'`` overrides it per group.
            Defaults to ``'init'``.
        foreach (bool, optional): False selects the per-tensor reference
            implementation of the rule. Defaults to None (multi-tensor).
    """

    def __init__(self,
                 optimizer: Optimizer,
                 anchor: str = 'init',
                 foreach: bool | None = None) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError('SPD attaches to a torch.optim.Optimizer, got '
                            f'{type(optimizer).__name__}')
        if isinstance(optimizer, AnchoredAdam):
            raise TypeError(
                f'{type(optimizer).__name__} already ties parameters to '
                'anchors; use it as it is, or attach SPD to Adam, AdamW, SGD '
                'or another optimizer without anchors')
        if getattr(optimizer, _ATTR, None) is not None:
            raise ValueError(f'SPD is already attached to this '
                             f'{type(optimizer).__name__}')
        check_anchor_mode(anchor)
        if foreach not in (None, True, False):
            raise ValueError(f'Invalid foreach: {foreach!r} (expected None, '
                             'True or False)')
        self.optimizer = optimizer
        self.anchor = anchor
        self.foreach = foreach
        for index, group in enumerate(optimizer.param_groups):
            refuse_sharded(group['params'])
            if checked_spd_enabled(group):
                check_anchor_mode(group.get('anchor', anchor))
                check_strength(self._strength(group, index),
                               'weight_decay (SPD strength)')
        self._stats = SPDStatistics()
        self._warned = warn_strength_above_one(
            (group['weight_decay'] for group in optimizer.param_groups
             if checked_spd_enabled(group)), type(optimizer).__name__)
        self._reset()
        self._register()

    def _reset(self) -> None:
        self._workspace = SPDWorkspace()
        self._ctx: tuple | None = None
        self._held: list[tuple[dict, Any]] | None = None

    def _register(self) -> None:
        optimizer = self.optimizer
        setattr(optimizer, _ATTR, self)
        # Hooks miss a step that raises; this step() gives weight_decay back
        # then too, around the step found here (an LR scheduler's or own).
        self._outer_step = optimizer.__dict__.get('step')
        self._step = types.MethodType(_decay_giving_step(self._outer_step),
                                      optimizer)
        optimizer.step = self._step
        # Optimizer.__getstate__ keeps only defaults, state and groups, so
        # a copy would lose the hooks and step with lambda as plain decay:
        # copies are rebuilt with SPD attached (copy, pickle, torch.save).
        optimizer.__reduce_ex__ = types.MethodType(_reduce_with_spd,
                                                   optimizer)
        self._handles = [
            optimizer.register_step_pre_hook(self._pre_hook),
            optimizer.register_step_post_hook(self._post_hook),
            optimizer.register_load_state_dict_post_hook(self._loaded),
        ]

    def detach(self) -> None:
        """Remove SPD from the optimizer; it steps as before."""
        self._release()
        for handle in self._handles:
            handle.remove()
        self._handles = []
        if getattr(self.optimizer, _ATTR, None) is self:
            delattr(self.optimizer, _ATTR)
        self.optimizer.__dict__.pop('__reduce_ex__', None)
        # Left in place when wrapped since: it works without SPD too.
        if self.optimizer.__dict__.get('step') is self._step:
            del self.optimizer.step
            if self._outer_step is not None:
                self.optimizer.step = self._outer_step

    @property
    def attached(self) -> bool:
        """Whether the hooks are registered on the optimizer."""
        return bool(self._handles) and self._handles[0].id in getattr(
            self.optimizer, '_optimizer_step_pre_hooks', {})

    def __reduce__(self) -> tuple:
        # The copy of an attachment is that of the copied optimizer.
        if not self.attached:
            raise TypeError('A detached OptimizerSPD cannot be copied; copy '
                            'the optimizer instead')
        return _attachment_of, (self.optimizer, )

    def _strength(self, group: dict[str, Any], index: int) -> Any:
        if 'weight_decay' not in group:
            name = type(self.optimizer).__name__
            raise ValueError(
                f"{name} param group {index} has no 'weight_decay', which "
                'SPD reads as its strength lambda. Set it in every group, '
                f"e.g. optimizer.param_groups[{index}]['weight_decay'] = "
                f'1.0, before attaching ({name} ignores the key; SPD reads '
                f'it), or set {SPD_KEY!r}=False in groups SPD should leave '
                'alone.')
        return group['weight_decay'] or 0.0

    def _loaded(self, optimizer: Optimizer) -> None:
        # Checkpoints of mmspd 0.1 wrappers kept the strength under their own
        # key, with weight_decay 0.
        for group in optimizer.param_groups:
            if LEGACY_LAMBDA_KEY in group:
                group['weight_decay'] = group.pop(LEGACY_LAMBDA_KEY)

    def statistics(self) -> dict[str, Tensor]:
        """Statistics of the last step; see :meth:`SPDStatistics.summary`."""
        return self._stats.summary()

    @torch.no_grad()
    def reset_anchors(self) -> None:
        """Re-take the anchors of all ``'init'`` groups from current weights.

        Anchors are otherwise taken once, at the first step that updates a
        parameter, and restored by ``load_state_dict``. Parameters not
        stepped yet take theirs at their first step, as usual.
        """
        state = self.optimizer.state
        for group in self.optimizer.param_groups:
            if (group.get('anchor', self.anchor) != 'init'
                    or not spd_enabled(group)):
                continue
            for param in group['params']:
                if param not in state:
                    continue
                if any(key != 'anchor' for key in state[param]):
                    state[param]['anchor'] = param.detach().clone(
                        memory_format=torch.preserve_format)
                else:
                    # Optimizers such as Adam initialise a parameter's state
                    # only while it is empty.
                    state[param].pop('anchor', None)

    def _anchors(self, params: list[Tensor]
                 ) -> tuple[list[Tensor], list[tuple[Tensor, Tensor]]]:
        anchors, new = [], []
        state = self.optimizer.state
        for param in params:
            anchor = state[param].get('anchor') if param in state else None
            if anchor is None:
                # Stored after the inner step: some optimizers (Adam) only
                # initialise a parameter's state while it is empty.
                anchor = param.detach().clone(
                    memory_format=torch.preserve_format)
                new.append((param, anchor))
            elif anchor.shape != param.shape:
                raise ValueError(
                    f'Anchor shape {tuple(anchor.shape)} does not match '
                    f'parameter shape {tuple(param.shape)}')
            anchors.append(anchor)
        return anchors, new

    def _release(self) -> None:
        """Give every group its ``weight_decay`` back."""
        if self._held is not None:
            for group, value in self._held:
                if group['weight_decay'] == 0.0:  # else written since: kept
                    group['weight_decay'] = value
            self._held = None

    def _spd_groups(self, optimizer: Optimizer
                    ) -> list[tuple[dict[str, Any], float]]:
        """The groups SPD applies to and their strengths, all checked."""
        groups = []
        for index, group in enumerate(optimizer.param_groups):
            if not checked_spd_enabled(group):
                continue
            lam = self._strength(group, index)
            check_strength(lam, 'weight_decay (SPD strength)')
            check_anchor_mode(group.get('anchor', self.anchor))
            groups.append((group, float(lam)))
        if not self._warned:
            self._warned = warn_strength_above_one(
                (lam for _, lam in groups), type(optimizer).__name__)
        return groups

    @torch.no_grad()
    def _pre_hook(self, optimizer: Optimizer, args: tuple,
                  kwargs: dict) -> None:
        # A step that raised never reached the post-hook.
        self._release()
        self._ctx = None
        # The hooks see step()'s arguments with the optimizer in front.
        if args and args[0] is optimizer:
            args = args[1:]
        closure = args[0] if args else kwargs.get('closure')
        if closure is not None:
            raise RuntimeError(
                f'SPD attached to {type(optimizer).__name__} cannot run '
                'step(closure): the rule needs the gradients before the '
                'step, and a closure computes them inside it. Call '
                'loss.backward() and then step() without a closure.')
        groups = self._spd_groups(optimizer)
        self._stats.begin()
        new: list[tuple[Tensor, Tensor]] = []
        # Groups of one anchor mode and direction form one tensor list,
        # whatever their strengths: paramwise_cfg makes a group per
        # parameter. Complex tensors are taken as real views, as torch's
        # optimizers do.
        buckets: dict[tuple[str, bool], tuple[list, list, list, list]] = {}
        for group, lam in groups:
            params = [p for p in group['params'] if p.grad is not None]
            if not params:
                continue
            mode = group.get('anchor', self.anchor)
            anchors: list[Tensor] = []
            if mode == 'init':
                anchors, group_new = self._anchors(params)
                new.extend(group_new)
            if lam != 0:
                bucket = buckets.setdefault(
                    (mode, bool(group.get('maximize', False))),
                    ([], [], [], []))
                bucket[0].extend(real_view(p) for p in params)
                bucket[1].extend(real_view(p.grad) for p in params)
                bucket[2].extend(real_view(a) for a in anchors)
                bucket[3].extend([lam] * len(params))
        parts = []
        workspace = self._workspace if self.foreach is not False else None
        for (mode, maximize), lists in buckets.items():
            for params, grads, anchors, lams in self._split(
                    *lists, zero=mode == 'zero'):
                ctx = spd_pre(params, grads, anchors, workspace)
                if maximize:
                    # The optimizer ascends the gradient: c = <g, theta - a>.
                    ctx = SPDContext(-ctx.c, ctx.prev)
                parts.append((params, anchors, lams, ctx))
        self._ctx = (new, parts)
        # The optimizer's own step applies no decay; see _post_hook.
        self._held = [(group, group['weight_decay']) for group, _ in groups]
        for group, _ in self._held:
            group['weight_decay'] = 0.0

    @torch.no_grad()
    def _post_hook(self, optimizer: Optimizer, args: tuple,
                   kwargs: dict) -> None:
        self._release()
        ctx, self._ctx = self._ctx, None
        if ctx is None:
            return
        # GradScaler hands optimizers that unscale inside their step (fused
        # ones) an overflow flag and calls step() even when it is set.
        found_inf = kwargs.get('found_inf', getattr(optimizer, 'found_inf',
                                                    None))
        new, parts = ctx
        for param, anchor in new:
            optimizer.state[param]['anchor'] = anchor
        workspace = self._workspace if self.foreach is not False else None
        for params, anchors, lams, pre in parts:
            spd_post(params, anchors, lams, pre, self._stats, workspace,
                     found_inf)
        self._stats.finish(found_inf)

    def _split(self, params: list[Tensor], grads: list[Tensor],
               anchors: list[Tensor], lams: list[float],
               zero: bool) -> list[tuple]:
        if self.foreach is False:
            return [(params, grads, None if zero else anchors, lams)]
        lists = [params, grads] if zero else [params, grads, anchors]
        grouped = Optimizer._group_tensors_by_device_and_dtype(
            lists, with_indices=True)
        return [(tensors[0], tensors[1], None if zero else tensors[2],
                 [lams[i] for i in indices])
                for tensors, indices in grouped.values()]


def _decay_giving_step(outer: Callable | None) -> Callable:
    """``step`` of an optimizer with SPD: gives weight_decay back, always."""

    def step(optimizer: Optimizer, *args, **kwargs) -> Any:
        inner = outer or types.MethodType(type(optimizer).step, optimizer)
        try:
            return inner(*args, **kwargs)
        finally:
            if getattr(optimizer, _ATTR, None) is not None:
                getattr(optimizer, _ATTR)._release()

    # A torch LR scheduler checks that the step it wrapped is still there.
    if getattr(outer, '_wrapped_by_lr_sched', False):
        step._wrapped_by_lr_sched = True
    return step


def _reduce_with_spd(optimizer: Optimizer, protocol: int) -> tuple:
    """How copy and pickle rebuild an optimizer SPD is attached to."""
    spd = getattr(optimizer, _ATTR)
    settings = {'anchor': spd.anchor, 'foreach': spd.foreach,
                '_stats': spd._stats, '_warned': spd._warned}
    return _rebuild_with_spd, (type(optimizer), optimizer.__getstate__(),
                               settings)


def _rebuild_with_spd(cls: type, state: dict[str, Any],
                      settings: dict[str, Any]) -> Optimizer:
    optimizer = cls.__new__(cls)
    optimizer.__setstate__(state)
    spd = OptimizerSPD.__new__(OptimizerSPD)
    spd.__dict__.update(settings)
    spd.optimizer = optimizer
    spd._reset()
    spd._register()
    return optimizer


def _attachment_of(optimizer: Optimizer) -> OptimizerSPD:
    return getattr(optimizer, _ATTR)
