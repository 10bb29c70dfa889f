"""MMEngine optimizer wrappers and constructor that add SPD to any optimizer.

Tian, Huang and Kira, "Rethinking Weight Decay for Robust Fine-Tuning of
Foundation Models", NeurIPS 2024 (https://arxiv.org/abs/2411.01713).

All of them use one mechanism, :func:`~mmspd.optim.attach_spd`: the SPD rule
runs in step hooks of the wrapped optimizer, so whoever calls its ``step()``
gets SPD, and a step that does not happen (a loss-scaler skip, an
accumulation iteration) touches neither weights, anchors nor statistics.

- :class:`SPDOptimWrapperConstructor` (``constructor=...`` in a config)
  has another constructor (``base_constructor``; MMEngine's default unless
  named) build whatever wrapper the config names (``OptimWrapper``, the
  ``AmpOptimWrapper`` mmseg's ``--amp`` switches to, or another) and
  attaches SPD to its optimizer, for code that builds the wrapper itself.
  Configs a runner trains use :class:`~mmspd.hooks.SPDHook` instead, which
  keeps the config's own constructor.
- :class:`SPDOptimWrapper` and :class:`AmpSPDOptimWrapper` stay for configs
  that name them.

Imported only when MMEngine is installed.
"""
from __future__ import annotations

from typing import Any

import torch
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.registry import (
    OPTIM_WRAPPER_CONSTRUCTORS,
    OPTIM_WRAPPERS,
    OPTIMIZERS,
)
from torch import Tensor
from torch.optim import Optimizer

from ._adam import AnchoredAdam
from ._checks import LEGACY_LAMBDA_KEY
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
        use_fsdp (bool): Must be False: SPD decides per layer from whole
            tensors and is not shard-aware yet, so FSDP raises ValueError.
            Defaults to False.
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
        if use_fsdp:
            raise ValueError(
                'AmpSPDOptimWrapper(use_fsdp=True): SPD decides per layer '
                'from whole tensors and is not shard-aware yet; under FSDP '
                'it would decide per flat shard and rank. Train with DDP '
                '(use_fsdp=False).')
        # AmpOptimWrapper.__init__ insists on an accelerator; everything it
        # sets up is done here with a scaler for the parameters' device.
        OptimWrapper.__init__(self, optimizer=optimizer, **kwargs)
        self._scale_update_param = None
        device = self._device_type(optimizer)
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


#: ``paramwise_cfg`` keys MMEngine's ``DefaultOptimWrapperConstructor``
#: applies; other constructors (mmseg's layer decay, ...) read others.
DEFAULT_PARAMWISE_KEYS = frozenset({
    'bias_lr_mult', 'bias_decay_mult', 'norm_decay_mult',
    'dwconv_decay_mult', 'flat_decay_mult', 'custom_keys',
    'bypass_duplicate', 'dcn_offset_lr_mult'
})
_DEFAULT = 'DefaultOptimWrapperConstructor'


def _type_name(constructor: Any) -> str:
    return (constructor if isinstance(constructor, str) else getattr(
        constructor, '__name__', repr(constructor)))


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class SPDOptimWrapperConstructor:
    """Build the configured optimizer wrapper with SPD on its optimizer.

    The wrapper is built by another constructor, ``base_constructor`` in
    ``optim_wrapper`` (MMEngine's ``DefaultOptimWrapperConstructor``
    unless named, e.g. mmseg's ``'LayerDecayOptimizerConstructor'``), with
    the config's ``type``, ``optimizer``, ``paramwise_cfg``,
    ``accumulative_counts``, ``clip_grad`` and mmseg's ``--amp``; then SPD
    is attached to the built optimizer (to each one of an
    ``OptimWrapperDict``) with :func:`~mmspd.optim.attach_spd`. Each
    group keeps the learning rate and ``weight_decay`` the base constructor
    gave it; ``weight_decay`` is the group's SPD strength and the optimizer
    applies no decay of its own. ``paramwise_cfg.custom_keys`` may set
    ``anchor='zero'`` for some parameters (adapters). An optional
    ``spd_cfg=dict(anchor='init', foreach=None)`` in ``optim_wrapper`` sets
    the defaults of :func:`~mmspd.optim.attach_spd`.

    In a config that a runner trains, ``custom_hooks=[dict(type='SPDHook')]``
    does the same without naming any constructor; this constructor is for
    code that builds the wrapper itself (``build_optim_wrapper``).

    Args:
        optim_wrapper_cfg (dict): The ``optim_wrapper`` config, without
            ``constructor`` and ``paramwise_cfg``.
        paramwise_cfg (dict, optional): Per-parameter settings, handed to
            the base constructor. Defaults to None.

    Raises:
        ValueError: For unknown ``spd_cfg`` keys, and, with the default base
            constructor, for ``paramwise_cfg`` keys it does not apply (such
            as ``num_layers`` / ``layer_decay_rate`` of a layer-decay
            constructor), which would otherwise be ignored.

    Example:
        >>> optim_wrapper = dict(
        ...     type='OptimWrapper',
        ...     constructor='SPDOptimWrapperConstructor',
        ...     base_constructor='LayerDecayOptimizerConstructor',
        ...     optimizer=dict(type='AdamW', lr=3e-5, weight_decay=1.0),
        ...     paramwise_cfg=dict(num_layers=12, layer_decay_rate=0.9))
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
        base = optim_wrapper_cfg.pop('base_constructor', _DEFAULT)
        name = _type_name(base)
        if name.split('.')[-1] == type(self).__name__:
            raise ValueError(f'Invalid base_constructor: {name!r} (a '
                             'constructor other than itself)')
        if name in (_DEFAULT, f'mmengine.{_DEFAULT}'):
            ignored = set(paramwise_cfg or {}) - DEFAULT_PARAMWISE_KEYS
            if ignored:
                raise ValueError(
                    f'SPDOptimWrapperConstructor builds param groups with '
                    f'{_DEFAULT}, which does not apply the paramwise_cfg '
                    f'keys {sorted(ignored)} (it applies '
                    f'{sorted(DEFAULT_PARAMWISE_KEYS)}). Name the '
                    'constructor they belong to in optim_wrapper, e.g. '
                    "base_constructor='LayerDecayOptimizerConstructor', "
                    'or keep the config\'s constructor and turn SPD on '
                    "with custom_hooks=[dict(type='SPDHook')].")
        self.base_constructor = OPTIM_WRAPPER_CONSTRUCTORS.build(
            dict(type=base, optim_wrapper_cfg=optim_wrapper_cfg,
                 paramwise_cfg=paramwise_cfg))

    def __call__(self, model: torch.nn.Module) -> OptimWrapper:
        optim_wrapper = self.base_constructor(model)
        wrappers = getattr(optim_wrapper, 'optim_wrappers', None)
        for wrapper in (wrappers.values() if isinstance(wrappers, dict)
                        else [optim_wrapper]):
            optimizer = wrapper.optimizer
            if isinstance(optimizer, AnchoredAdam):
                raise TypeError(
                    f'{type(optimizer).__name__} ties parameters to anchors '
                    "by itself: drop constructor='SPDOptimWrapperConstructor'"
                    ' from optim_wrapper, or use an optimizer such as AdamW '
                    'or SGD')
            if get_attachment(optimizer) is None:
                # Kept on the wrapper too, so that a copy of the wrapper
                # carries SPD over to the copied optimizer.
                wrapper._mmspd_spd = attach_spd(optimizer, **self.spd_cfg)
        return optim_wrapper
