"""Selective Projection Decay on top of any ``torch.optim`` optimizer.

Tian, Huang and Kira, "Rethinking Weight Decay for Robust Fine-Tuning of
Foundation Models", NeurIPS 2024 (https://arxiv.org/abs/2411.01713).

:func:`attach_spd` runs the SPD rule in step hooks of an optimizer: the
pre-hook reads the gradients and weights right before the optimizer's own
update, the post-hook projects the result. Whoever calls ``step()`` (an
MMEngine optimizer wrapper, a ``GradScaler``, a training loop) therefore
gets SPD, and a step that does not happen (a loss-scaler skip, an
accumulation iteration) touches neither weights, anchors nor statistics.

Each group's ``weight_decay`` is its SPD strength, read at every step, so a
``weight_decay`` schedule drives SPD. The optimizer's own step runs with
``weight_decay`` set to 0 and the value is put back afterwards: it never
applies a decay of its own. Anchors live in the optimizer's per-parameter
state (``state[p]['anchor']``) and are saved and loaded with it.

This module needs torch alone; the MMEngine wrappers and the
``SPDOptimWrapperConstructor`` build on it.
"""
from __future__ import annotations

import types
from typing import Any, Callable

import torch
from torch import Tensor
from torch.optim import Optimizer

from ._adam import (
    ANCHOR_MODES,
    LEGACY_LAMBDA_KEY,
    AnchoredAdam,
    check_strength,
)
from ._spd import SPDStatistics, SPDWorkspace, spd_post, spd_pre

# Attribute of an optimizer holding the OptimizerSPD attached to it.
_ATTR = '_mmspd_spd'


