"""tools/run_demo.py: the whole demo end to end (--quick), resume, errors."""
import importlib.util
import json
import os.path as osp
import subprocess
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
RUN_DEMO = osp.join(REPO, 'tools', 'run_demo.py')


def _load_run_demo():
    spec = importlib.util.spec_from_file_location('run_demo', RUN_DEMO)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _run(work_dir):
    return subprocess.run(
        [sys.executable, RUN_DEMO, '--quick', '--work-dir', str(work_dir)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
        check=False)


def test_quick_demo_end_to_end_then_resumes(tmp_path):
    work = tmp_path / 'demo'
    first = _run(work)
    assert first.returncode == 0, first.stdout + first.stderr

    summary = json.loads((work / 'summary.json').read_text())
    rows = {row['name']: row for row in summary['rows']}
    assert len(rows) == 3
    for name, row in rows.items():
        assert 0 <= row['mIoU'] <= 100, name
    finetuned = [r for n, r in rows.items() if n.startswith('fine-tuned')]
    assert len(finetuned) == 2
    for row in finetuned:
        # A few Adam steps move the weights, but not far.
        assert 0 < row['dev_rel'] < 0.5
        assert row['dev_abs'] > 0
        assert 0 <= row['mPC'] <= 100 and row['rPC'] >= 0
    table = (work / 'summary.md').read_text()
    assert 'AdamW' in table and 'AdamSPD' in table
    assert table.splitlines()[0] in first.stdout
    for method in ('adamw', 'adamspd'):
        assert (work / f'finetune_{method}' / 'finetuned_B.pth').is_file()
        assert (work / f'corruption_{method}' / 'robustness.json').is_file()
    for ext in ('md', 'csv', 'png'):
        assert (work / 'comparison' / f'comparison.{ext}').is_file()
    assert 'iter 4/4' in first.stdout  # training progress is shown

    # A second run finds every stage done and only rebuilds the summary.
    again = _run(work)
    assert again.returncode == 0, again.stdout + again.stderr
    stage_lines = [ln for ln in again.stdout.splitlines() if ln[:1] == '[']
    assert len(stage_lines) == 11
    assert all('skipped' in ln for ln in stage_lines[:-1])
    assert (work / 'summary.md').read_text() == table


def test_failed_stage_is_named_and_earlier_outputs_kept(tmp_path,
                                                        monkeypatch, capsys):
    run_demo = _load_run_demo()
    broken = tmp_path / 'broken_config.py'
    broken.write_text('model = dict(\n')  # a syntax error
    monkeypatch.setattr(run_demo, 'PRETRAIN_CONFIG', str(broken))
    work = tmp_path / 'demo'

    assert run_demo.main(['--quick', '--work-dir', str(work)]) == 1
    err = capsys.readouterr().err
    log = work / 'logs' / 'pretrain_A.log'
    assert "stage 'pretrain_A' failed" in err and str(log) in err
    assert 'SyntaxError' in log.read_text()
    train_list = work / 'data' / 'domain_A' / 'ImageSets' / (
        'SegmentationContext') / 'train.txt'
    assert train_list.is_file()

    # Resuming reuses the data and fails at the same stage again.
    assert run_demo.main(['--quick', '--work-dir', str(work)]) == 1
    out = capsys.readouterr().out
    assert '[1/11] data: done before, skipped' in out

    # A stage not marked finished (interrupted) runs again even though some
    # of its outputs exist.
    (work / 'logs' / 'data.done').unlink()
    assert run_demo.main(['--quick', '--work-dir', str(work)]) == 1
    out = capsys.readouterr().out
    assert '[1/11] data: running' in out
    assert (work / 'logs' / 'data.done').is_file()


def test_work_dir_of_another_mode_is_refused(tmp_path, capsys):
    run_demo = _load_run_demo()
    work = tmp_path / 'demo'
    work.mkdir()
    settings = work / 'demo_settings.json'
    settings.write_text(json.dumps(run_demo.FULL))

    assert run_demo.main(['--quick', '--work-dir', str(work)]) == 1
    assert 'other settings' in capsys.readouterr().err
    assert json.loads(settings.read_text()) == run_demo.FULL
    assert not (work / 'data').exists()


def test_missing_tool_is_named(tmp_path, monkeypatch, capsys):
    run_demo = _load_run_demo()
    monkeypatch.setattr(run_demo, 'REPO', str(tmp_path / 'no_repo'))
    assert run_demo.main(['--quick', '--work-dir', str(tmp_path / 'w')]) == 1
    err = capsys.readouterr().err
    assert "stage 'pretrain_A' needs tools/train.py" in err
