"""The param group keys the SPD optimizers read, and checks of their values.

:func:`spd_enabled` decides whether SPD applies to a group; the ``check_*``
functions raise a ValueError naming a bad hyper-parameter, anchor mode or
anchor; :func:`warn_strength_above_one` warns about SPD strengths above 1.
AdamSPD, AdamL2SP and SPD attached to any optimizer share them.
"""
from __future__ import annotations

import math
import warnings
from typing import Any, Iterable

from torch import Tensor

ANCHOR_MODES = ('init', 'zero')

#: Group key under which mmspd 0.1 SPD wrappers saved the SPD strength
#: (with ``weight_decay`` set to 0); read when such a checkpoint is loaded.
LEGACY_LAMBDA_KEY = 'spd_weight_decay'


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_strength(value: Any, name: str = 'weight_decay') -> None:
    """Raise ValueError unless ``value`` is a finite float >= 0."""
    if not _is_number(value) or not 0.0 <= value < math.inf:
        raise ValueError(f'Invalid {name} value: {value!r} (expected a '
                         'finite float >= 0)')


#: Param group key choosing, per group, between SPD (True, the default) and
#: the optimizer's own weight decay (False), ``weight_decay`` then being
#: that decay's coefficient.
SPD_KEY = 'spd'


def spd_enabled(group: dict[str, Any]) -> bool:
    """Whether SPD applies to a param group (its :data:`SPD_KEY`; True if
    absent): False groups take the optimizer's own weight decay."""
    return group.get(SPD_KEY, True)


def checked_spd_enabled(group: dict[str, Any]) -> bool:
    """:func:`spd_enabled`, after checking the group's :data:`SPD_KEY`."""
    enabled = spd_enabled(group)
    check_spd_flag(enabled)
    return enabled


def check_anchor_mode(mode: Any) -> None:
    """Raise ValueError unless ``mode`` is one of :data:`ANCHOR_MODES`."""
    if mode not in ANCHOR_MODES:
        raise ValueError(f'Invalid anchor mode: {mode!r} (expected one of '
                         f'{ANCHOR_MODES})')


def check_spd_flag(value: Any) -> None:
    """Raise ValueError unless ``value`` is True or False."""
    if not isinstance(value, bool):
        # ValueError, as for every other bad hyper-parameter (and torch's).
        raise ValueError(  # noqa: TRY004
            f'Invalid {SPD_KEY!r} value: {value!r} (expected True, SPD '
            "toward the anchor, or False, the optimizer's own weight "
            'decay)')


def warn_strength_above_one(strengths: Iterable[float],
                            owner: str) -> bool:
    """Warn when an SPD strength is above 1; return whether it warned.

    A selected tensor moves to ``theta_new - lam * r * (theta_new - a)``
    with ``0 <= r <= 1``: where ``lam * r > 1`` it lands past its anchor.
    """
    above = sorted({lam for lam in strengths if lam > 1})
    if not above:
        return False
    warnings.warn(
        f'{owner}: SPD strength (weight_decay) '
        f'{above[0] if len(above) == 1 else above} > 1. A tensor SPD '
        'selects moves to theta_new - lambda * r * (theta_new - anchor), '
        'r in [0, 1]: where lambda * r > 1 that pulls it past its anchor, '
        'to the other side (lambda = 2, r = 1 mirrors it). lambda <= 1 '
        'only pulls toward the anchor.', UserWarning, stacklevel=3)
    return True


def check_hyper_parameters(group: dict[str, Any],
                           strength: str = 'weight_decay') -> None:
    """Raise ValueError naming any invalid hyper-parameter of ``group``."""
    lr = group['lr']
    if not _is_number(lr) or not 0.0 <= lr < math.inf:
        raise ValueError(f'Invalid learning rate: {lr!r} (expected a '
                         'finite float >= 0)')
    eps = group['eps']
    if not _is_number(eps) or not 0.0 <= eps < math.inf:
        raise ValueError(f'Invalid epsilon value: {eps!r} (expected a '
                         'finite float >= 0)')
    betas = group['betas']
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f'Invalid betas: {betas!r} (expected two values)')
    for i, beta in enumerate(betas):
        if not _is_number(beta) or not 0.0 <= beta < 1.0:
            raise ValueError(f'Invalid beta parameter at index {i}: '
                             f'{beta!r} (expected 0 <= beta < 1)')
    check_strength(group['weight_decay'], strength)
    check_anchor_mode(group['anchor'])
    if not isinstance(group['amsgrad'], bool):
        raise ValueError(  # noqa: TRY004  as torch's checks
            f"Invalid amsgrad: {group['amsgrad']!r} (expected True or "
            'False)')
    if group['foreach'] not in (None, True, False):
        raise ValueError(f"Invalid foreach: {group['foreach']!r} (expected "
                         'None, True or False)')
    if SPD_KEY in group:
        check_spd_flag(group[SPD_KEY])


def check_anchor(param: Tensor, anchor: Tensor) -> None:
    """Raise ValueError when ``anchor`` cannot anchor ``param``."""
    if not isinstance(anchor, Tensor) or anchor.shape != param.shape:
        shape = getattr(anchor, 'shape', type(anchor).__name__)
        raise ValueError(f'Anchor shape {tuple(shape)} does not match '
                         f'parameter shape {tuple(param.shape)}')
