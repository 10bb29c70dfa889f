"""Optimizer wrappers that add Selective Projection Decay to any optimizer.

Tian, Huang and Kira, "Rethinking Weight Decay for Robust Fine-Tuning of
Foundation Models", NeurIPS 2024 (https://arxiv.org/abs/2411.01713).

The SPD rule runs in step hooks of the wrapped optimizer: the pre-hook reads
the gradients and weights right before the optimizer's own update, the
post-hook projects the result. Whoever calls ``optimizer.step()`` therefore
gets SPD, and a step that does not happen (a loss-scaler skip, an
accumulation iteration) touches neither weights, anchors nor statistics.
"""
from __future__ import annotations

from typing import Any

import torch
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS
from torch import Tensor
from torch.optim import Optimizer

from ._adam import ANCHOR_MODES, AnchoredAdam
from ._spd import SPDStatistics, SPDWorkspace, spd_post, spd_pre

#: Param group key holding the SPD strength; ``weight_decay`` is set to 0.
SPD_LAMBDA_KEY = 'spd_weight_decay'


def _check_anchor_mode(mode: Any) -> None:
    if mode not in ANCHOR_MODES:
        raise ValueError(f'Invalid anchor mode: {mode!r} (expected one of '
                         f'{ANCHOR_MODES})')


class _SPDMixin:
    """SPD on top of the wrapped optimizer's step."""

    optimizer: Optimizer

    def _spd_setup(self, anchor: str, foreach: bool | None) -> None:
        if isinstance(self.optimizer, AnchoredAdam):
            raise TypeError(
                f'{type(self.optimizer).__name__} already ties parameters to '
                'anchors; wrap it in OptimWrapper, or wrap Adam/AdamW/SGD '
                'in an SPD optimizer wrapper')
        _check_anchor_mode(anchor)
        self._spd_anchor = anchor
        self._spd_foreach = foreach is not False
        self._spd_stats = SPDStatistics()
        self._spd_workspace = SPDWorkspace() if self._spd_foreach else None
        self._spd_ctx: tuple | None = None
        self._capture_lambda()
        self._register_spd_hooks()

    def _register_spd_hooks(self) -> None:
        if getattr(self.optimizer, '_mmspd_spd_hooked', False):
            raise ValueError(
                f'{type(self.optimizer).__name__} is already wrapped by an '
                'SPD optimizer wrapper')
        self.optimizer._mmspd_spd_hooked = True
        self._spd_handles = (
            self.optimizer.register_step_pre_hook(self._spd_pre_hook),
            self.optimizer.register_step_post_hook(self._spd_post_hook),
        )

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Optimizers drop their step hooks when copied or unpickled.
        self.__dict__.update(state)
        self.optimizer.__dict__.pop('_mmspd_spd_hooked', None)
        self._register_spd_hooks()

    def _capture_lambda(self) -> None:
        """Move each group's ``weight_decay`` into the SPD strength."""
        for group in self.optimizer.param_groups:
            if SPD_LAMBDA_KEY in group:
                continue
            lam = group.get('weight_decay', 0.0) or 0.0
            if isinstance(lam, Tensor) or not 0.0 <= lam:
                raise ValueError(f'Invalid weight_decay (SPD strength) '
                                 f'value: {lam!r} (expected >= 0)')
            _check_anchor_mode(group.get('anchor', self._spd_anchor))
            group[SPD_LAMBDA_KEY] = float(lam)
            if 'weight_decay' in group:
                # The inner optimizer must apply no decay of its own.
                group['weight_decay'] = 0.0

    def load_state_dict(self, state_dict: dict) -> None:
        """Load the wrapped optimizer's state, anchors included.

        Groups saved without an SPD strength (a checkpoint of a plain
        optimizer) take theirs from the loaded ``weight_decay``.
        """
        super().load_state_dict(state_dict)  # type: ignore[misc]
        self._capture_lambda()

    def spd_statistics(self) -> dict[str, Tensor]:
        """Statistics of the last step; see :meth:`SPDStatistics.summary`."""
        return self._spd_stats.summary()

    @torch.no_grad()
    def reset_anchors(self) -> None:
        """Re-take the anchors of all ``'init'`` groups from current weights.

        Anchors are otherwise taken once, at the first step that updates a
        parameter, and restored by :meth:`load_state_dict`. Parameters not
        stepped yet take theirs at their first step, as usual.
        """
        state = self.optimizer.state
        for group in self.optimizer.param_groups:
            if group.get('anchor', self._spd_anchor) != 'init':
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

    @torch.no_grad()
    def _spd_pre_hook(self, optimizer: Optimizer, args, kwargs) -> None:
        self._capture_lambda()
        self._spd_stats.begin()
        new: list[tuple[Tensor, Tensor]] = []
        # All groups of one anchor mode form one tensor list, whatever their
        # strengths: paramwise_cfg makes a group per parameter.
        buckets: dict[str, tuple[list, list, list]] = {
            mode: ([], [], []) for mode in ANCHOR_MODES
        }
        for group in optimizer.param_groups:
            params = [p for p in group['params'] if p.grad is not None]
            if not params:
                continue
            mode = group.get('anchor', self._spd_anchor)
            anchors: list[Tensor] = []
            if mode == 'init':
                anchors, group_new = self._anchors(params)
                new.extend(group_new)
            lam = group[SPD_LAMBDA_KEY]
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
                                      self._spd_workspace)))
        self._spd_ctx = (new, parts)

    @torch.no_grad()
    def _spd_post_hook(self, optimizer: Optimizer, args, kwargs) -> None:
        ctx, self._spd_ctx = self._spd_ctx, None
        if ctx is None:
            return
        new, parts = ctx
        for param, anchor in new:
            optimizer.state[param]['anchor'] = anchor
        for params, anchors, lams, pre in parts:
            spd_post(params, anchors, lams, pre, self._spd_stats,
                     self._spd_workspace)
        self._spd_stats.finish()

    def _split(self, params: list[Tensor], anchors: list[Tensor] | None,
               lams: list[float]) -> list[tuple]:
        if not self._spd_foreach:
            return [(params, anchors, lams)]
        lists = [params] if anchors is None else [params, anchors]
        grouped = Optimizer._group_tensors_by_device_and_dtype(
            lists, with_indices=True)
        return [(tensors[0], None if anchors is None else tensors[1],
                 [lams[i] for i in indices])
                for tensors, indices in grouped.values()]


