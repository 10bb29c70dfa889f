"""Corruption robustness: the test loop, metrics, reports, comparison."""
from .checks import WorkDirBusy, scan_test_data, work_dir_lock
from .compare import comparison_table, corruption_errors
from .conditions import add_corruption, fingerprint_test_setup, plan_conditions
from .loop import CorruptionTestLoop, load_for_resume
from .metrics import CLEAN, METRICS, summarize
from .report import OUTPUT_FILES, RobustnessResults, atomic_write

__all__ = [
    'CLEAN', 'METRICS', 'OUTPUT_FILES', 'CorruptionTestLoop',
    'RobustnessResults', 'WorkDirBusy', 'add_corruption',
    'atomic_write', 'comparison_table', 'corruption_errors',
    'fingerprint_test_setup', 'load_for_resume', 'plan_conditions',
    'scan_test_data', 'summarize', 'work_dir_lock'
]
