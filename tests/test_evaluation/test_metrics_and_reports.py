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
    corruption_errors,
)
from mmspd.evaluation.loop import load_for_resume
from mmspd.evaluation.metrics import summarize

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


def grid(corruptions, severities, miou=lambda c, s: 50. - 5 * s,
         clean=60.):
    """Results of a run asked for ``corruptions`` x ``severities``."""
    results = RobustnessResults({'corruptions': list(corruptions),
                                 'severities': list(severities)})
    results.add('clean', None, {'mIoU': clean})
    for corruption in corruptions:
        for severity in severities:
            results.add(corruption, severity,
                        {'mIoU': miou(corruption, severity)})
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


def test_summary_says_what_it_averages_over():
    full = grid(['fog', 'brightness'], [1, 2, 3, 4, 5]).summary()
    over = full['averaged_over']
    assert over['label'] == '2 corruptions x severities 1-5 (10 conditions)'
    assert over['complete'] and over['missing'] == []
    assert over['severities'] == {'fog': [1, 2, 3, 4, 5],
                                  'brightness': [1, 2, 3, 4, 5]}
    two = grid(['fog', 'brightness'], [1, 5]).summary()['averaged_over']
    assert two['label'] == '2 corruptions x severities 1, 5 (4 conditions)'


def test_missing_severities_are_flagged():
    results = grid(['fog', 'brightness'], [1, 2, 3])
    del results._conditions[('fog', 2)]
    over = results.summary()['averaged_over']
    assert over['missing'] == ['fog-2']
    assert not over['complete']
    assert 'uneven severities' in over['label']
    assert '**incomplete**' in results.to_markdown()
    assert 'fog-2' in results.to_markdown()


def test_nan_condition_is_missing_not_done_and_not_silently_dropped():
    results = grid(['fog', 'brightness'], [1, 2])
    results.add('fog', 1, {'mIoU': math.nan})
    results.add('fog', 2, {'mIoU': math.nan})
    assert not results.has('fog', 1)  # a resumed run evaluates it again
    summary = results.summary()
    over = summary['averaged_over']
    # fog has no valid severity left: it is absent from mPC, and said so.
    assert over['corruptions'] == ['brightness']
    assert over['missing'] == ['fog-1', 'fog-2']
    assert not over['complete']
    loaded = RobustnessResults.from_dict(
        json.loads(json.dumps(results.to_dict())))
    assert not loaded.has('fog', 1) and loaded.has('brightness', 1)


def test_holdout_corruptions_are_kept_out_of_mpc():
    results = grid(['fog', 'speckle_noise'], [1],
                   miou=lambda c, s: 10. if c == 'fog' else 30.)
    summary = results.summary()
    assert summary['mPC']['mIoU'] == 10.
    assert summary['averaged_over']['corruptions'] == ['fog']
    assert summary['holdout']['mPC']['mIoU'] == 30.
    assert 'held-out mPC (mIoU): 30.00' in results.to_markdown()


def test_row_without_severity_gives_a_clear_error(tmp_path):
    data = grid(['fog'], [1, 2]).to_dict()
    del data['conditions'][1]['severity']
    path = tmp_path / 'robustness.json'
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r'condition 1 \(fog\) has '
                       r'severity None.*"severity": 1 to 5'):
        RobustnessResults.load(str(path))
    with pytest.raises(ValueError, match="has no 'severity'"):
        summarize(None, [{'corruption': 'fog', 'mIoU': 3.}])


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


def test_csv_and_markdown_contents():
    results = make_results()
    results.meta.update(checkpoint_sha256='ab' * 32, images=7,
                        world_size=2, started='2026-01-01T00:00:00+00:00',
                        versions={'numpy': '2.4.6', 'opencv': '4.12.0'})
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
    assert 'mean over 2 corruptions, uneven severities' in markdown
    for text in (f'checkpoint sha256: `{"ab" * 32}`', 'test images: `7`',
                 'processes: `2`', 'numpy 2.4.6, opencv 4.12.0',
                 'started: `2026-01-01'):
        assert text in markdown


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
    meta = {'checkpoint_sha256': 'a' * 64, 'seed': 0, 'data': 'd1',
            'test_setup': 't1', 'key': 'relative',
            'versions': {'numpy': '2.4.6', 'mmspd': '0.1.0'},
            'corruptions': ['fog'], 'severities': [1, 2, 3]}
    make_results(meta).save(str(tmp_path))
    path = str(tmp_path / 'robustness.json')
    before = (tmp_path / 'robustness.json').read_bytes()

    resumed = load_for_resume(
        path, dict(meta, corruptions=['snow'], severities=[5]))
    assert resumed.has('fog', 3) and resumed.has('clean')
    assert resumed.meta['corruptions'] == ['fog', 'snow']
    assert resumed.meta['severities'] == [1, 2, 3, 5]

    # Same path, other contents: the hash tells.
    with pytest.raises(ValueError, match="checkpoint_sha256: 'aaaa.*there, "
                       "'bbbb.*now"):
        load_for_resume(path, dict(meta, checkpoint_sha256='b' * 64))
    for change, match in [({'seed': 1}, 'seed: 0 there, 1 now'),
                          ({'data': 'd2'}, "data: 'd1' there"),
                          ({'test_setup': 't2'}, 'test_setup'),
                          ({'versions': {'numpy': '2.5.0',
                                         'mmspd': '0.1.0'}},
                           'versions: numpy 2.4.6 there, 2.5.0 now')]:
        with pytest.raises(ValueError, match=match) as info:
            load_for_resume(path, dict(meta, **change))
        assert '--overwrite' in str(info.value)
    assert (tmp_path / 'robustness.json').read_bytes() == before
    assert not load_for_resume(str(tmp_path / 'new.json'), meta).has(
        'clean')


