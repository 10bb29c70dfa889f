"""CorruptionTestLoop through tools/test_corruption.py, mmseg's
tools/test.py and torchrun, and tools/robustness_table.py, end to end on
tiny demo data and a freshly built tiny model."""
from __future__ import annotations

import glob
import hashlib
import json
import os
import os.path as osp
import shutil
import socket
import subprocess
import sys
import time

import cv2
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


def test_clean_miou_equals_a_plain_test_run(run, tiny):
    from mmengine.config import Config
    from mmengine.runner import Runner
    cfg = Config.fromfile(tiny['config'])
    cfg.merge_from_dict({
        'test_dataloader.dataset.data_root': tiny['data_root'],
        'custom_hooks': [], 'load_from': tiny['checkpoint'],
        'work_dir': str(tiny['tmp'] / 'plain_test')})
    metrics = Runner.from_cfg(cfg).test()
    clean = run['final']['clean']
    for metric in ('mIoU', 'aAcc', 'mAcc'):
        # IoUMetric reports float32 percentages rounded to 2 decimals.
        assert np.float32(clean[metric]) == metrics[metric]
        assert clean[metric] == round(clean[metric], 2)


def test_reproducibility_record(run, tiny):
    meta = run['final']['meta']
    with open(tiny['checkpoint'], 'rb') as f:
        assert meta['checkpoint_sha256'] == hashlib.sha256(
            f.read()).hexdigest()
    assert meta['images'] == 4 and meta['world_size'] == 1
    assert meta['key'] == 'relative'
    for name in ('mmspd', 'imagecorruptions', 'numpy', 'opencv'):
        assert meta['versions'][name] not in (None, '', 'not installed')
    assert meta['started'] <= meta['updated']
    markdown = read_text(run['work'], 'robustness.md')
    assert f'checkpoint sha256: `{meta["checkpoint_sha256"]}`' in markdown
    assert 'test images: `4`' in markdown and 'processes: `1`' in markdown
    assert 'mean over 2 corruptions x severities 1, 5 (4 conditions)' in \
        markdown


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

    # A baseline: deltas, mCE and relative mCE (100 for equal results).
    assert table.main([json_path, json_path, '--names', 'AdamW', 'SPD',
                       '--baseline', 'AdamW', '--out-dir', out_dir]) == 0
    printed = capsys.readouterr().out
    assert '| Δ Clean | Δ Mean | Δ rPC | mCE (%) | rel. mCE (%) |' in \
        printed
    assert printed.count('| 0.00 | 0.00 | 0.00 | 100.00 | 100.00 |') == 2

    # The paper's shape keeps the baseline's columns.
    assert table.main([json_path, json_path, '--names', 'AdamW', 'SPD',
                       '--baseline', 'AdamW', '--paper', '--out-dir',
                       out_dir]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(
        '| Method | Clean | gaussian_noise | fog | Mean | Δ Clean | '
        'Δ Mean | mCE (%) | rel. mCE (%) |')
    assert printed.count('| 0.00 | 0.00 | 100.00 | 100.00 |') == 2

    # Another condition set: refused, or marked on request.
    data = dict(run['final'])
    data['conditions'] = [c for c in data['conditions']
                          if c['corruption'] == 'fog']
    fewer = str(tiny['tmp'] / 'fewer.json')
    with open(fewer, 'w') as f:
        json.dump(data, f)
    assert table.main([json_path, fewer, '--out-dir', out_dir]) == 2
    err = capsys.readouterr().err
    assert 'different conditions' in err and '--allow-mismatch' in err
    assert table.main([json_path, fewer, '--out-dir', out_dir,
                       '--allow-mismatch', '--paper']) == 0
    printed = capsys.readouterr().out
    assert printed.startswith('| Method | Clean | gaussian_noise | fog | '
                              'Mean |')
    assert '*' in printed and 'mPC over 1 corruption' in printed


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
    ({6: '6'}, '1, 2, 3, 4, 5'),
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
        ['bash', 'tools/dist_run.sh', 'test_corruption.py', '2',
         tiny['config'], tiny['checkpoint'], '--corruptions',
         'gaussian_noise',
         '--severities', '5', '--seed', '3', '--work-dir', work,
         *options(tiny, str(tiny['tmp'] / 'rec_dist.jsonl'))],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-5000:]
    dist = read_json(work)
    single = run['final']
    assert dist['clean'] == single['clean']
    assert dist['conditions'] == [single['conditions'][1]]


