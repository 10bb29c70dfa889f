"""mmspd: Selective Projection Decay for MMSegmentation 1.x.

Importing this package registers its optimizers, optimizer wrappers,
constructors, hooks, runner, datasets, transforms and evaluation loop in
the MMEngine / MMSegmentation registries, and changes nothing else in the
process. Without MMEngine it imports nothing else, so that
:mod:`mmspd.optim` works with torch alone.
"""
import importlib.util

from .version import __version__


def _has_mmengine() -> bool:
    try:
        return importlib.util.find_spec('mmengine') is not None
    except (ImportError, ValueError):
        return False


if _has_mmengine():
    from . import (  # noqa: F401
        baselines,
        datasets,
        evaluation,
        hooks,
        optim,
        utils,
    )

__all__ = ['__version__']