@OPTIM_WRAPPERS.register_module()
class SPDOptimWrapper(_SPDMixin, OptimWrapper):
    """:class:`~mmengine.optim.OptimWrapper` adding SPD to its optimizer.

    Each param group's ``weight_decay`` (after ``paramwise_cfg`` multipliers)
    becomes that group's SPD strength, kept under ``'spd_weight_decay'``, and
    the wrapped optimizer runs with ``weight_decay=0``. After every real
    optimizer step (so after gradient clipping, and once per
    ``accumulative_counts`` iterations), the SPD rule projects each updated
    tensor toward its anchor. Anchors live in the wrapped optimizer's state
    (``optimizer.state[p]['anchor']``) and are saved and resumed with it.
    With ``Adam`` inside, the result equals :class:`~mmspd.optim.AdamSPD`.

    Args:
        optimizer (Optimizer): The optimizer to wrap.
        anchor (str): ``'init'`` (anchors taken at the first step) or
            ``'zero'`` (decay toward zero). A param group key ``'anchor'``
            overrides it per group. Defaults to ``'init'``.
        foreach (bool, optional): False selects the per-tensor reference
            implementation of the rule. Defaults to None (multi-tensor).
        **kwargs: Arguments of :class:`~mmengine.optim.OptimWrapper`
            (``accumulative_counts``, ``clip_grad``).

    Example:
        >>> optim_wrapper = dict(
        ...     type='SPDOptimWrapper',
        ...     optimizer=dict(type='AdamW', lr=6e-5, weight_decay=0.5),
        ...     paramwise_cfg=dict(custom_keys={
        ...         'norm': dict(decay_mult=0.)}))
    """

    def __init__(self,
                 optimizer: Optimizer,
                 anchor: str = 'init',
                 foreach: bool | None = None,
                 **kwargs) -> None:
        super().__init__(optimizer=optimizer, **kwargs)
        self._spd_setup(anchor, foreach)