def test_mmseg_test_py_runs_the_same_benchmark(run, tiny):
    # mmseg's own tools/test.py (through mmspd's, which imports mmspd
    # first) with the loop set from the command line: the same numbers,
    # and a record that lets either route resume the other's work dir.
    from mmspd.evaluation.loop import RESUME_KEYS
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1',
               PYTHONPATH=os.pathsep.join(
                   p for p in (REPO_ROOT, TEST_DIR,
                               os.environ.get('PYTHONPATH')) if p))

    def test_py(work: str, record: str) -> None:
        proc = subprocess.run(
            [sys.executable, 'tools/test.py', tiny['config'],
             tiny['checkpoint'], '--work-dir', work, '--cfg-options',
             'test_cfg.type=CorruptionTestLoop',
             'test_cfg.corruptions=[gaussian_noise,fog]',
             'test_cfg.severities=[1,5]', 'test_cfg.seed=3',
             f'test_dataloader.dataset.data_root={tiny["data_root"]}',
             f'custom_hooks.0.record={record}'],
            cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, timeout=300, check=False)
        assert proc.returncode == 0, proc.stdout[-5000:]

    work = str(tiny['tmp'] / 'mmseg_test')
    test_py(work, str(tiny['tmp'] / 'rec_mmseg.jsonl'))
    assert recorded(tiny['tmp'] / 'rec_mmseg.jsonl') == [
        'clean', 'gaussian_noise-1', 'gaussian_noise-5', 'fog-1', 'fog-5']
    ours, front = read_json(work), run['final']
    assert ours['clean'] == front['clean']
    assert ours['conditions'] == front['conditions']
    assert ours['summary'] == front['summary']
    for name in RESUME_KEYS:
        assert ours['meta'][name] == front['meta'][name], name
    # So tools/test.py resumes the work dir of tools/test_corruption.py.
    resumed = str(tiny['tmp'] / 'mmseg_resume')
    shutil.copytree(run['work'], resumed)
    test_py(resumed, str(tiny['tmp'] / 'rec_mmseg_resume.jsonl'))
    assert recorded(tiny['tmp'] / 'rec_mmseg_resume.jsonl') == []
    assert read_json(resumed)['conditions'] == front['conditions']
    assert {'robustness.csv', 'robustness.json', 'robustness.md',
            'robustness.png'} <= set(os.listdir(work))


def test_flexible_runner_runs_the_loop(run, tiny):
    # The loop uses the runner's public API only, so MMEngine's
    # FlexibleRunner runs it as well, with the same numbers.
    from mmengine.config import Config
    from mmengine.runner import FlexibleRunner
    cfg = Config.fromfile(tiny['config'])
    cfg.merge_from_dict({
        'test_dataloader.dataset.data_root': tiny['data_root'],
        'custom_hooks': [], 'load_from': tiny['checkpoint'],
        'work_dir': str(tiny['tmp'] / 'flexible'),
        'test_cfg': dict(type='CorruptionTestLoop',
                         corruptions=['gaussian_noise'], severities=[5],
                         seed=3)})
    metrics = FlexibleRunner.from_cfg(cfg).test()
    ours = read_json(cfg.work_dir)
    assert ours['clean'] == run['final']['clean']
    assert ours['conditions'] == [run['final']['conditions'][1]]
    assert metrics['mPC/mIoU'] == ours['summary']['mPC']['mIoU']


