"""tools/robustness_table.py: naming the compared runs, the files."""
from __future__ import annotations

import csv

from mmspd.evaluation import RobustnessResults, comparison_table

from .conftest import load_tool


def test_runs_of_one_config_get_distinct_names():
    unique_names = load_tool('robustness_table').unique_names
    names = unique_names(['cfg', 'cfg', 'other'],
                         ['w/run1/robustness.json', 'w/run2/robustness.json',
                          'w/run3/robustness.json'])
    assert names == ['cfg (run1)', 'cfg (run2)', 'other']
    same_folder = unique_names(['cfg', 'cfg'], ['a/x/r.json', 'b/x/r.json'])
    assert len(set(same_folder)) == 2


def results(severities, scale=1.):
    run = RobustnessResults()
    run.add('clean', None, {'mIoU': 40. * scale})
    for corruption, levels in severities.items():
        for severity in levels:
            run.add(corruption, severity, {'mIoU': (40. - 10 * severity) *
                                           scale})
    return run


def test_comparison_files_show_values_marks_and_notes(tmp_path):
    tool = load_tool('robustness_table')
    base = results({'fog': [1, 2], 'brightness': [1]})
    other = results({'fog': [1], 'brightness': [1]}, scale=1.5)
    table = comparison_table([base, other], ['AdamW', 'SPD'], baseline=0,
                             strict=False)
    paths = tool.write_comparison(table, str(tmp_path / 'cmp'), 'mIoU')
    markdown = paths['table']
    assert '| AdamW | 40.00 | 25.00 | 30.00 | 27.50 | 68.75 |' in markdown
    # SPD's fog and mean cover other severities, and so do its mCEs.
    assert '| SPD | 60.00 | 45.00* | 45.00 | 45.00* |' in markdown
    assert markdown.count('100.00') == 2 and '* SPD: mCE' in markdown
    with open(tmp_path / 'cmp' / 'comparison.md') as f:
        assert f.read() == markdown
    with open(paths['csv']) as f:
        rows = list(csv.reader(f))
    assert rows[0][:5] == ['Method', 'Clean', 'fog', 'brightness', 'Mean']
    assert rows[1][4] == '27.5000'
    with open(paths['plot'], 'rb') as f:
        assert f.read(4) == b'\x89PNG'
