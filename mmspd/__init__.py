"""mmspd: Selective Projection Decay for MMSegmentation 1.x.

Importing this package registers its optimizers, optimizer wrappers, hooks
and transforms in the MMEngine / MMSegmentation registries, and applies the
compatibility fixes in :mod:`mmspd.utils.compat`.
"""
from .utils import allow_mmengine_checkpoints
from .version import __version__

allow_mmengine_checkpoints()

from . import datasets, evaluation, hooks, optim  # noqa: F401

__all__ = ['__version__']