@pytest.mark.parametrize('content', [b'not a checkpoint\n', b''])
def test_file_that_is_no_checkpoint_is_refused_with_a_message(
        tiny, tmp_path, capsys, content):
    tool = load_tool('test_corruption')
    path = tmp_path / 'weights.pth'
    path.write_bytes(content)
    rec = str(tmp_path / 'rec.jsonl')
    assert tool.main(fresh_args(tiny, tmp_path / 'work', str(path)) +
                     options(tiny, rec)) == 2
    err = capsys.readouterr().err
    assert f"checkpoint {str(path)!r} cannot be loaded (" in err
    assert 'Traceback' not in err
    assert recorded(rec) == []


def test_training_checkpoint_of_a_config_without_safe_load_hook(
        tiny, tmp_path):
    # What tools/train.py saves holds MMEngine's HistoryBuffer, which
    # torch >= 2.6 refuses to unpickle unless allowed; a config of the
    # model zoo has no SafeLoadHook, so the tool adds it.
    import torch
    from mmengine.logging import HistoryBuffer
    tool = load_tool('test_corruption')
    state = torch.load(tiny['checkpoint'], map_location='cpu')
    loss = HistoryBuffer()
    loss.update(1.)
    state['message_hub'] = {'log_scalars': {'loss': loss}}
    checkpoint = str(tmp_path / 'iter_2.pth')
    torch.save(state, checkpoint)
    config = tmp_path / 'zoo_like.py'
    config.write_text(
        f'_base_ = [{tiny["config"]!r}]\n'
        'default_hooks = dict(\n'
        '    _delete_=True, logger=dict(type="LoggerHook", interval=1),\n'
        '    visualization=dict(type="SegVisualizationHook"))\n')
    rec = str(tmp_path / 'rec.jsonl')
    args = fresh_args(tiny, tmp_path / 'work', checkpoint) + options(
        tiny, rec)
    args[0] = str(config)
    assert tool.main(args) == 0
    assert recorded(rec) == ['clean', 'brightness-1']


def fresh_args(tiny, work, checkpoint=None, severities=('1', )):
    return [tiny['config'], checkpoint or tiny['checkpoint'],
            '--corruptions', 'brightness', '--severities', *severities,
            '--work-dir', str(work)]


def test_changed_checkpoint_contents_are_not_reused(tiny, tmp_path, capsys):
    import torch
    tool = load_tool('test_corruption')
    checkpoint = str(tmp_path / 'ck.pth')
    shutil.copy(tiny['checkpoint'], checkpoint)
    work = tmp_path / 'work'
    rec = str(tmp_path / 'rec.jsonl')
    assert tool.main(fresh_args(tiny, work, checkpoint) +
                     options(tiny, rec)) == 0
    before = read_text(work, 'robustness.json')
    # Other weights under the same path.
    state = torch.load(checkpoint, map_location='cpu')
    for value in state['state_dict'].values():
        if value.is_floating_point():
            value.mul_(-1.5)
    torch.save(state, checkpoint)
    args = fresh_args(tiny, work, checkpoint, ('1', '2'))
    assert tool.main(args + options(tiny, rec)) == 2
    err = capsys.readouterr().err
    assert 'holds results of a different run (checkpoint_sha256:' in err
    assert '--overwrite' in err
    assert read_text(work, 'robustness.json') == before
    assert recorded(rec) == ['clean', 'brightness-1']

    # --overwrite starts over; --show-dir keeps samples of each condition.
    show = tmp_path / 'show'
    assert tool.main(args + ['--overwrite', '--show-dir', str(show),
                             '--show-num', '2'] + options(tiny, rec)) == 0
    assert recorded(rec)[2:] == ['clean', 'brightness-1', 'brightness-2']
    final = read_json(work)
    with open(checkpoint, 'rb') as f:
        assert final['meta']['checkpoint_sha256'] == hashlib.sha256(
            f.read()).hexdigest()
    assert [(c['corruption'], c['severity'])
            for c in final['conditions']] == [('brightness', 1),
                                              ('brightness', 2)]
    for condition in ('clean', 'brightness-1', 'brightness-2'):
        files = sorted(os.listdir(show / condition))
        assert len(files) == 2 and all(f.endswith('.png') for f in files)
    panel = cv2.imread(str(show / 'brightness-2' / files[0]))
    assert panel.shape == (64, 3 * 64, 3)  # input | prediction | truth


