"""Corruption robustness: the test loop, metrics, reports, comparison."""
from .conditions import WorkDirBusy, plan_conditions, scan_test_data
from .loop import CorruptionTestLoop
from .metrics import comparison_table, corruption_errors
from .report import RobustnessResults, atomic_write

__all__ = [
    'CorruptionTestLoop', 'RobustnessResults', 'WorkDirBusy', 'atomic_write',
    'comparison_table', 'corruption_errors', 'plan_conditions',
    'scan_test_data'
]