def _check_anchor_mode(mode: Any) -> None:
    if mode not in ANCHOR_MODES:
        raise ValueError(f'Invalid anchor mode: {mode!r} (expected one of '
                         f'{ANCHOR_MODES})')


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
        _check_anchor_mode(anchor)
        if foreach not in (None, True, False):
            raise ValueError(f'Invalid foreach: {foreach!r} (expected None, '
                             'True or False)')
        self.optimizer = optimizer
        self.anchor = anchor
        self.foreach = foreach
        for group in optimizer.param_groups:
            _check_anchor_mode(group.get('anchor', anchor))
            check_strength(self._strength(group), 'weight_decay (SPD '
                           'strength)')
        self._stats = SPDStatistics()
        self._workspace = SPDWorkspace()
        self._ctx: tuple | None = None
        self._held: list[tuple[dict, Any]] | None = None
        self._register()

    def _register(self) -> None:
        optimizer = self.optimizer
        setattr(optimizer, _ATTR, self)
        # Hooks miss a step that raises; this step() gives weight_decay back
        # then too, around the step found here (an LR scheduler's or own).
        self._outer_step = optimizer.__dict__.get('step')
        self._step = types.MethodType(_decay_giving_step(self._outer_step),
                                      optimizer)
        optimizer.step = self._step
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

    def __getstate__(self) -> dict[str, Any]:
        # Optimizers drop their hooks when copied or unpickled; the hooks are
        # registered again on the copy.
        state = dict(self.__dict__)
        for key in ('_handles', '_ctx', '_held', '_outer_step', '_step'):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._ctx = None
        self._held = None
        self._register()

    @staticmethod
    def _strength(group: dict[str, Any]) -> Any:
        return group.get('weight_decay', 0.0) or 0.0

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
            if group.get('anchor', self.anchor) != 'init':
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
        groups = []
        for group in optimizer.param_groups:
            lam = self._strength(group)
            check_strength(lam, 'weight_decay (SPD strength)')
            _check_anchor_mode(group.get('anchor', self.anchor))
            groups.append((group, float(lam)))
        self._stats.begin()
        new: list[tuple[Tensor, Tensor]] = []
        # All groups of one anchor mode form one tensor list, whatever their
        # strengths: paramwise_cfg makes a group per parameter.
        buckets: dict[str, tuple[list, list, list]] = {
            mode: ([], [], []) for mode in ANCHOR_MODES
        }
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
                bucket = buckets[mode]
                bucket[0].extend(params)
                bucket[1].extend(anchors)
                bucket[2].extend([lam] * len(params))
        parts = []
        for mode, (params, anchors, lams) in buckets.items():
            if not params:
                continue
            for part in self._split(params, anchors if mode == 'init' else
                                    None, lams):
                part_params, part_anchors, _ = part
                grads = [p.grad for p in part_params]
                parts.append((*part,
                              spd_pre(part_params, grads, part_anchors,
                                      self._workspace if self.foreach
                                      is not False else None)))
        self._ctx = (new, parts)
        # The optimizer's own step applies no decay; see _post_hook.
        self._held = [(group, group['weight_decay']) for group, _ in groups
                      if 'weight_decay' in group]
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

    def _split(self, params: list[Tensor], anchors: list[Tensor] | None,
               lams: list[float]) -> list[tuple]:
        if self.foreach is False:
            return [(params, anchors, lams)]
        lists = [params] if anchors is None else [params, anchors]
        grouped = Optimizer._group_tensors_by_device_and_dtype(
            lists, with_indices=True)
        return [(tensors[0], None if anchors is None else tensors[1],
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


def attach_spd(optimizer: Optimizer,
               anchor: str = 'init',
               foreach: bool | None = None) -> OptimizerSPD:
    """Make ``optimizer`` apply Selective Projection Decay at every step.

    Each param group's ``weight_decay`` becomes its SPD strength (so
    ``decay_mult=0`` turns SPD off for a group, and a ``weight_decay``
    schedule drives it); the optimizer itself then applies no decay. With
    ``torch.optim.Adam`` the result equals :class:`~mmspd.optim.AdamSPD`.

    Args:
        optimizer (Optimizer): Any ``torch.optim`` optimizer without anchors
            of its own (not AdamSPD / AdamL2SP).
        anchor (str): ``'init'`` or ``'zero'``; a group key ``'anchor'``
            overrides it. Defaults to ``'init'``.
        foreach (bool, optional): False selects the per-tensor reference
            implementation of the rule. Defaults to None.

    Returns:
        OptimizerSPD: The attachment (statistics, ``reset_anchors``,
        ``detach``).

    Raises:
        TypeError: For AdamSPD / AdamL2SP or a non-optimizer.
        ValueError: For a bad anchor mode or strength, or when SPD is
            attached already.

    Example:
        >>> optimizer = torch.optim.SGD(model.parameters(), lr=0.01,
        ...                             momentum=0.9, weight_decay=1.0)
        >>> attach_spd(optimizer)
        >>> loss.backward(); optimizer.step()  # SGD step, then SPD
    """
    return OptimizerSPD(optimizer, anchor=anchor, foreach=foreach)


def _optimizer_of(obj: Any) -> Any:
    return getattr(obj, 'optimizer', obj)


def applies_spd(obj: Any) -> bool:
    """Whether an optimizer or optimizer wrapper applies SPD at its steps.

    True for :class:`~mmspd.optim.AdamSPD` and for optimizers SPD is
    attached to (:func:`attach_spd`, the SPD optimizer wrappers and
    ``SPDOptimWrapperConstructor``), given either directly or as the
    ``optimizer`` of a wrapper. A dict of wrappers (``OptimWrapperDict``)
    counts when every wrapper in it applies SPD.

    Args:
        obj: An optimizer, an optimizer wrapper, or a dict of wrappers.

    Returns:
        bool: Whether SPD runs when the optimizer steps.
    """
    from .adam_spd import AdamSPD
    wrappers = getattr(obj, 'optim_wrappers', None)
    if isinstance(wrappers, dict):
        return bool(wrappers) and all(
            applies_spd(wrapper) for wrapper in wrappers.values())
    optimizer = _optimizer_of(obj)
    if isinstance(optimizer, AdamSPD):
        return True
    spd = getattr(optimizer, _ATTR, None)
    return isinstance(spd, OptimizerSPD) and spd.attached


def spd_statistics(obj: Any) -> dict[str, Tensor]:
    """Statistics of the last SPD step of an optimizer or wrapper.

    Args:
        obj: An optimizer or optimizer wrapper.

    Returns:
        dict[str, Tensor]: See :meth:`SPDStatistics.summary`; empty when
        SPD does not run there or has not stepped yet.
    """
    optimizer = _optimizer_of(obj)
    reader = getattr(optimizer, 'spd_statistics', None)
    if callable(reader):
        return reader()
    spd = getattr(optimizer, _ATTR, None)
    if isinstance(spd, OptimizerSPD):
        return spd.statistics()
    return {}


def get_attachment(obj: Any) -> OptimizerSPD | None:
    """The :class:`OptimizerSPD` of an optimizer or wrapper, if any."""
    spd = getattr(_optimizer_of(obj), _ATTR, None)
    return spd if isinstance(spd, OptimizerSPD) else None