@OPTIM_WRAPPERS.register_module()
class AmpSPDOptimWrapper(_SPDMixin, AmpOptimWrapper):
    """:class:`~mmengine.optim.AmpOptimWrapper` adding SPD to its optimizer.

    As :class:`SPDOptimWrapper`, with a loss scaler. The scaler unscales the
    gradients before it calls the optimizer's step, so SPD sees true
    gradients, and a step the scaler skips (inf or NaN gradients) leaves
    weights, anchors and statistics untouched. Unlike mmengine's class it
    also runs on CPU, with ``torch.amp.GradScaler('cpu')``.

    Args:
        optimizer (Optimizer): The optimizer to wrap.
        loss_scale (str | float | dict): ``'dynamic'``, a static scale, or
            GradScaler arguments. Defaults to ``'dynamic'``.
        dtype (str | torch.dtype, optional): Autocast dtype of
            ``optim_context``. Defaults to None.
        use_fsdp (bool): Use ``ShardedGradScaler``. Defaults to False.
        anchor (str): ``'init'`` or ``'zero'``. Defaults to ``'init'``.
        foreach (bool, optional): False selects the per-tensor reference
            implementation of the rule. Defaults to None.
        **kwargs: Arguments of :class:`~mmengine.optim.OptimWrapper`.
    """

    def __init__(self,
                 optimizer: Optimizer,
                 loss_scale: Any = 'dynamic',
                 dtype: Any = None,
                 use_fsdp: bool = False,
                 anchor: str = 'init',
                 foreach: bool | None = None,
                 **kwargs) -> None:
        # AmpOptimWrapper.__init__ insists on an accelerator; everything it
        # sets up is done here with a scaler for the parameters' device.
        OptimWrapper.__init__(self, optimizer=optimizer, **kwargs)
        self._scale_update_param = None
        device = self._device_type(optimizer)
        if use_fsdp:
            from torch.distributed.fsdp.sharded_grad_scaler import (
                ShardedGradScaler,
            )
            scaler_type = ShardedGradScaler
        else:
            scaler_type = torch.amp.GradScaler
        if loss_scale == 'dynamic':
            self.loss_scaler = scaler_type(device)
        elif isinstance(loss_scale, float):
            self._scale_update_param = loss_scale
            self.loss_scaler = scaler_type(device, init_scale=loss_scale)
        elif isinstance(loss_scale, dict):
            self.loss_scaler = scaler_type(device, **loss_scale)
        else:
            raise TypeError('loss_scale must be "dynamic", a float or a '
                            f'dict, but got {loss_scale!r}')
        if isinstance(dtype, str):
            if dtype not in self.valid_dtypes:
                raise ValueError(f'Invalid dtype: {dtype!r} (expected one '
                                 f'of {self.valid_dtypes})')
            dtype = getattr(torch, dtype)
        if dtype is not None and not isinstance(dtype, torch.dtype):
            raise TypeError(f'dtype must be None, a str or a torch.dtype, '
                            f'but got {dtype!r}')
        self.cast_dtype = dtype
        self._spd_setup(anchor, foreach)

    @staticmethod
    def _device_type(optimizer: Optimizer) -> str:
        for group in optimizer.param_groups:
            for param in group['params']:
                return param.device.type
        return 'cuda'