def test_comparison_table():
    first = make_results({'config': 'x/adamw.py'})
    second = make_results({'config': 'x/spd.py'}, scale=1.5)
    table = comparison_table([first, second], ['AdamW', 'SPD'])
    assert table['columns'] == [
        'Method', 'Clean', 'fog', 'brightness', 'Mean', 'rPC (%)'
    ]
    adamw, spd = table['rows']
    assert adamw[:4] == ['AdamW', 40., 20., 36.]
    assert adamw[4] == pytest.approx(28.)
    assert spd[4] == pytest.approx((30. + 54.) / 2)
    with pytest.raises(ValueError, match='1 names for 2 result files'):
        comparison_table([first, second], ['AdamW'])
    paper = comparison_table([first, second], ['AdamW', 'SPD'], paper=True)
    assert paper['columns'] == ['Method', 'Clean', 'fog', 'brightness',
                                'Mean']


def test_comparison_refuses_or_marks_other_condition_sets():
    full = grid(['fog', 'brightness', 'defocus_blur', 'gaussian_noise'],
                [1, 2, 3, 4, 5])
    small = grid(['fog'], [1, 5])
    with pytest.raises(ValueError, match=r'different conditions.*'
                       r'1 corruption x severities 1, 5 \(2 conditions\)'
                       r'.*--allow-mismatch'):
        comparison_table([full, small], ['full', 'small'])
    table = comparison_table([full, small], ['full', 'small'], strict=False)
    mean = table['columns'].index('Mean')
    assert table['marks'][(1, mean)] == '*'
    assert table['marks'][(1, table['columns'].index('fog'))] == '*'
    assert (0, mean) not in table['marks']
    assert any(note.startswith('* small: mPC over 1 corruption')
               for note in table['notes'])


def test_baseline_deltas_and_corruption_errors():
    base = grid(['fog', 'brightness'], [1, 2], clean=60.,
                miou=lambda c, s: 40. if s == 1 else 20.)
    better = grid(['fog', 'brightness'], [1, 2], clean=60.,
                  miou=lambda c, s: 50. if s == 1 else 40.)
    # Errors 60 + 80 = 140 for the baseline, 50 + 60 = 110 for better.
    # Degradation from clean (error 40): 20 + 40 = 60 against 10 + 20 = 30.
    mce, rel = corruption_errors(better, base)
    assert mce == pytest.approx(100 * 110 / 140)
    assert rel == pytest.approx(100 * 30 / 60)
    assert corruption_errors(base, base) == (pytest.approx(100.),
                                             pytest.approx(100.))
    table = comparison_table([base, better], ['AdamW', 'SPD'], baseline=0)
    columns = table['columns']
    assert columns[-5:] == ['Δ Clean', 'Δ Mean', 'Δ rPC', 'mCE (%)',
                            'rel. mCE (%)']
    spd = dict(zip(columns, table['rows'][1]))
    assert spd['Δ Mean'] == pytest.approx(45. - 30.)
    assert spd['Δ Clean'] == 0.
    assert spd['mCE (%)'] == pytest.approx(mce)
    assert dict(zip(columns, table['rows'][0]))['rel. mCE (%)'] == \
        pytest.approx(100.)


def test_paper_table_with_a_baseline_keeps_deltas_and_mce():
    base = grid(['fog', 'brightness'], [1, 2], clean=60.,
                miou=lambda c, s: 40. if s == 1 else 20.)
    better = grid(['fog', 'brightness'], [1, 2], clean=62.,
                  miou=lambda c, s: 50. if s == 1 else 40.)
    table = comparison_table([base, better], ['AdamW', 'SPD'], baseline=0,
                             paper=True)
    assert table['columns'] == ['Method', 'Clean', 'fog', 'brightness',
                                'Mean', 'Δ Clean', 'Δ Mean', 'mCE (%)',
                                'rel. mCE (%)']
    spd = dict(zip(table['columns'], table['rows'][1]))
    assert spd['Δ Clean'] == pytest.approx(2.)
    assert spd['Δ Mean'] == pytest.approx(15.)
    assert spd['mCE (%)'] == pytest.approx(
        corruption_errors(better, base)[0])


