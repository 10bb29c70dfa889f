"""Hooks of mmspd, registered in MMEngine's ``HOOKS``."""
from .spd_guard_hook import SPDGuardHook
from .spd_stats_hook import SPDStatsHook

__all__ = ['SPDGuardHook', 'SPDStatsHook']
