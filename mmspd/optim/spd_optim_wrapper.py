"""MMEngine optimizer wrappers and constructor that add SPD to any optimizer.

Tian, Huang and Kira, "Rethinking Weight Decay for Robust Fine-Tuning of
Foundation Models", NeurIPS 2024 (https://arxiv.org/abs/2411.01713).

All of them use one mechanism, :func:`~mmspd.optim.attach_spd`: the SPD rule
runs in step hooks of the wrapped optimizer, so whoever calls its ``step()``
gets SPD, and a step that does not happen (a loss-scaler skip, an
accumulation iteration) touches neither weights, anchors nor statistics.

- :class:`SPDOptimWrapperConstructor` (``constructor=...`` in a config)
  builds whatever wrapper the config names (``OptimWrapper``, the
  ``AmpOptimWrapper`` mmseg's ``--amp`` switches to, or another) and
  attaches SPD to its optimizer.
- :class:`SPDOptimWrapper` and :class:`AmpSPDOptimWrapper` stay for configs
  that name them.

Imported only when MMEngine is installed.
"""
from __future__ import annotations

from typing import Any

import torch
from mmengine.optim import (
    AmpOptimWrapper,
    DefaultOptimWrapperConstructor,
    OptimWrapper,
)
from mmengine.registry import (
    OPTIM_WRAPPER_CONSTRUCTORS,
    OPTIM_WRAPPERS,
    OPTIMIZERS,
)
from torch import Tensor
from torch.optim import Optimizer

from ._adam import LEGACY_LAMBDA_KEY, AnchoredAdam
from .adam_l2sp import AdamL2SP
from .adam_spd import AdamSPD
from .attach import OptimizerSPD, attach_spd, get_attachment

OPTIMIZERS.register_module(module=AdamSPD)
OPTIMIZERS.register_module(module=AdamL2SP)

#: Group key under which mmspd 0.1 wrappers kept the SPD strength. Current
#: versions read ``weight_decay`` itself and convert such checkpoints.
SPD_LAMBDA_KEY = LEGACY_LAMBDA_KEY


class _SPDMixin:
    """What the SPD wrappers add to an MMEngine optimizer wrapper."""

    optimizer: Optimizer
    _mmspd_spd: OptimizerSPD

    def spd_statistics(self) -> dict[str, Tensor]:
        """Statistics of the last step; see :meth:`SPDStatistics.summary`."""
        return self._mmspd_spd.statistics()

    def reset_anchors(self) -> None:
        """Re-take the anchors; see :meth:`OptimizerSPD.reset_anchors`."""
        self._mmspd_spd.reset_anchors()


@OPTIM_WRAPPERS.register_module()
class SPDOptimWrapper(_SPDMixin, OptimWrapper):
    """:class:`~mmengine.optim.OptimWrapper` adding SPD to its optimizer.

    Each param group's ``weight_decay`` (after ``paramwise_cfg`` multipliers)
    is that group's SPD strength, read at every step (so a ``weight_decay``
    schedule drives it); the wrapped optimizer steps with ``weight_decay``
    set to 0. After every real optimizer step (so after gradient clipping,
    and once per ``accumulative_counts`` iterations), the SPD rule projects
    each updated tensor toward its anchor. Anchors live in the wrapped
    optimizer's state (``optimizer.state[p]['anchor']``) and are saved and
    resumed with it.
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
        self._mmspd_spd = attach_spd(self.optimizer, anchor, foreach)


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
        self._mmspd_spd = attach_spd(self.optimizer, anchor, foreach)

    @staticmethod
    def _device_type(optimizer: Optimizer) -> str:
        for group in optimizer.param_groups:
            for param in group['params']:
                return param.device.type
        return 'cuda'


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class SPDOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """Build the configured optimizer wrapper with SPD on its optimizer.

    Everything works as with MMEngine's default constructor (``type``,
    ``optimizer``, ``paramwise_cfg``, ``accumulative_counts``,
    ``clip_grad``, mmseg's ``--amp``); then SPD is attached to the built
    optimizer with :func:`~mmspd.optim.attach_spd`. Each group's
    ``weight_decay`` (after ``decay_mult``) is its SPD strength and the
    optimizer applies no decay of its own. ``paramwise_cfg.custom_keys`` may
    set ``anchor='zero'`` for some parameters (adapters). An optional
    ``spd_cfg=dict(anchor='init', foreach=None)`` in ``optim_wrapper`` sets
    the defaults of :func:`~mmspd.optim.attach_spd`.

    Args:
        optim_wrapper_cfg (dict): The ``optim_wrapper`` config.
        paramwise_cfg (dict, optional): Per-parameter settings.
            Defaults to None.

    Example:
        >>> optim_wrapper = dict(
        ...     type='OptimWrapper',
        ...     constructor='SPDOptimWrapperConstructor',
        ...     optimizer=dict(type='SGD', lr=0.01, momentum=0.9,
        ...                    weight_decay=1.0),
        ...     paramwise_cfg=dict(norm_decay_mult=0.0))
    """

    def __init__(self,
                 optim_wrapper_cfg: dict,
                 paramwise_cfg: dict | None = None) -> None:
        optim_wrapper_cfg = dict(optim_wrapper_cfg)
        spd_cfg = dict(optim_wrapper_cfg.pop('spd_cfg', None) or {})
        unknown = set(spd_cfg) - {'anchor', 'foreach'}
        if unknown:
            raise ValueError(f'Invalid spd_cfg keys: {sorted(unknown)} '
                             "(expected 'anchor' and/or 'foreach')")
        self.spd_cfg = spd_cfg
        super().__init__(optim_wrapper_cfg, paramwise_cfg)

    def __call__(self, model: torch.nn.Module) -> OptimWrapper:
        optim_wrapper = super().__call__(model)
        optimizer = optim_wrapper.optimizer
        if isinstance(optimizer, AnchoredAdam):
            raise TypeError(
                f'{type(optimizer).__name__} ties parameters to anchors by '
                "itself: drop constructor='SPDOptimWrapperConstructor' from "
                'optim_wrapper, or use an optimizer such as AdamW or SGD')
        if get_attachment(optimizer) is None:
            # Kept on the wrapper too, so that a copy of the wrapper carries
            # SPD over to the copied optimizer.
            optim_wrapper._mmspd_spd = attach_spd(optimizer, **self.spd_cfg)
        return optim_wrapper
