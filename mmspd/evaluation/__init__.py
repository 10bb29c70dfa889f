"""Corruption robustness: the test loop, metrics, reports, comparison."""
from .conditions import (
    WorkDirBusy,
    add_corruption,
    fingerprint_test_setup,
    plan_conditions,
    scan_test_data,
    work_dir_lock,
)
from .loop import CorruptionTestLoop, load_for_resume
from .metrics import comparison_table, corruption_errors, summarize
from .report import RobustnessResults, atomic_write

__all__ = [
    'CorruptionTestLoop', 'RobustnessResults', 'WorkDirBusy',
    'add_corruption', 'atomic_write', 'comparison_table',
    'corruption_errors', 'fingerprint_test_setup', 'load_for_resume',
    'plan_conditions', 'scan_test_data', 'summarize', 'work_dir_lock'
]