def test_concurrent_run_on_the_same_work_dir_is_refused(tiny, tmp_path,
                                                        capsys):
    from mmspd.evaluation.conditions import work_dir_lock
    tool = load_tool('test_corruption')
    work = tmp_path / 'work'
    work.mkdir()
    rec = str(tmp_path / 'rec.jsonl')
    with work_dir_lock(str(work)):
        assert tool.main(fresh_args(tiny, work) + options(tiny, rec)) == 2
    assert 'Another robustness run is using work dir' in \
        capsys.readouterr().err
    assert recorded(rec) == []
    assert not osp.exists(work / 'robustness.json')


def test_checkpoint_of_another_model_is_refused(tiny, tmp_path, capsys):
    import torch
    tool = load_tool('test_corruption')
    state = torch.load(tiny['checkpoint'], map_location='cpu')
    other = str(tmp_path / 'other.pth')
    torch.save({'state_dict': {f'detector.{k}': v for k, v in
                               state['state_dict'].items()}}, other)
    rec = str(tmp_path / 'rec.jsonl')
    assert tool.main(fresh_args(tiny, tmp_path / 'work', other) +
                     options(tiny, rec)) == 2
    err = capsys.readouterr().err
    assert "fills none of the model's" in err and 'detector.' in err
    assert recorded(rec) == []


def broken_copy(tiny, tmp_path, change) -> str:
    root = str(tmp_path / 'data')
    shutil.copytree(tiny['data_root'], root)
    images = sorted(glob.glob(osp.join(root, 'JPEGImages', '*.jpg')))
    change(root, images)
    return root


def _empty_split(root, images):
    open(osp.join(root, 'ImageSets/SegmentationContext/val.txt'),
         'w').close()


def _garbage_image(root, images):
    with open(images[1], 'wb') as f:
        f.write(b'not an image')


def _small_image(root, images):
    cv2.imwrite(images[2], np.zeros((20, 64, 3), np.uint8))


@pytest.mark.parametrize('change, message', [
    (_empty_split, 'The test set has no image (an empty split file?)'),
    (_garbage_image, '1 of 4 test images cannot be read as an image: '),
    (_small_image, '1 of 4 test images smaller than 32 pixels'),
])
def test_bad_test_data_is_found_before_the_clean_pass(tiny, tmp_path,
                                                      capsys, change,
                                                      message):
    tool = load_tool('test_corruption')
    root = broken_copy(tiny, tmp_path, change)
    rec = str(tmp_path / 'rec.jsonl')
    args = fresh_args(tiny, tmp_path / 'work') + options(tiny, rec)
    args[args.index(f'test_dataloader.dataset.data_root='
                    f'{tiny["data_root"]}')] = \
        f'test_dataloader.dataset.data_root={root}'
    assert tool.main(args) == 2
    err = capsys.readouterr().err
    assert message in err and 'Traceback' not in err
    assert recorded(rec) == []
    assert not osp.exists(tmp_path / 'work')


def test_work_dir_under_a_file_is_refused(tiny, tmp_path, capsys):
    tool = load_tool('test_corruption')
    blocker = tmp_path / 'file'
    blocker.write_text('x')
    assert tool.main(fresh_args(tiny, blocker / 'work') +
                     options(tiny, str(tmp_path / 'r'))) == 2
    assert 'which is a file, not a folder' in capsys.readouterr().err


