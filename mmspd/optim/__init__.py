"""Selective Projection Decay: AdamSPD, SPD on any optimizer, and L2-SP.

Everything here needs torch alone. When MMEngine is installed, the
optimizers, the SPD optimizer wrappers and ``SPDOptimWrapperConstructor``
are registered in its registries as well.
"""
import importlib.util

from ._checks import spd_enabled
from ._spd import (
    SPDStatistics,
    SPDWorkspace,
    spd_factor,
    spd_post,
    spd_pre,
)
from .adam_l2sp import AdamL2SP
from .adam_spd import AdamSPD
from .anchors import get_anchors
from .attach import OptimizerSPD, applies_spd, attach_spd, spd_statistics

__all__ = [
    'AdamL2SP',
    'AdamSPD',
    'OptimizerSPD',
    'SPDStatistics',
    'SPDWorkspace',
    'applies_spd',
    'attach_spd',
    'get_anchors',
    'spd_enabled',
    'spd_factor',
    'spd_post',
    'spd_pre',
    'spd_statistics',
]


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


if _importable('mmengine'):
    from .spd_optim_wrapper import (
        SPD_LAMBDA_KEY,
        AmpSPDOptimWrapper,
        SPDOptimWrapper,
        SPDOptimWrapperConstructor,
    )
    __all__ += [
        'SPD_LAMBDA_KEY',
        'AmpSPDOptimWrapper',
        'SPDOptimWrapper',
        'SPDOptimWrapperConstructor',
    ]
