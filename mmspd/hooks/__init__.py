"""Hooks of mmspd, registered in MMEngine's ``HOOKS``."""
from .show_samples_hook import ShowSamplesHook
from .spd_hook import SPDHook
from .spd_stats_hook import SPDStatsHook

__all__ = ['SPDHook', 'SPDStatsHook', 'ShowSamplesHook']