def test_show_dir_under_a_file_is_refused_before_any_work(tiny, tmp_path,
                                                         capsys):
    tool = load_tool('test_corruption')
    blocker = tmp_path / 'file'
    blocker.write_text('x')
    record = tmp_path / 'r'
    assert tool.main(fresh_args(tiny, tmp_path / 'work') +
                     ['--show-dir', str(blocker / 'show')] +
                     options(tiny, str(record))) == 2
    err = capsys.readouterr().err
    assert "Show dir '" in err and 'which is a file, not a folder' in err
    assert '--show-dir' in err
    # Stopped before the clean pass: nothing evaluated, no result file.
    assert recorded(record) == []
    assert not osp.exists(tmp_path / 'work' / 'robustness.json')


def test_nan_miou_is_reported_and_evaluated_again(tiny, tmp_path, capsys):
    # Every label 0, which reduce_zero_label turns into "ignore": no class
    # has a pixel, so IoUMetric's mIoU is NaN.
    def unlabelled(root, images):
        for path in glob.glob(osp.join(root, 'SegmentationClassContext',
                                       '*.png')):
            label = cv2.imread(path, cv2.IMREAD_UNCHANGED)
            cv2.imwrite(path, np.zeros_like(label))

    tool = load_tool('test_corruption')
    root = broken_copy(tiny, tmp_path, unlabelled)
    rec = str(tmp_path / 'rec.jsonl')
    args = fresh_args(tiny, tmp_path / 'work') + [
        '--cfg-options', f'test_dataloader.dataset.data_root={root}',
        f'custom_hooks.0.record={rec}']
    assert tool.main(args) == 1
    err = capsys.readouterr().err
    assert 'mIoU is NaN for clean, brightness-1' in err
    stored = read_json(tmp_path / 'work')
    assert stored['conditions'][0]['mIoU'] is None
    assert stored['summary']['averaged_over']['missing'] == ['brightness-1']
    assert tool.main(args) == 1
    # Not counted as done: evaluated again.
    assert recorded(rec) == ['clean', 'brightness-1'] * 2


def test_two_runs_started_together_lose_nothing(tiny, tmp_path, capsys):
    # fog in another process, gaussian_noise here, same work dir: the
    # second is turned away while the first runs, then adds its condition.
    tool = load_tool('test_corruption')
    work = tmp_path / 'work'
    rec = tmp_path / 'rec.jsonl'
    common = ['--severities', '1', '--work-dir', str(work)]
    path = (REPO_ROOT, TEST_DIR, os.environ.get('PYTHONPATH'))
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='',
               PYTHONPATH=os.pathsep.join(p for p in path if p))
    first = subprocess.Popen(
        [sys.executable, 'tools/test_corruption.py', tiny['config'],
         tiny['checkpoint'], '--corruptions', 'fog', *common,
         *options(tiny, str(rec), 'custom_hooks.0.pause=3')],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 120
        while not recorded(rec):  # the first run is evaluating
            assert first.poll() is None, first.communicate()[0][-3000:]
            assert time.time() < deadline
            time.sleep(0.2)
        second = [tiny['config'], tiny['checkpoint'], '--corruptions',
                  'gaussian_noise', *common]
        assert tool.main(second + options(tiny, str(rec))) == 2
        assert 'Another robustness run is using work dir' \
            in capsys.readouterr().err
        output = first.communicate(timeout=300)[0]
        assert first.returncode == 0, output[-3000:]
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert tool.main(second + options(tiny, str(rec))) == 0
    final = read_json(work)
    assert [(c['corruption'], c['severity'])
            for c in final['conditions']] == [('fog', 1),
                                              ('gaussian_noise', 1)]
    assert recorded(rec) == ['clean', 'fog-1', 'gaussian_noise-1']
