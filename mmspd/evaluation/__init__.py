"""Corruption-robustness evaluation: loop, metrics, reports, comparison."""
from __future__ import annotations

from .checks import (
    check_checkpoint_file,
    file_sha256,
    load_weights,
    matched_weights,
    scan_test_data,
)
from .compare import (
    COMPARISON_FILES,
    comparison_csv,
    comparison_markdown,
    comparison_table,
    corruption_errors,
    default_name,
    unique_names,
    write_comparison,
)
from .metrics import CLEAN, METRICS, summarize
from .report import OUTPUT_FILES, RobustnessResults
from .robustness import (
    RESUME_KEYS,
    add_corruption,
    evaluate_robustness,
    fingerprint_test_setup,
    load_for_resume,
    plan_conditions,
)
from .runtime import (
    WorkDirLock,
    load_config,
    now,
    prepare_work_dir,
    setup_launcher,
    versions,
)
from .show import ShowSamplesHook

__all__ = [
    'CLEAN',
    'COMPARISON_FILES',
    'METRICS',
    'OUTPUT_FILES',
    'RESUME_KEYS',
    'RobustnessResults',
    'ShowSamplesHook',
    'WorkDirLock',
    'add_corruption',
    'check_checkpoint_file',
    'comparison_csv',
    'comparison_markdown',
    'comparison_table',
    'corruption_errors',
    'default_name',
    'evaluate_robustness',
    'file_sha256',
    'fingerprint_test_setup',
    'load_config',
    'load_for_resume',
    'load_weights',
    'matched_weights',
    'now',
    'plan_conditions',
    'prepare_work_dir',
    'scan_test_data',
    'setup_launcher',
    'summarize',
    'unique_names',
    'versions',
    'write_comparison',
]
