"""A check that the optimizer a config built really applies SPD."""
from __future__ import annotations

import warnings

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from mmspd.optim import applies_spd

_HOW_TO = (
    "Use optim_wrapper=dict(type='OptimWrapper', optimizer=dict("
    "type='AdamSPD', ...)), or keep your optimizer and add "
    "constructor='SPDOptimWrapperConstructor' to optim_wrapper (it works "
    'with any wrapper type and with --amp). A custom constructor or a '
    'later hook that rebuilds the optimizer drops SPD; remove '
    "dict(type='SPDGuardHook') from custom_hooks to train without SPD.")


def _describe(optim_wrapper) -> str:
    optimizer = getattr(optim_wrapper, 'optimizer', None)
    return (f'{type(optim_wrapper).__name__} around '
            f'{type(optimizer).__name__}')


@HOOKS.register_module()
class SPDGuardHook(Hook):
    """Fail before the first iteration if the optimizer does not apply SPD.

    SPD configs ask for this hook, so that a config edit, a command-line
    override or a tool that rebuilds the optimizer wrapper cannot silently
    turn an SPD run into a plain one. The check runs in ``before_train``,
    after the wrapper is built and checkpoints are loaded. It accepts
    :class:`~mmspd.optim.AdamSPD` and any optimizer SPD is attached to
    (``SPDOptimWrapperConstructor``, ``SPDOptimWrapper``,
    ``AmpSPDOptimWrapper``); with an ``OptimWrapperDict`` every wrapper in
    it must apply SPD. It also warns when every SPD strength is zero (SPD
    then changes nothing).

    Example:
        >>> custom_hooks = [dict(type='SPDGuardHook')]
    """

    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        """Raise RuntimeError unless ``runner.optim_wrapper`` applies SPD."""
        optim_wrapper = runner.optim_wrapper
        wrappers = getattr(optim_wrapper, 'optim_wrappers', None)
        named = (list(wrappers.items()) if isinstance(wrappers, dict) else
                 [('', optim_wrapper)])
        missing = [(name, wrapper) for name, wrapper in named
                   if not applies_spd(wrapper)]
        if missing:
            built = ', '.join(
                (f'{name}: ' if name else '') + _describe(wrapper)
                for name, wrapper in missing)
            raise RuntimeError(
                f'SPDGuardHook: the optimizer wrapper does not apply SPD '
                f'(built: {built}). {_HOW_TO}')
        strengths = [
            group.get('weight_decay', 0.0) or 0.0 for _, wrapper in named
            for group in wrapper.optimizer.param_groups
        ]
        if not any(strengths):
            warnings.warn(
                'SPDGuardHook: every param group has weight_decay 0, the SPD '
                'strength, so SPD changes nothing; set optimizer.'
                'weight_decay to the SPD strength you want.', UserWarning,
                stacklevel=2)
