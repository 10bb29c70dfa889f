"""tools/robustness_table.py: naming the compared runs."""
from __future__ import annotations

from .conftest import load_tool


def test_runs_of_one_config_get_distinct_names():
    unique_names = load_tool('robustness_table').unique_names
    names = unique_names(['cfg', 'cfg', 'other'],
                         ['w/run1/robustness.json', 'w/run2/robustness.json',
                          'w/run3/robustness.json'])
    assert names == ['cfg (run1)', 'cfg (run2)', 'other']
    same_folder = unique_names(['cfg', 'cfg'], ['a/x/r.json', 'b/x/r.json'])
    assert len(set(same_folder)) == 2