def test_mce_over_other_severities_is_marked_not_silently_narrowed():
    base = grid(['fog', 'brightness'], [1, 5])
    other = grid(['fog', 'brightness'], [1, 5])
    del other._conditions[('fog', 5)]
    # mCE can only compare brightness; fog's severities differ.
    table = comparison_table([base, other], ['AdamW', 'SPD'], baseline=0,
                             strict=False)
    columns = table['columns']
    for name in ('mCE (%)', 'rel. mCE (%)'):
        assert table['marks'][(1, columns.index(name))] == '*'
        assert (0, columns.index(name)) not in table['marks']
    assert '* SPD: mCE and rel. mCE over 1 corruption evaluated at the ' \
        'same severities as AdamW; left out: fog: severities [1] vs ' \
        '[1, 5]' in table['notes']


def test_comparison_legend_does_not_cover_the_bars(tmp_path):
    from mmspd.evaluation.report import _figure, _legend_outside
    figure = _figure(6, 4)
    axes = figure.add_subplot()
    axes.bar([0, 1], [90, 95], label='a long method name')
    _legend_outside(figure, axes)
    renderer = figure.canvas.get_renderer()
    legend = axes.get_legend().get_window_extent(renderer)
    box = axes.get_window_extent(renderer)
    assert legend.x0 >= box.x1  # entirely right of the plotting area
    assert legend.x1 <= figure.bbox.x1 + 1  # and inside the image


def test_resumed_runs_expect_only_the_conditions_they_asked_for(tmp_path):
    first = grid(['fog'], [1, 2])
    first.meta.update(requested=['fog-1', 'fog-2'])
    first.save(str(tmp_path))
    resumed = load_for_resume(
        str(tmp_path / 'robustness.json'),
        dict(first.meta, corruptions=['snow'], severities=[5],
             requested=['snow-5']))
    assert resumed.meta['requested'] == ['fog-1', 'fog-2', 'snow-5']
    assert resumed.summary()['averaged_over']['missing'] == ['snow-5']
    resumed.add('snow', 5, {'mIoU': 10.})
    over = resumed.summary()['averaged_over']
    # Not fog-5 or snow-1: nobody asked for them.
    assert over['missing'] == []
    assert 'uneven severities' in over['label'] and not over['complete']


def test_nan_clean_round_trips_as_nan(tmp_path):
    results = grid(['fog'], [1])
    results.add('clean', None, {'mIoU': math.nan, 'aAcc': 1.})
    results.save(str(tmp_path))
    loaded = RobustnessResults.load(str(tmp_path / 'robustness.json'))
    assert math.isnan(loaded.clean['mIoU']) and not loaded.has('clean')
    assert math.isnan(loaded.summary()['rPC']['mIoU'])
    assert '- clean mIoU: -' in loaded.to_markdown()


def test_comparison_notes_other_test_data_and_seeds():
    first = grid(['fog'], [1])
    second = grid(['fog'], [1])
    first.meta.update(data='d1', seed=0, images=10)
    second.meta.update(data='d2', seed=0, images=12)
    notes = comparison_table([first, second], ['a', 'b'])['notes']
    assert 'test data (fingerprints) differ: a d1, b d2' in notes
    assert 'test images differ: a 10, b 12' in notes
    assert not any('seed' in note for note in notes)


def test_comparison_shows_and_checks_held_out_corruptions():
    # Held-out corruptions stay out of mPC, but the comparison shows them
    # apart and compares their condition sets too.
    first = grid(['fog', 'speckle_noise'], [1, 2])
    same = grid(['fog', 'speckle_noise'], [1, 2], clean=70.)
    table = comparison_table([first, same], ['A', 'B'])
    columns = table['columns']
    assert columns == ['Method', 'Clean', 'fog', 'Mean', 'rPC (%)',
                       'speckle_noise', 'Held-out mean']
    row = dict(zip(columns, table['rows'][0]))
    assert row['Mean'] == row['fog'] == pytest.approx(42.5)
    assert row['Held-out mean'] == row['speckle_noise'] == \
        pytest.approx(42.5)
    # Deltas stay aligned with their columns.
    table = comparison_table([first, same], ['A', 'B'], baseline=0)
    row = dict(zip(table['columns'], table['rows'][1]))
    assert row['Δ Clean'] == pytest.approx(10.)
    assert row['Δ Mean'] == pytest.approx(0.)
    assert comparison_table([first, same], ['A', 'B'],
                            paper=True)['columns'] == [
                                'Method', 'Clean', 'fog', 'Mean']

    other = grid(['fog', 'saturate'], [1, 2])
    with pytest.raises(ValueError, match='held-out mPC over'):
        comparison_table([first, other], ['A', 'C'])
    table = comparison_table([first, other], ['A', 'C'], strict=False)
    held = table['columns'].index('Held-out mean')
    assert table['marks'][(1, held)] == '*'
    assert (1, table['columns'].index('Mean')) not in table['marks']


def test_set_descriptions_read_as_english():
    from mmspd.evaluation.metrics import describe_set
    assert describe_set({'fog': [1]}) == \
        '1 corruption x severity 1 (1 condition)'
    assert describe_set({'fog': [1, 5], 'brightness': [5, 1]}) == \
        '2 corruptions x severities 1, 5 (4 conditions)'
    assert describe_set({'fog': [1, 2, 3]}) == \
        '1 corruption x severities 1-3 (3 conditions)'
