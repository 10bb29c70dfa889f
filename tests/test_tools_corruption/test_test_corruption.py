"""tools/test_corruption.py, dist_test_corruption.sh and robustness_table.py
end to end on tiny demo data and a freshly built tiny model."""
from __future__ import annotations

import json
import os
import os.path as osp
import socket
import subprocess
import sys

import numpy as np
import pytest

from .conftest import REPO_ROOT, TEST_DIR, load_tool

CONDITIONS = ['--corruptions', 'gaussian_noise', 'fog', '--severities', '1',
              '5', '--seed', '3']


def options(tiny: dict, record: str, *extra: str) -> list[str]:
    return [
        '--cfg-options',
        f'test_dataloader.dataset.data_root={tiny["data_root"]}',
        f'custom_hooks.0.record={record}', *extra
    ]


def recorded(path) -> list[str]:
    if not osp.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f]


def read_text(work_dir, name) -> str:
    with open(osp.join(work_dir, name)) as f:
        return f.read()


def read_json(work_dir) -> dict:
    with open(osp.join(work_dir, 'robustness.json')) as f:
        return json.load(f)


@pytest.fixture(scope='module')
def run(tiny) -> dict:
    """A run interrupted (as by Ctrl-C) in its fourth condition, then the
    same command again."""
    tool = load_tool('test_corruption')
    tmp = tiny['tmp']
    work = str(tmp / 'work')
    args = [tiny['config'], tiny['checkpoint'], *CONDITIONS,
            '--work-dir', work]
    with pytest.raises(KeyboardInterrupt):
        tool.main(args + options(tiny, str(tmp / 'rec1.jsonl'),
                                 'custom_hooks.0.interrupt_at=4'))
    first = read_json(work)
    files = sorted(os.listdir(work))
    assert tool.main(args + options(tiny, str(tmp / 'rec2.jsonl'))) == 0
    final = read_json(work)
    assert tool.main(args + options(tiny, str(tmp / 'rec3.jsonl'))) == 0
    return {
        'args': args, 'work': work, 'first': first, 'final': final,
        'files': files,
        'records': [recorded(tmp / f'rec{i}.jsonl') for i in (1, 2, 3)]}


def test_interrupted_run_keeps_finished_conditions(run):
    assert run['records'][0] == ['clean', 'gaussian_noise-1',
                                 'gaussian_noise-5']
    first = run['first']
    assert first['clean'] is not None
    assert [(c['corruption'], c['severity'])
            for c in first['conditions']] == [('gaussian_noise', 1),
                                              ('gaussian_noise', 5)]
    for name in ('robustness.json', 'robustness.csv', 'robustness.md',
                 'robustness.png'):
        assert name in run['files']


def test_rerun_evaluates_only_missing_conditions(run):
    assert run['records'][1] == ['fog-1', 'fog-5']
    assert run['records'][2] == []  # everything done: nothing evaluated
    final = run['final']
    assert final['clean'] == run['first']['clean']
    assert final['conditions'][:2] == run['first']['conditions']
    assert [(c['corruption'], c['severity'])
            for c in final['conditions']] == [('gaussian_noise', 1),
                                              ('gaussian_noise', 5),
                                              ('fog', 1), ('fog', 5)]


def test_results_and_summary(run):
    final = run['final']
    clean = final['clean']
    for row in [clean, *final['conditions']]:
        for metric in ('mIoU', 'aAcc', 'mAcc'):
            assert 0 <= row[metric] <= 100
    assert clean['mIoU'] > 0 and clean['aAcc'] > 0
    # The corruptions reach the model.
    assert any(row['aAcc'] != clean['aAcc'] for row in final['conditions'])
    means = {}
    for name in ('gaussian_noise', 'fog'):
        values = [row['mIoU'] for row in final['conditions']
                  if row['corruption'] == name]
        means[name] = sum(values) / 2
        assert final['summary']['per_corruption'][name]['mIoU'] == \
            pytest.approx(means[name])
    mpc = (means['gaussian_noise'] + means['fog']) / 2
    assert final['summary']['mPC']['mIoU'] == pytest.approx(mpc)
    assert final['summary']['rPC']['mIoU'] == pytest.approx(
        100 * mpc / clean['mIoU'])
    assert final['meta']['seed'] == 3
    markdown = read_text(run['work'], 'robustness.md')
    assert f'| fog | {final["conditions"][2]["mIoU"]:.2f} |' in markdown
    csv_text = read_text(run['work'], 'robustness.csv')
    assert csv_text.startswith('corruption,severity,mIoU,aAcc,mAcc\n')


