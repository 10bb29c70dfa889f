"""The CPU demo: pre-train, fine-tune with AdamW and AdamSPD, compare.

One command runs the whole story on synthetic data (no downloads)::

    python tools/run_demo.py [--work-dir work_dirs/demo] [--quick]

Stages, each writing under the work dir; all but ``data`` and ``summary``
run the project's tools as separate processes:

1. ``data``: synthetic domains A and B
   (:func:`mmspd.datasets.generate_demo_dataset`).
2. ``pretrain_A``: the tiny Swin-UperNet trained on domain A.
3. ``finetune_adamw`` / ``finetune_adamspd``: fine-tuned on domain B from
   the domain-A checkpoint (``load_from``), once per optimizer.
4. ``test_pretrained`` / ``test_adamw`` / ``test_adamspd``: clean mIoU on
   domain B's val split (``tools/test.py``).
5. ``corruption_adamw`` / ``corruption_adamspd``: the corruption benchmark
   on domain B's val split (``tools/test_corruption.py``), then
   ``compare``: ``tools/robustness_table.py``.
6. ``summary``: the side-by-side table (clean mIoU, mPC, rPC, deviation
   from the pre-trained weights), printed and written to ``summary.md`` and
   ``summary.json``.

A stage that finished (``logs/<stage>.done``) and whose outputs still exist
is skipped, so an interrupted demo resumes where it stopped. Each stage's
console output goes to ``logs/<stage>.log``.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import time
import warnings
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Callable

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
# Run from a checkout without installing the package.
if REPO not in sys.path:
    sys.path.insert(0, REPO)
CONFIG_DIR = osp.join(REPO, 'configs', 'demo')
PRETRAIN_CONFIG = osp.join(
    CONFIG_DIR, 'upernet_swin-demo_adamw_1xb8-1000i_demo-a-64x64.py')
FINETUNE_CONFIGS = {
    'AdamW':
    osp.join(CONFIG_DIR, 'upernet_swin-demo_adamw_1xb8-300i_demo-b-64x64.py'),
    'AdamSPD':
    osp.join(CONFIG_DIR,
             'upernet_swin-demo_adamspd_1xb8-300i_demo-b-64x64.py'),
}

# Full demo: about 4.5 minutes on an otherwise idle 2-core CPU.
FULL = {
    'num_train_a': 128,
    'num_train_b': 32,
    'num_val': 32,
    'size': 64,
    'pretrain_iters': None,  # the configs' own schedules
    'finetune_iters': None,
    # Three of the five severities halve the benchmark's time.
    'severities': ['1', '3', '5'],
}
# --quick: exercises every stage in about a minute; numbers mean nothing.
QUICK = {
    'num_train_a': 8,
    'num_train_b': 8,
    'num_val': 4,
    'size': 64,
    'pretrain_iters': 4,
    'finetune_iters': 3,
    'severities': ['1'],
}

_TRAIN_PROGRESS = re.compile(r'Iter\(train\)\s*\[\s*(\d+)/(\d+)\]'
                             r'(?:.*?eta: (\S+))?.*?\bloss: ([0-9.]+)')
_CONDITION_PROGRESS = re.compile(r'condition (\d+/\d+): (.+)$')


class DemoError(RuntimeError):
    """A stage failed or the work dir cannot be used."""


@dataclass
class Stage:
    """One step of the demo.

    Args:
        name (str): Stage name, also its log file's name.
        outputs (list[str]): Files the stage produces. It counts as done
            when they exist and it was marked finished.
        run (Callable[[str], None]): Does the work; gets the log path.
        deps (tuple[str, ...]): Stages that must finish first.
    """
    name: str
    outputs: list[str]
    run: Callable[[str], None] = field(repr=False)
    deps: tuple[str, ...] = ()


def _fmt_time(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f'{minutes}:{seconds:02d}'


def _show(path: str) -> str:
    """``path`` relative to the current directory when inside it."""
    rel = osp.relpath(path)
    return path if rel.startswith(os.pardir) else rel


def _tail(path: str, lines: int = 20) -> str:
    try:
        with open(path, encoding='utf-8', errors='replace') as f:
            return ''.join(f.readlines()[-lines:])
    except OSError:
        return ''


def _run_tool(stage: str, args: list[str], log_path: str,
              threads: int | None = None) -> None:
    """Run ``python tools/...`` with output to ``log_path``, show progress.

    Args:
        stage (str): Stage name, for messages.
        args (list[str]): The tool's path and its arguments.
        log_path (str): Where the tool's output goes.
        threads (int, optional): CPU threads for the tool, unless the
            environment already sets ``OMP_NUM_THREADS``. Defaults to None
            (the libraries' own choice).

    Raises:
        DemoError: If the tool is missing or exits with a non-zero status;
            the message names the stage and the log file.
    """
    tool = args[0]
    if not osp.isfile(tool):
        raise DemoError(f'stage {stage!r} needs {osp.relpath(tool, REPO)}, '
                        'which does not exist')
    env = dict(os.environ)
    # The tools import mmspd; a checkout that is not pip-installed works too.
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in (REPO, env.get('PYTHONPATH')) if p)
    env.setdefault('PYTHONUNBUFFERED', '1')
    if threads is not None:
        env.setdefault('OMP_NUM_THREADS', str(threads))
    with open(log_path, 'w', encoding='utf-8') as log:
        log.write('$ ' + ' '.join([sys.executable, *args]) + '\n')
        log.flush()
        proc = subprocess.Popen([sys.executable, *args], cwd=os.getcwd(),
                                env=env, stdout=log,
                                stderr=subprocess.STDOUT)
        try:
            _follow(proc, log_path, stage)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    if proc.returncode != 0:
        raise DemoError(
            f'stage {stage!r} failed (exit status {proc.returncode}); '
            f'full log: {_show(log_path)}\n--- last lines ---\n'
            f'{_tail(log_path)}')


def _follow(proc: subprocess.Popen, log_path: str, stage: str) -> None:
    """Wait for ``proc``, echoing training progress from its log."""
    with open(log_path, encoding='utf-8', errors='replace') as log:
        while True:
            done = proc.poll() is not None
            for line in log:
                match = _TRAIN_PROGRESS.search(line)
                if match:
                    eta = f'  eta {match[3]}' if match[3] else ''
                    print(f'      {stage}: iter {match[1]}/{match[2]}  '
                          f'loss {match[4]}{eta}', flush=True)
                match = _CONDITION_PROGRESS.search(line)
                if match:
                    print(f'      {stage}: condition {match[1]} '
                          f'{match[2].strip()}', flush=True)
            if done:
                return
            time.sleep(0.5)


def _publish_checkpoint(train_dir: str, dst: str) -> None:
    """Copy the checkpoint a training run ended with to ``dst``."""
    pointer = osp.join(train_dir, 'last_checkpoint')
    try:
        with open(pointer, encoding='utf-8') as f:
            src = f.read().strip()
    except OSError as err:
        raise DemoError(f'training in {train_dir} finished without a '
                        f'checkpoint ({pointer} missing)') from err
    # Copy then rename, so that ``dst`` exists only when complete.
    shutil.copyfile(src, dst + '.part')
    os.replace(dst + '.part', dst)


def _latest_test_metrics(test_dir: str) -> dict:
    """The metrics MMEngine's logger dumped for the newest test run."""
    found = sorted(glob.glob(osp.join(test_dir, '*', '*.json')),
                   key=osp.getmtime)
    for path in reversed(found):
        with open(path, encoding='utf-8') as f:
            try:
                metrics = json.load(f)
            except json.JSONDecodeError:
                continue
        if isinstance(metrics, dict) and 'mIoU' in metrics:
            return metrics
    raise DemoError(f'no test metrics (a JSON file with mIoU) under '
                    f'{test_dir}')


def _write_json(path: str, data: dict) -> None:
    with open(path + '.part', 'w', encoding='utf-8') as f:
        json.dump(data, f, indent=2)
        f.write('\n')
    os.replace(path + '.part', path)


def _read_json(path: str) -> dict:
    with open(path, encoding='utf-8') as f:
        return json.load(f)


def parameter_deviation(pretrained: str, finetuned: str,
                        config: str) -> dict[str, float]:
    """L2 distance of the fine-tuned parameters from the pre-trained ones.

    Only the model's parameters count (not BN statistics or other buffers).

    Args:
        pretrained (str): Checkpoint fine-tuning started from.
        finetuned (str): Checkpoint fine-tuning ended with.
        config (str): Config that builds the model, to know which
            state-dict entries are parameters.

    Returns:
        dict[str, float]: ``abs`` = |theta - theta_pre| over all parameters
        and ``rel`` = ``abs`` / |theta_pre|.
    """
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    import mmspd  # noqa: F401  (registers mmspd; allows mmengine pickles)

    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    with warnings.catch_warnings():
        # mmseg's deprecation notices while building say nothing here.
        warnings.simplefilter('ignore', UserWarning)
        model = MODELS.build(cfg.model)
    names = [name for name, _ in model.named_parameters()]
    start = torch.load(pretrained, map_location='cpu')['state_dict']
    end = torch.load(finetuned, map_location='cpu')['state_dict']
    missing = [n for n in names if n not in start or n not in end]
    if missing:
        raise DemoError(f'checkpoints lack parameters {missing[:3]}...; '
                        f'were {pretrained} and {finetuned} trained with '
                        f'{config}?')
    diff_sq = sum(
        float(((end[n].double() - start[n].double())**2).sum())
        for n in names)
    start_sq = sum(float((start[n].double()**2).sum()) for n in names)
    return {'abs': diff_sq**0.5, 'rel': (diff_sq / start_sq)**0.5}


def _robustness_value(report: dict, key: str) -> float | None:
    """The mIoU entry of ``summary[key]`` (``'mPC'``, ``'rPC'``) in a
    ``robustness.json`` written by ``tools/test_corruption.py``."""
    value = report.get('summary', {}).get(key)
    if isinstance(value, dict):
        value = value.get('mIoU')
    return None if value is None else float(value)


def _num(value: float | None, digits: int = 2) -> str:
    return '-' if value is None else f'{value:.{digits}f}'


def _pct(value: float | None, digits: int) -> str:
    return '-' if value is None else f'{value * 100:.{digits}f}%'


def format_table(rows: list[dict]) -> str:
    """The side-by-side table as Markdown."""
    header = ('| Model | clean mIoU (B) | mPC | rPC | '
              '\\|theta - theta_pre\\| | relative |')
    lines = [header, '|' + '---|' * 6]
    for row in rows:
        cells = [
            row['name'],
            _num(row.get('mIoU')),
            _num(row.get('mPC')),
            _num(row.get('rPC'), 1) + ('%' if row.get('rPC') is not None
                                       else ''),
            _num(row.get('dev_abs'), 3),
            _pct(row.get('dev_rel'), 2),
        ]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


class Demo:
    """Builds and runs the demo's stages in one work dir.

    Args:
        work_dir (str): Where everything goes.
        settings (dict): :data:`FULL` or :data:`QUICK`.
        corruption (bool): Whether to run the corruption benchmark.
            Defaults to True.
        jobs (int): How many stages may run at once. Defaults to 2.
    """

    def __init__(self,
                 work_dir: str,
                 settings: dict,
                 corruption: bool = True,
                 jobs: int = 2):
        if jobs < 1:
            raise DemoError(f'Invalid jobs: {jobs}; expected >= 1')
        self.jobs = jobs
        # Share the cores between the stages that run at once: more
        # threads than cores slows small models down several times.
        self.threads = max(1, (os.cpu_count() or 1) // jobs)
        self.work_dir = osp.abspath(work_dir)
        self.settings = settings
        self.corruption = corruption
        self.data_dir = osp.join(self.work_dir, 'data')
        self.log_dir = osp.join(self.work_dir, 'logs')
        self.pretrained = osp.join(self.work_dir, 'pretrain_A',
                                   'pretrained_A.pth')
        self.timings: dict[str, float | None] = {}
        self.skipped: list[str] = []

    def path(self, *parts: str) -> str:
        return osp.join(self.work_dir, *parts)

    def _data_root(self, domain: str) -> str:
        return osp.join(self.data_dir, f'domain_{domain}')

    def _data_options(self, domain: str) -> list[str]:
        root = self._data_root(domain)
        return [
            f'{loader}.dataset.data_root={root}'
            for loader in ('train_dataloader', 'val_dataloader',
                           'test_dataloader')
        ]

    @staticmethod
    def _iter_options(iters: int | None) -> list[str]:
        if iters is None:
            return []
        return [
            f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
            f'default_hooks.checkpoint.interval={iters}',
            'default_hooks.logger.interval=1'
        ]

    def _check_settings(self) -> None:
        """Refuse a work dir that holds a run with other settings."""
        os.makedirs(self.log_dir, exist_ok=True)
        path = self.path('demo_settings.json')
        current = {**self.settings, 'corruption': self.corruption}
        if osp.exists(path):
            previous = _read_json(path)
            previous.pop('corruption', None)
            wanted = dict(self.settings)
            if previous != wanted:
                raise DemoError(
                    f'{self.work_dir} holds a demo run with other settings '
                    f'({path}); pass another --work-dir, or delete it to '
                    'start over')
        _write_json(path, current)

    # -- stage bodies ------------------------------------------------------

    def _gen_data(self, log: str) -> None:
        from mmspd.datasets.demo_data import DOMAINS, generate_demo_dataset
        s = self.settings
        with open(log, 'w', encoding='utf-8') as f:
            for domain in DOMAINS:
                root = self._data_root(domain)
                # Different seeds: the domains share no scene.
                names = generate_demo_dataset(
                    root, domain=domain,
                    num_train=s[f'num_train_{domain.lower()}'],
                    num_val=s['num_val'], size=s['size'],
                    seed=DOMAINS.index(domain))
                f.write(f'domain {domain}: {len(names["train"])} train, '
                        f'{len(names["val"])} val samples in {root}\n')

    def _train(self, stage: str, config: str, train_dir: str, domain: str,
               iters: int | None, dst: str,
               load_from: str | None = None) -> None:
        options = self._data_options(domain) + self._iter_options(iters)
        if load_from is not None:
            options.append(f'load_from={load_from}')
        self._tool(stage, [
            osp.join(REPO, 'tools', 'train.py'), config, '--work-dir',
            train_dir, '--cfg-options', *options
        ])
        _publish_checkpoint(train_dir, dst)

    def _test(self, stage: str, config: str, ckpt: str,
              test_dir: str) -> None:
        self._tool(stage, [
            osp.join(REPO, 'tools', 'test.py'), config, ckpt, '--work-dir',
            test_dir, '--cfg-options', *self._data_options('B')
        ])
        _write_json(osp.join(test_dir, 'metrics.json'),
                    _latest_test_metrics(test_dir))

    def _corrupt(self, stage: str, config: str, ckpt: str,
                 out_dir: str) -> None:
        self._tool(stage, [
            osp.join(REPO, 'tools', 'test_corruption.py'), config, ckpt,
            '--work-dir', out_dir, '--severities',
            *self.settings['severities'], '--cfg-options',
            *self._data_options('B')
        ])

    def _compare(self, log: str) -> None:
        self._tool('compare', [
            osp.join(REPO, 'tools', 'robustness_table.py'),
            *[self._robustness_json(m) for m in FINETUNE_CONFIGS],
            '--names', *FINETUNE_CONFIGS, '--out-dir',
            self.path('comparison')
        ])

    def _tool(self, stage: str, args: list[str]) -> None:
        _run_tool(stage, args, self._log(stage), self.threads)

    def _marker(self, stage: str) -> str:
        # Written after a stage succeeds: some tools write their outputs
        # step by step, so an output file alone does not mean done.
        return osp.join(self.log_dir, f'{stage}.done')

    def _log(self, stage: str) -> str:
        return osp.join(self.log_dir, f'{stage}.log')

    def _finetuned(self, method: str) -> str:
        return self.path(f'finetune_{method.lower()}', 'finetuned_B.pth')

    def _metrics(self, name: str) -> str:
        return self.path(f'test_{name.lower()}', 'metrics.json')

    def _robustness_json(self, method: str) -> str:
        return self.path(f'corruption_{method.lower()}', 'robustness.json')

    def stages(self) -> list[Stage]:
        """The demo's stages in a valid order, with their dependencies."""
        s = self.settings
        data_outputs = [
            osp.join(self._data_root(d), 'ImageSets', 'SegmentationContext',
                     f'{split}.txt') for d in 'AB'
            for split in ('train', 'val')
        ]
        stages = [
            Stage('data', data_outputs, self._gen_data),
            Stage(
                'pretrain_A', [self.pretrained],
                lambda log: self._train(
                    'pretrain_A', PRETRAIN_CONFIG, self.path('pretrain_A'),
                    'A', s['pretrain_iters'], self.pretrained),
                deps=('data', )),
        ]
        for method, config in FINETUNE_CONFIGS.items():
            name = f'finetune_{method.lower()}'
            stages.append(
                Stage(
                    name, [self._finetuned(method)],
                    lambda log, n=name, c=config, m=method: self._train(
                        n, c, self.path(n), 'B', s['finetune_iters'],
                        self._finetuned(m), load_from=self.pretrained),
                    deps=('pretrain_A', )))
        tests = [('pretrained', PRETRAIN_CONFIG, self.pretrained,
                  'pretrain_A')]
        tests += [(m, c, self._finetuned(m), f'finetune_{m.lower()}')
                  for m, c in FINETUNE_CONFIGS.items()]
        for name, config, ckpt, dep in tests:
            stage = f'test_{name.lower()}'
            stages.append(
                Stage(
                    stage, [self._metrics(name)],
                    lambda log, n=stage, c=config, k=ckpt: self._test(
                        n, c, k, self.path(n)),
                    deps=(dep, )))
        if self.corruption:
            for method, config in FINETUNE_CONFIGS.items():
                stage = f'corruption_{method.lower()}'
                stages.append(
                    Stage(
                        stage, [self._robustness_json(method)],
                        lambda log, n=stage, c=config, m=method: self.
                        _corrupt(n, c, self._finetuned(m), self.path(n)),
                        deps=(f'finetune_{method.lower()}', )))
            stages.append(
                Stage(
                    'compare', [self.path('comparison', 'comparison.md')],
                    self._compare,
                    deps=tuple(f'corruption_{m.lower()}'
                               for m in FINETUNE_CONFIGS)))
        return stages

    def summarize(self) -> tuple[list[dict], str]:
        """Collect the numbers, write ``summary.md`` / ``summary.json``."""
        rows = [{
            'name': 'pre-trained on A (no fine-tuning)',
            'mIoU': _read_json(self._metrics('pretrained'))['mIoU'],
        }]
        for method, config in FINETUNE_CONFIGS.items():
            row = {
                'name': f'fine-tuned on B, {method}',
                'mIoU': _read_json(self._metrics(method))['mIoU'],
            }
            if self.corruption:
                report = _read_json(self._robustness_json(method))
                row['mPC'] = _robustness_value(report, 'mPC')
                row['rPC'] = _robustness_value(report, 'rPC')
            dev = parameter_deviation(self.pretrained,
                                      self._finetuned(method), config)
            row['dev_abs'], row['dev_rel'] = dev['abs'], dev['rel']
            rows.append(row)
        table = format_table(rows)
        notes = [
            '',
            ('mIoU, mPC in percent on domain B val; mPC = mean over '
             'corruptions and severities; rPC = mPC / clean mIoU; '
             'deviation = L2 norm over all parameters from the domain-A '
             'model (relative: divided by its norm).'),
        ]
        if self.corruption:
            notes.append('Per corruption: comparison/comparison.md.')
        text = table + '\n' + '\n'.join(notes) + '\n'
        with open(self.path('summary.md'), 'w', encoding='utf-8') as f:
            f.write(text)
        _write_json(self.path('summary.json'), {
            'rows': rows,
            'settings': self.settings,
            'stage_seconds': self.timings,
            'stages_skipped_this_run': self.skipped,
        })
        return rows, text

    def run(self) -> str:
        """Run every stage not yet done; return the summary table.

        Up to ``jobs`` stages whose dependencies are done run at once. After
        a failure no new stage starts; those running are let finish, so
        their outputs are kept, then the first error is raised.
        """
        start = time.time()
        self._check_settings()
        stages = self.stages()
        total = len(stages) + 1
        number = {st.name: i for i, st in enumerate(stages, 1)}
        done: set[str] = set()
        pending = []
        for stage in stages:
            if osp.exists(self._marker(stage.name)) and all(
                    osp.exists(p) for p in stage.outputs):
                print(f'[{number[stage.name]}/{total}] {stage.name}: done '
                      'before, skipped', flush=True)
                self.skipped.append(stage.name)
                self.timings[stage.name] = _read_json(
                    self._marker(stage.name)).get('seconds')
                done.add(stage.name)
            else:
                pending.append(stage)

        def work(stage: Stage) -> float:
            t0 = time.time()
            stage.run(self._log(stage.name))
            return time.time() - t0

        errors: list[BaseException] = []
        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            running = {}
            while pending or running:
                while not errors and len(running) < self.jobs:
                    ready = [
                        st for st in pending if set(st.deps) <= done
                    ]
                    if not ready:
                        break
                    stage = ready[0]
                    pending.remove(stage)
                    print(f'[{number[stage.name]}/{total}] {stage.name}: '
                          f'running (log: {_show(self._log(stage.name))})',
                          flush=True)
                    running[pool.submit(work, stage)] = stage
                if not running:
                    break
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    stage = running.pop(future)
                    try:
                        seconds = future.result()
                    except BaseException as err:  # noqa: BLE001
                        errors.append(err)
                        continue
                    done.add(stage.name)
                    self.timings[stage.name] = round(seconds, 1)
                    _write_json(self._marker(stage.name),
                                {'seconds': round(seconds, 1)})
                    print(f'[{number[stage.name]}/{total}] {stage.name}: '
                          f'done in {_fmt_time(seconds)} (total '
                          f'{_fmt_time(time.time() - start)})', flush=True)
        if errors:
            raise errors[0]
        print(f'[{total}/{total}] summary', flush=True)
        _, text = self.summarize()
        print(f'\nDemo finished in {_fmt_time(time.time() - start)}; '
              f'outputs in {self.work_dir}\n')
        print(text)
        return text


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='CPU demo: pre-train on synthetic domain A, fine-tune on '
        'domain B with AdamW and with AdamSPD, compare clean and corrupted '
        'mIoU and the distance from the pre-trained weights')
    parser.add_argument(
        '--work-dir', default=osp.join('work_dirs', 'demo'),
        help='where all outputs go (default: %(default)s)')
    parser.add_argument(
        '--quick', action='store_true',
        help='tiny data and a few iterations: checks that every stage runs '
        '(about a minute); the numbers mean nothing')
    parser.add_argument(
        '--jobs', type=int, default=2,
        help='stages run at once when their inputs are ready; each gets '
        'CPU cores / JOBS threads (default: %(default)s)')
    parser.add_argument(
        '--no-corruption', action='store_true',
        help='skip the corruption benchmark (clean mIoU and deviation only)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        demo = Demo(args.work_dir, QUICK if args.quick else FULL,
                    corruption=not args.no_corruption, jobs=args.jobs)
        demo.run()
    except DemoError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print('\ninterrupted; run the same command again to resume',
              file=sys.stderr)
        return 130
    return 0


if __name__ == '__main__':
    sys.exit(main())
