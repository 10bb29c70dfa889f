"""SPD on whatever optimizer a config built, and the check that it runs."""
from __future__ import annotations

import warnings
from typing import Any

from mmengine.hooks import Hook
from mmengine.optim import OptimWrapper
from mmengine.registry import HOOKS

from mmspd.optim import applies_spd, attach_spd, spd_enabled

_ANCHORS = ('init', 'zero')
_REMOVE = ("remove dict(type='SPDHook') from custom_hooks to train "
           'without SPD')


def _named_wrappers(optim_wrapper: Any) -> list[tuple[str, Any]]:
    """``(name, wrapper)`` pairs; the name is empty for a single wrapper."""
    wrappers = getattr(optim_wrapper, 'optim_wrappers', None)
    if isinstance(wrappers, dict):  # OptimWrapperDict
        return list(wrappers.items())
    return [('', optim_wrapper)]


def _strengths(optimizer: Any) -> list[float]:
    """The SPD strengths (``weight_decay``) of the groups SPD applies to;
    groups with ``spd=False`` take the optimizer's own decay instead."""
    return [group.get('weight_decay') or 0.0
            for group in optimizer.param_groups if spd_enabled(group)]


def _describe(name: str, wrapper: Any) -> str:
    optimizer = getattr(wrapper, 'optimizer', None)
    where = f"optim_wrapper['{name}']: " if name else ''
    return (f'{where}{type(wrapper).__name__} around '
            f'{type(optimizer).__name__}')


@HOOKS.register_module()
class SPDHook(Hook):
    """Apply SPD to the optimizer a config built, and stop if it does not run.

    The one line that turns Selective Projection Decay on in any MMEngine /
    MMSegmentation config, whatever its optimizer, ``paramwise_cfg``,
    wrapper constructor (``LayerDecayOptimizerConstructor``, ...) and
    wrapper type (``OptimWrapper``, ``AmpOptimWrapper``, also after mmseg's
    ``tools/train.py --amp`` switched it). Nothing the config builds is
    replaced: each param group keeps its learning rate, and its
    ``weight_decay`` (after ``decay_mult``) becomes its SPD strength
    lambda; the optimizer itself then applies no decay.

    - ``before_run`` (after the runner built the wrapper and its parameter
      schedulers, before ``load_or_resume``) attaches SPD with
      :func:`~mmspd.optim.attach_spd`, so that resuming restores the
      anchors saved in the checkpoint and a ``load_from`` checkpoint
      becomes the anchor. An optimizer that applies SPD already
      (:class:`~mmspd.optim.AdamSPD`, the SPD wrappers,
      ``SPDOptimWrapperConstructor``) is left as it is. With an
      ``OptimWrapperDict`` every optimizer in it gets SPD.
    - An optimizer SPD cannot run on (such as ``AdamL2SP``) raises
      ``RuntimeError`` there, before the first iteration, saying what to
      change.
    - ``before_train`` (after loading) raises if the optimizer no longer
      applies SPD, e.g. when another hook replaced it, and warns when every
      SPD strength is zero (SPD then changes nothing).

    Every rank of a distributed run builds the same wrapper and so makes
    the same decision.

    Args:
        anchor (str): Anchor mode of the groups that do not set one
            (``paramwise_cfg.custom_keys`` may set ``anchor``):
            ``'init'``, the weights at the first step (after all loading),
            or ``'zero'`` (decay toward the origin, for adapters).
            Defaults to ``'init'``.
        foreach (bool, optional): False selects the per-tensor reference
            implementation of the rule. Defaults to None (multi-tensor).

    Example:
        >>> custom_imports = dict(imports=['mmspd'],
        ...                       allow_failed_imports=False)
        >>> custom_hooks = [dict(type='SPDHook')]
        >>> optim_wrapper = dict(optimizer=dict(weight_decay=1.0))  # lambda
    """

    priority = 'VERY_HIGH'

    def __init__(self, anchor: str = 'init',
                 foreach: bool | None = None) -> None:
        if anchor not in _ANCHORS:
            raise ValueError(f'Invalid anchor: {anchor!r} (expected one of '
                             f'{_ANCHORS})')
        if foreach not in (None, True, False):
            raise ValueError(f'Invalid foreach: {foreach!r} (expected None, '
                             'True or False)')
        self.anchor = anchor
        self.foreach = foreach

    def before_run(self, runner) -> None:
        """Attach SPD to every optimizer of ``runner.optim_wrapper``.

        Raises:
            RuntimeError: If SPD cannot be attached to one of them.
        """
        optim_wrapper = runner.optim_wrapper
        if not isinstance(optim_wrapper, OptimWrapper):
            return  # validation and test runs build no optimizer
        attached = []
        for name, wrapper in _named_wrappers(optim_wrapper):
            if applies_spd(wrapper):
                continue
            optimizer = getattr(wrapper, 'optimizer', None)
            try:
                attach_spd(optimizer, anchor=self.anchor,
                           foreach=self.foreach)
            except (TypeError, ValueError) as error:
                raise RuntimeError(
                    f'SPDHook cannot apply SPD to the optimizer the config '
                    f'built ({_describe(name, wrapper)}): {error}. Use an '
                    'optimizer with a weight_decay (the SPD strength), '
                    "such as AdamW, Adam or SGD, or type='AdamSPD'; or "
                    f'{_REMOVE}.') from error
            groups = optimizer.param_groups
            strengths = sorted(set(_strengths(optimizer)))
            attached.append(
                f'{_describe(name, wrapper)} (SPD strengths, i.e. '
                f'weight_decay, in its {len(groups)} param groups: '
                f'{", ".join(f"{lam:g}" for lam in strengths)})')
        if attached:
            runner.logger.info('SPDHook: SPD attached to '
                               f'{"; ".join(attached)}')

    def before_train(self, runner) -> None:
        """Check, after loading, that every optimizer still applies SPD.

        Raises:
            RuntimeError: If one does not.
        """
        named = _named_wrappers(runner.optim_wrapper)
        missing = [_describe(name, wrapper) for name, wrapper in named
                   if not applies_spd(wrapper)]
        if missing:
            raise RuntimeError(
                'SPDHook: the optimizer wrapper does not apply SPD (built: '
                f'{", ".join(missing)}); it was replaced after SPDHook ran '
                'in before_run. Let the runner build the optimizer wrapper '
                'from optim_wrapper, and drop whatever rebuilds it, or '
                f'{_REMOVE}.')
        if not any(lam for _, wrapper in named
                   for lam in _strengths(wrapper.optimizer)):
            warnings.warn(
                'SPDHook: no param group applies SPD with a weight_decay '
                '(the SPD strength) above 0, so SPD changes nothing; set '
                'optim_wrapper.optimizer.weight_decay to the SPD strength '
                'you want.', UserWarning, stacklevel=2)