def test_clean_miou_equals_tools_test(run, tiny):
    test_tool = load_tool('test')
    metrics = test_tool.main([
        tiny['config'], tiny['checkpoint'], '--work-dir',
        str(tiny['tmp'] / 'plain_test'), *options(
            tiny, str(tiny['tmp'] / 'rec_test.jsonl'))
    ])
    clean = run['final']['clean']
    for metric in ('mIoU', 'aAcc', 'mAcc'):
        # IoUMetric reports float32 percentages rounded to 2 decimals.
        assert np.float32(clean[metric]) == metrics[metric]
        assert f'{clean[metric]:.2f}' == f'{metrics[metric]:.2f}'
        assert clean[metric] == round(clean[metric], 2)


def test_robustness_table(run, tiny, capsys):
    table = load_tool('robustness_table')
    json_path = osp.join(run['work'], 'robustness.json')
    out_dir = str(tiny['tmp'] / 'comparison')
    assert table.main([json_path, json_path, '--names', 'AdamW', 'SPD',
                       '--out-dir', out_dir]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(
        '| Method | Clean | gaussian_noise | fog | Mean | rPC (%) |')
    mpc = run['final']['summary']['mPC']['mIoU']
    assert f'| SPD | {run["final"]["clean"]["mIoU"]:.2f} |' in printed
    assert f'| {mpc:.2f} |' in printed
    assert sorted(os.listdir(out_dir)) == [
        'comparison.csv', 'comparison.md', 'comparison.png'
    ]
    assert table.main([json_path, '--names', 'a', 'b', '--out-dir',
                       out_dir]) == 2
    assert '2 --names for 1 result files' in capsys.readouterr().err


def test_other_run_in_same_work_dir_is_refused(run, tiny, capsys):
    tool = load_tool('test_corruption')
    before = read_text(run['work'], 'robustness.json')
    args = [a if a != '3' else '4' for a in run['args']]  # another seed
    assert tool.main(args + options(tiny, str(tiny['tmp'] / 'x'))) == 2
    err = capsys.readouterr().err
    assert 'seed: 3 there, 4 now' in err and '--work-dir' in err
    assert read_text(run['work'], 'robustness.json') == before


@pytest.mark.parametrize('change, message', [
    ({0: 'missing_config.py'}, 'Config not found'),
    ({1: 'missing.pth'}, 'checkpoint not found'),
    ({3: 'fogg'}, "'fogg'"),
    ({6: '6'}, 'accepted: 1, 2, 3, 4, 5'),
])
def test_bad_arguments_fail_before_any_work(tiny, tmp_path, capsys,
                                            change, message):
    tool = load_tool('test_corruption')
    work = str(tmp_path / 'work')
    args = [tiny['config'], tiny['checkpoint'], *CONDITIONS,
            '--work-dir', work]
    for index, value in change.items():
        args[index] = value
    assert tool.main(args + options(tiny, str(tmp_path / 'r'))) == 2
    assert message in capsys.readouterr().err
    assert not osp.exists(work)


def test_missing_test_data_fails_before_any_work(tiny, tmp_path, capsys):
    tool = load_tool('test_corruption')
    work = str(tmp_path / 'work')
    missing = str(tmp_path / 'no_data')
    args = [tiny['config'], tiny['checkpoint'], *CONDITIONS, '--work-dir',
            work, '--cfg-options',
            f'test_dataloader.dataset.data_root={missing}']
    assert tool.main(args) == 2
    assert f"data_root {missing!r} does not exist" in capsys.readouterr().err
    assert not osp.exists(work)


def test_two_processes_give_the_same_numbers(run, tiny):
    # Each rank corrupts its share of the images; per-image seeds make the
    # pixels, and so the metrics, those of the single-process run.
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    env = dict(
        os.environ,
        PYTHON=sys.executable,
        PORT=str(port),
        CUDA_VISIBLE_DEVICES='',
        OMP_NUM_THREADS='1',
        PYTHONPATH=os.pathsep.join(
            p for p in (REPO_ROOT, TEST_DIR, os.environ.get('PYTHONPATH'))
            if p))
    work = str(tiny['tmp'] / 'dist')
    proc = subprocess.run(
        ['bash', 'tools/dist_test_corruption.sh', tiny['config'],
         tiny['checkpoint'], '2', '--corruptions', 'gaussian_noise',
         '--severities', '5', '--seed', '3', '--work-dir', work,
         *options(tiny, str(tiny['tmp'] / 'rec_dist.jsonl'))],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-5000:]
    dist = read_json(work)
    single = run['final']
    assert dist['clean'] == single['clean']
    assert dist['conditions'] == [single['conditions'][1]]
