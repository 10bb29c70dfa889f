"""mmspd: Selective Projection Decay for MMSegmentation 1.x.

Importing this package registers its optimizers, optimizer wrappers, hooks
and transforms in the MMEngine / MMSegmentation registries, and applies the
compatibility fixes in :mod:`mmspd.utils.compat`. Without MMEngine it
imports nothing else, so that :mod:`mmspd.optim` works with torch alone.
"""
import importlib.util

from .version import __version__


def _has_mmengine() -> bool:
    try:
        return importlib.util.find_spec('mmengine') is not None
    except (ImportError, ValueError):
        return False


if _has_mmengine():
    from .utils import allow_mmengine_checkpoints, register_config_package

    allow_mmengine_checkpoints()
    register_config_package()  # `mmspd::` base configs

    from . import baselines, datasets, evaluation, hooks, optim  # noqa: F401

__all__ = ['__version__']
