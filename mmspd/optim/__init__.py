"""SPD optimizers and optimizer wrappers, registered in MMEngine."""
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
from .spd_optim_wrapper import (
    SPD_LAMBDA_KEY,
    AmpSPDOptimWrapper,
    SPDOptimWrapper,
)

__all__ = [
    'SPD_LAMBDA_KEY',
    'AdamL2SP',
    'AdamSPD',
    'AmpSPDOptimWrapper',
    'SPDOptimWrapper',
    'SPDStatistics',
    'SPDWorkspace',
    'get_anchors',
    'spd_factor',
    'spd_post',
    'spd_pre',
]
