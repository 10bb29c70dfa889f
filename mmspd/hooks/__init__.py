"""Hooks of mmspd, registered in MMEngine's ``HOOKS``."""
from .spd_hook import SPDHook
from .spd_stats_hook import SPDStatsHook

__all__ = ['SPDHook', 'SPDStatsHook']
