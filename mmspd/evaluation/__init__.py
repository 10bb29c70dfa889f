"""Corruption-robustness evaluation: loop, metrics, reports, comparison."""
from __future__ import annotations

from .compare import (
    COMPARISON_FILES,
    comparison_csv,
    comparison_markdown,
    comparison_table,
    default_name,
    write_comparison,
)
from .metrics import CLEAN, METRICS, summarize
from .report import OUTPUT_FILES, RobustnessResults
from .robustness import (
    add_corruption,
    evaluate_robustness,
    fingerprint_test_setup,
    load_for_resume,
    plan_conditions,
)

__all__ = [
    'CLEAN',
    'COMPARISON_FILES',
    'METRICS',
    'OUTPUT_FILES',
    'RobustnessResults',
    'add_corruption',
    'comparison_csv',
    'comparison_markdown',
    'comparison_table',
    'default_name',
    'evaluate_robustness',
    'fingerprint_test_setup',
    'load_for_resume',
    'plan_conditions',
    'summarize',
    'write_comparison',
]
