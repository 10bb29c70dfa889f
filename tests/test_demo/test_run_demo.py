"""demo/run_demo.py: the whole demo end to end (--quick), resume, errors."""
import json
import math
import os.path as osp
import subprocess
import sys

import pytest

from demo import run_demo, stages, summary
from demo.stages import METHODS, Plan

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
RUN_DEMO = osp.join(REPO, 'demo', 'run_demo.py')
ROWS = ['pre-trained', 'AdamW', 'L2-SP', 'Adam-SPD']
COLUMNS = ['Model', 'λ', 'ID', 'OOD', 'gaussian noise', 'defocus blur',
           'fog', 'brightness', 'mPC', 'rPC (%)', 'deviation (%)']


def _run(work_dir):
    return subprocess.run(
        [sys.executable, RUN_DEMO, '--quick', '--work-dir', str(work_dir)],
        cwd=REPO, capture_output=True, text=True, timeout=900,
        check=False)


def _table(markdown):
    """The first Markdown table: header cells and {row name: cells}."""
    lines = [ln for ln in markdown.splitlines() if ln.startswith('|')]
    cells = [[c.strip() for c in ln.strip('|').split('|')] for ln in lines]
    header, rows = cells[0], {}
    for row in cells[2:]:
        if len(row) != len(header):
            break  # the next table
        rows[row[0]] = row
    return header, rows


def test_quick_demo_end_to_end_then_resumes(tmp_path):
    work = tmp_path / 'demo'
    first = _run(work)
    assert first.returncode == 0, first.stdout + first.stderr

    table = (work / 'summary.md').read_text()
    header, rows = _table(table)
    assert header == COLUMNS
    assert list(rows) == ROWS
    for name in ROWS[1:]:
        # Two seeds in --quick: every number is a mean and a spread.
        assert all('±' in cell for cell in rows[name][2:]), rows[name]
    for name in ('pre-trained', 'AdamW'):
        assert rows[name][1] == '-'
    for png in ('corruptions.png', 'ood_vs_deviation.png'):
        assert (work / png).read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'

    record = json.loads((work / 'summary.json').read_text())
    seeds = run_demo.QUICK['seeds']
    grids = run_demo.QUICK['grids']
    runs = record['rows']
    assert runs['pre-trained'][0]['deviation'] == 0
    for method in METHODS:
        assert [r['seed'] for r in runs[method.name]] == seeds
        for run in runs[method.name]:
            assert run['deviation'] > 0 and run['deviation_abs'] > 0
            assert 0 <= run['ID'] <= 100 and 0 <= run['OOD'] <= 100
            assert run['rPC'] == pytest.approx(100 * run['mPC'] / run['ID'])
            assert sorted(run['severity']['fog'], key=int) == ['1', '5']
        if method.tuned:
            grid = record['grids'][method.name]
            scores = grid['val_mIoU']
            assert [float(k) for k in scores] == grids[method.key]
            assert scores[str(grid['chosen'])] == max(scores.values())
            # Every seed is fine-tuned with the chosen lambda.
            assert {r['lam'] for r in runs[method.name]} == {grid['chosen']}
            assert f'{grid["chosen"]:g}' == rows[method.name][1]
        else:
            assert {r['lam'] for r in runs[method.name]} == {None}
    # A progress line for every stage.
    names = [st.name for st in Plan(str(work), run_demo.QUICK).stages()]
    for stage in names:
        assert f'] {stage}: done in' in first.stdout, stage

    # A second run finds every stage done and only rebuilds the summary.
    again = _run(work)
    assert again.returncode == 0, again.stdout + again.stderr
    stage_lines = [ln for ln in again.stdout.splitlines() if ln[:1] == '[']
    assert len(stage_lines) == len(names) + 1
    assert all('skipped' in ln for ln in stage_lines[:-1])
    assert (work / 'summary.md').read_text() == table


def test_mean_std():
    assert summary.mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)
    mean, std = summary.mean_std([4.0])
    assert mean == 4.0 and math.isnan(std)


def test_lambda_is_the_best_on_val_first_on_ties(tmp_path):
    settings = dict(run_demo.QUICK, grids={'l2sp': [1e-3, 1e-2, 1e-1],
                                           'spd': [0.1, 0.3, 1.0]})
    demo = Plan(str(tmp_path), settings)
    spd = next(m for m in METHODS if m.key == 'spd')
    for lam, miou in ((0.1, 50.0), (0.3, 61.5), (1.0, 61.5)):
        path = tmp_path / 'runs' / demo.grid_run(spd, lam, 0) / 'result.json'
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({'checkpoint': 'x', 'val_mIoU': miou,
                                    'lambda': lam}))
    demo.select(spd)
    assert demo.chosen_lambda(spd) == 0.3
    assert demo.final_run(spd, 0) == 'spd_lam0.3_s0'
    assert demo.final_run(spd, 1) == 'spd_s1'


def test_failed_stage_is_named_and_earlier_outputs_kept(tmp_path,
                                                        monkeypatch, capsys):
    broken = tmp_path / 'broken_config.py'
    broken.write_text('model = dict(\n')  # a syntax error
    monkeypatch.setattr(stages, 'PRETRAIN_CONFIG', str(broken))
    work = tmp_path / 'demo'

    assert run_demo.main(['--quick', '--work-dir', str(work)]) == 1
    err = capsys.readouterr().err
    log = work / 'logs' / 'pretrain.log'
    assert "stage 'pretrain' failed" in err and str(log) in err
    assert 'SyntaxError' in log.read_text()
    train_list = work / 'data' / 'target' / 'ImageSets' / (
        'SegmentationContext') / 'train.txt'
    assert train_list.is_file()

    # Resuming reuses the data and fails at the same stage again.
    assert run_demo.main(['--quick', '--work-dir', str(work)]) == 1
    out = capsys.readouterr().out
    assert '] data: done before, skipped' in out

    # A stage not marked finished (interrupted) runs again even though some
    # of its outputs exist.
    (work / 'logs' / 'data.done').unlink()
    assert run_demo.main(['--quick', '--work-dir', str(work)]) == 1
    out = capsys.readouterr().out
    assert '] data: running' in out
    assert (work / 'logs' / 'data.done').is_file()


def test_work_dir_of_another_mode_is_refused(tmp_path, capsys):
    work = tmp_path / 'demo'
    work.mkdir()
    settings = work / 'demo_settings.json'
    settings.write_text(json.dumps(run_demo.FULL))

    assert run_demo.main(['--quick', '--work-dir', str(work)]) == 1
    assert 'other settings' in capsys.readouterr().err
    assert json.loads(settings.read_text()) == run_demo.FULL
    assert not (work / 'data').exists()


def test_missing_tool_is_named(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(stages, 'REPO', str(tmp_path / 'no_repo'))
    assert run_demo.main(['--quick', '--work-dir', str(tmp_path / 'w')]) == 1
    err = capsys.readouterr().err
    assert "stage 'pretrain' needs " in err
    assert osp.join('no_repo', 'tools', 'train.py') in err
