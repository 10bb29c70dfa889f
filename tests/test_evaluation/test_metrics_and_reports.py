"""Robustness metrics, result files and the comparison table."""
from __future__ import annotations

import csv
import io
import json
import math

import pytest

from mmspd.evaluation import (
    RobustnessResults,
    comparison_table,
    load_for_resume,
    summarize,
    write_comparison,
)

CLEAN = {'mIoU': 40.0, 'aAcc': 80.0, 'mAcc': 50.0}


def make_results(meta=None, scale=1.0):
    results = RobustnessResults(meta or {'checkpoint': 'a.pth', 'seed': 0})
    results.add('clean', None, {k: v * scale for k, v in CLEAN.items()})
    for severity, miou in [(1, 30.), (2, 20.), (3, 10.)]:
        results.add('fog', severity, {
            'mIoU': miou * scale, 'aAcc': 70., 'mAcc': 40.
        })
    results.add('brightness', 1, {'mIoU': 36. * scale, 'aAcc': 78.,
                                  'mAcc': 45.})
    return results


def test_summary_means_mpc_and_rpc():
    summary = make_results().summary()
    assert summary['per_corruption']['fog']['mIoU'] == pytest.approx(20.)
    assert summary['per_corruption']['brightness']['mIoU'] == 36.
    assert summary['severities'] == {'fog': [1, 2, 3], 'brightness': [1]}
    # mPC averages per-corruption means, not all conditions alike.
    assert summary['mPC']['mIoU'] == pytest.approx((20. + 36.) / 2)
    assert summary['rPC']['mIoU'] == pytest.approx(100 * 28. / 40.)
    assert summary['mPC']['aAcc'] == pytest.approx((70. + 78.) / 2)


def test_summary_without_data_is_nan_not_an_error():
    summary = summarize(None, [])
    assert math.isnan(summary['mPC']['mIoU'])
    assert math.isnan(summary['rPC']['mIoU'])
    partial = summarize(None,
                        [{'corruption': 'fog', 'severity': 1, 'mIoU': 5.}])
    assert partial['mPC']['mIoU'] == 5.
    assert math.isnan(partial['rPC']['mIoU'])


def test_save_and_load_round_trip(tmp_path):
    results = make_results()
    paths = results.save(str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        'robustness.csv', 'robustness.json', 'robustness.md',
        'robustness.png'
    ]
    with open(paths['plot'], 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'

    def no_nan(literal):
        raise AssertionError(f'non-standard JSON literal {literal}')

    data = json.loads((tmp_path / 'robustness.json').read_text(),
                      parse_constant=no_nan)
    assert data['clean'] == CLEAN
    assert data['summary']['mPC']['mIoU'] == pytest.approx(28.)

    loaded = RobustnessResults.load(paths['json'])
    assert loaded.clean == CLEAN
    assert loaded.conditions == results.conditions
    assert loaded.has('fog', 2) and not loaded.has('fog', 4)
    assert loaded.get('brightness', 1)['mIoU'] == 36.


def test_csv_and_markdown_contents(tmp_path):
    results = make_results()
    rows = list(csv.DictReader(io.StringIO(results.to_csv())))
    by_key = {(r['corruption'], r['severity']): r for r in rows}
    assert float(by_key[('clean', '')]['mIoU']) == 40.
    assert float(by_key[('fog', '2')]['mIoU']) == 20.
    assert float(by_key[('fog', 'mean')]['mIoU']) == 20.
    assert float(by_key[('mPC', '')]['mIoU']) == 28.
    assert float(by_key[('rPC', '')]['mIoU']) == 70.

    markdown = results.to_markdown()
    assert '| Corruption | 1 | 2 | 3 | Mean |' in markdown
    assert '| fog | 30.00 | 20.00 | 10.00 | 20.00 |' in markdown
    assert '| brightness | 36.00 | - | - | 36.00 |' in markdown
    assert 'rPC (mIoU): 70.00 %' in markdown


def test_load_rejects_other_files(tmp_path):
    other = tmp_path / 'other.json'
    other.write_text(json.dumps({'mIoU': 1}))
    with pytest.raises(ValueError, match='not an mmspd robustness result'):
        RobustnessResults.load(str(other))
    broken = tmp_path / 'broken.json'
    broken.write_text('{"format": ')
    with pytest.raises(ValueError, match='not valid JSON'):
        RobustnessResults.load(str(broken))
    with pytest.raises(FileNotFoundError, match='missing.json'):
        RobustnessResults.load(str(tmp_path / 'missing.json'))


def test_resume_refuses_results_of_another_run(tmp_path):
    meta = {'checkpoint': 'a.pth', 'seed': 0, 'corruptions': ['fog'],
            'severities': [1, 2, 3]}
    make_results(meta).save(str(tmp_path))
    path = str(tmp_path / 'robustness.json')
    before = (tmp_path / 'robustness.json').read_bytes()

    resumed = load_for_resume(
        path, dict(meta, corruptions=['snow'], severities=[5]))
    assert resumed.has('fog', 3) and resumed.has('clean')
    assert resumed.meta['corruptions'] == ['fog', 'snow']
    assert resumed.meta['severities'] == [1, 2, 3, 5]

    with pytest.raises(ValueError, match="checkpoint: 'a.pth' there, "
                       "'b.pth' now"):
        load_for_resume(path, dict(meta, checkpoint='b.pth'))
    with pytest.raises(ValueError, match='seed'):
        load_for_resume(path, dict(meta, seed=1))
    assert (tmp_path / 'robustness.json').read_bytes() == before
    assert not load_for_resume(str(tmp_path / 'new.json'), meta).has(
        'clean')


def test_comparison_table_and_files(tmp_path):
    first = make_results({'config': 'x/adamw.py'})
    second = make_results({'config': 'x/spd.py'}, scale=1.5)
    second.add('snow', 1, {'mIoU': 12., 'aAcc': 1., 'mAcc': 1.})
    table = comparison_table([first, second], ['AdamW', 'SPD'])
    assert table['columns'] == [
        'Method', 'Clean', 'fog', 'brightness', 'snow', 'Mean', 'rPC (%)'
    ]
    adamw, spd = table['rows']
    assert adamw[:4] == ['AdamW', 40., 20., 36.]
    assert adamw[4] is None  # AdamW was not evaluated on snow
    assert adamw[5] == pytest.approx(28.)
    assert spd[5] == pytest.approx((30. + 54. + 12.) / 3)

    paths = write_comparison([first, second], ['AdamW', 'SPD'],
                             str(tmp_path / 'cmp'))
    assert '| AdamW | 40.00 | 20.00 | 36.00 | - | 28.00 | 70.00 |' in \
        paths['table']
    with open(paths['csv']) as f:
        rows = list(csv.reader(f))
    assert rows[0][0] == 'Method' and rows[1][4] == ''
    with open(paths['plot'], 'rb') as f:
        assert f.read(4) == b'\x89PNG'
    with pytest.raises(ValueError, match='1 names for 2 result files'):
        comparison_table([first, second], ['AdamW'])
