"""Seeded image corruptions, faithful to imagecorruptions 1.1.2."""
from __future__ import annotations

from .api import (
    ALL_CORRUPTIONS,
    BENCHMARK_CORRUPTIONS,
    CHANNEL_ORDERS,
    CORRUPTION_GROUPS,
    DEFAULT_CORRUPTIONS,
    HOLDOUT_CORRUPTIONS,
    KEYS,
    MIN_SIZE,
    SEVERITIES,
    VALIDATION_CORRUPTIONS,
    check_channel_order,
    check_corruption,
    check_key,
    check_severity,
    corrupt,
    get_corruption,
    image_key,
    image_seed,
    resolve_corruptions,
)
from .reference import (
    compatible_imagecorruptions,
    reference_corruption,
    seeded_global_state,
)

__all__ = [
    'ALL_CORRUPTIONS',
    'BENCHMARK_CORRUPTIONS',
    'CHANNEL_ORDERS',
    'CORRUPTION_GROUPS',
    'DEFAULT_CORRUPTIONS',
    'HOLDOUT_CORRUPTIONS',
    'KEYS',
    'MIN_SIZE',
    'SEVERITIES',
    'VALIDATION_CORRUPTIONS',
    'check_channel_order',
    'check_corruption',
    'check_key',
    'check_severity',
    'compatible_imagecorruptions',
    'corrupt',
    'get_corruption',
    'image_key',
    'image_seed',
    'reference_corruption',
    'resolve_corruptions',
    'seeded_global_state',
]
