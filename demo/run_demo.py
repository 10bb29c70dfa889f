"""The CPU demo: does SPD keep more of a broad pre-training's robustness?

One command asks the paper's question on generated data (no download)::

    python tools/run_demo.py [--work-dir work_dirs/demo] [--quick]

1. ``data``: three generated sets (:mod:`mmspd.datasets.demo_data`): a
   *broad* mixture of appearances for pre-training, a *narrow target* (one
   appearance, few training images) and *out-of-distribution* scenes in
   held-out appearances.
2. ``pretrain``: the tiny Swin-UperNet trained on the broad mixture.
3. Fine-tuning on the target from that checkpoint with AdamW, L2-SP
   (``AdamL2SP``) and Adam-SPD (``AdamSPD``), one run per seed. The
   strength lambda of L2-SP and Adam-SPD is chosen from a small grid on the
   target's val split, with the first seed (``select_*`` stages); the other
   seeds use the chosen value.
4. Every model, the pre-trained one included, is evaluated on the target's
   test split, clean (ID) and under the four default corruptions at every
   severity (``tools/test_corruption.py``), and on the held-out
   appearances (OOD, ``tools/test.py``).
5. ``summary``: ``summary.md`` (mean +- std over seeds), ``summary.json``
   (every run's numbers), ``severity.png`` and ``ood_vs_deviation.png``.

Training and evaluation run the project's tools as separate processes,
exactly as a user would. A stage that finished (``logs/<stage>.done``) and
whose outputs still exist is skipped, so an interrupted demo resumes where
it stopped. Each stage's console output goes to ``logs/<stage>.log``.
"""
from __future__ import annotations

import argparse
import glob
import json
import math
import os
import os.path as osp
import re
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

from mmspd.datasets.demo_data import (  # noqa: E402
    DEMO_SIZES,
    generate_demo_dataset,
)

CONFIG_DIR = osp.join(REPO, 'configs', 'demo')
PRETRAIN_CONFIG = osp.join(
    CONFIG_DIR, 'upernet_swin-demo_adamw_1xb16-700i_demo-broad-64x64.py')


@dataclass(frozen=True)
class Method:
    """A fine-tuning method the demo compares.

    Args:
        name (str): Name in the table.
        key (str): Name in stage and directory names.
        config (str): Fine-tuning config.
        tuned (bool): Whether lambda (the optimizer's ``weight_decay``) is
            chosen from the settings' grid. Defaults to False.
    """
    name: str
    key: str
    config: str
    tuned: bool = False


def _finetune_config(optimizer: str) -> str:
    return osp.join(
        CONFIG_DIR,
        f'upernet_swin-demo_{optimizer}_1xb8-100i_demo-target-64x64.py')


METHODS = (
    Method('AdamW', 'adamw', _finetune_config('adamw')),
    Method('L2-SP', 'l2sp', _finetune_config('adaml2sp'), tuned=True),
    Method('Adam-SPD', 'spd', _finetune_config('adamspd'), tuned=True),
)
PRETRAINED = 'pre-trained'  # its row in the table
PRETRAIN = 'pretrain'  # its run, model and stage name

# The full demo (docs/demo.md records a run).
FULL = {
    'size': 64,
    # Samples per split: broad (pre-training), target (fine-tuning, lambda
    # choice on val, ID test) and ood (held-out appearances).
    'counts': DEMO_SIZES,
    'pretrain_iters': None,  # the configs' own schedules
    'finetune_iters': None,
    'seeds': [0, 1, 2],
    # The grids the Swin-T configs' comments propose, fixed before any
    # demo run: L2-SP's alpha and Adam-SPD's lambda.
    'grids': {'l2sp': [1e-3, 1e-2, 1e-1], 'spd': [0.1, 0.3, 1.0]},
    'severities': [1, 2, 3, 4, 5],
}
# --quick: every stage on tiny sizes; the numbers mean nothing.
QUICK = {
    'size': 64,
    'counts': {
        'broad': {'train': 16, 'val': 4},
        'target': {'train': 8, 'val': 4, 'test': 4},
        'ood': {'test': 4},
    },
    'pretrain_iters': 4,
    'finetune_iters': 2,
    'seeds': [0, 1],
    'grids': {'l2sp': [1e-3, 1e-1], 'spd': [0.1, 1.0]},
    'severities': [1, 5],
}

_TRAIN_PROGRESS = re.compile(r'Iter\(train\)\s*\[\s*(\d+)/(\d+)\]'
                             r'(?:.*?eta: (\S+))?.*?\bloss: ([0-9.]+)')
SPLIT_FILE = 'ImageSets/SegmentationContext/{}.txt'


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


def _run_tool(stage: str, args: list[str], log_path: str, threads: int,
              echo: bool = False) -> None:
    """Run ``python tools/...`` with output to ``log_path``.

    Args:
        stage (str): Stage name, for messages.
        args (list[str]): The tool's path and its arguments.
        log_path (str): Where the tool's output goes.
        threads (int): CPU threads for the tool, unless the environment
            already sets ``OMP_NUM_THREADS``.
        echo (bool): Print the tool's training progress. Defaults to False.

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
    env.setdefault('OMP_NUM_THREADS', str(threads))
    with open(log_path, 'w', encoding='utf-8') as log:
        log.write('$ ' + ' '.join([sys.executable, *args]) + '\n')
        log.flush()
        proc = subprocess.Popen([sys.executable, *args], cwd=os.getcwd(),
                                env=env, stdout=log,
                                stderr=subprocess.STDOUT)
        try:
            _follow(proc, log_path, stage, echo)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    if proc.returncode != 0:
        raise DemoError(
            f'stage {stage!r} failed (exit status {proc.returncode}); '
            f'full log: {_show(log_path)}\n--- last lines ---\n'
            f'{_tail(log_path)}')


def _follow(proc: subprocess.Popen, log_path: str, stage: str,
            echo: bool) -> None:
    """Wait for ``proc``, echoing training progress from its log."""
    with open(log_path, encoding='utf-8', errors='replace') as log:
        while True:
            done = proc.poll() is not None
            for line in log:
                match = _TRAIN_PROGRESS.search(line) if echo else None
                if match:
                    eta = f'  eta {match[3]}' if match[3] else ''
                    print(f'      {stage}: iter {match[1]}/{match[2]}  '
                          f'loss {match[4]}{eta}', flush=True)
            if done:
                return
            time.sleep(0.3)


def _write_json(path: str, data: dict) -> None:
    with open(path + '.part', 'w', encoding='utf-8') as f:
        json.dump(data, f, indent=2)
        f.write('\n')
    os.replace(path + '.part', path)


def _read_json(path: str) -> dict:
    with open(path, encoding='utf-8') as f:
        return json.load(f)


def _newest_with_miou(paths: list[str], what: str) -> dict:
    """The last JSON record holding ``mIoU`` in the newest of ``paths``.

    MMEngine writes one JSON object per line (``scalars.json``) or one per
    file (a test run's metrics); both are read here.
    """
    for path in sorted(paths, key=osp.getmtime, reverse=True):
        with open(path, encoding='utf-8') as f:
            lines = f.read().splitlines()
        for line in reversed(lines):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and 'mIoU' in record:
                return record
    raise DemoError(f'no {what} (a JSON record with mIoU) found')


def parameter_deviation(pretrained: str, finetuned: list[str],
                        config: str) -> list[dict[str, float]]:
    """L2 distance of fine-tuned parameters from the pre-trained ones.

    Only the model's parameters count (not BN statistics or other buffers).

    Args:
        pretrained (str): Checkpoint fine-tuning started from.
        finetuned (list[str]): Checkpoints fine-tuning ended with.
        config (str): Config that builds the model, to know which
            state-dict entries are parameters.

    Returns:
        list[dict[str, float]]: Per fine-tuned checkpoint, ``abs`` =
        |theta - theta_pre| over all parameters and ``rel`` = ``abs`` /
        |theta_pre|.
    """
    import torch
    with warnings.catch_warnings():
        # The libraries' deprecation notices while importing and building
        # say nothing here.
        warnings.simplefilter('ignore', UserWarning)
        from mmengine.config import Config
        from mmengine.registry import init_default_scope
        from mmseg.registry import MODELS

        cfg = Config.fromfile(config)
        init_default_scope(cfg.get('default_scope', 'mmseg'))
        model = MODELS.build(cfg.model)
    names = [name for name, _ in model.named_parameters()]
    start = torch.load(pretrained, map_location='cpu')['state_dict']
    start_sq = sum(float((start[n].double()**2).sum()) for n in names)
    result = []
    for path in finetuned:
        end = torch.load(path, map_location='cpu')['state_dict']
        missing = [n for n in names if n not in start or n not in end]
        if missing:
            raise DemoError(f'checkpoints lack parameters {missing[:3]}...; '
                            f'were {pretrained} and {path} trained with '
                            f'{config}?')
        diff_sq = sum(
            float(((end[n].double() - start[n].double())**2).sum())
            for n in names)
        result.append({'abs': diff_sq**0.5, 'rel': (diff_sq / start_sq)**0.5})
    return result


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (NaN for a single value)."""
    if not values:
        return math.nan, math.nan
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, math.nan
    var = sum((v - mean)**2 for v in values) / (len(values) - 1)
    return mean, var**0.5


def _cell(values: list[float], digits: int = 1) -> str:
    mean, std = mean_std(values)
    if math.isnan(mean):
        return '-'
    if math.isnan(std):
        return f'{mean:.{digits}f}'
    return f'{mean:.{digits}f} ± {std:.{digits}f}'


def _label(corruption: str) -> str:
    return corruption.replace('_', ' ')


class Demo:
    """Builds and runs the demo's stages in one work dir.

    Args:
        work_dir (str): Where everything goes.
        settings (dict): :data:`FULL` or :data:`QUICK`.
        jobs (int): How many stages may run at once. Defaults to 2.
    """

    def __init__(self, work_dir: str, settings: dict, jobs: int = 2):
        if jobs < 1:
            raise DemoError(f'Invalid jobs: {jobs}; expected >= 1')
        self.jobs = jobs
        # Share the cores between the stages that run at once: with more
        # threads than free cores, a small model trains up to ten times
        # slower (measured on a loaded 2-core machine).
        self.threads = max(1, (os.cpu_count() or 1) // jobs)
        self.work_dir = osp.abspath(work_dir)
        self.settings = settings
        self.log_dir = osp.join(self.work_dir, 'logs')
        self.timings: dict[str, float | None] = {}
        self.skipped: list[str] = []

    # -- paths -------------------------------------------------------------

    def path(self, *parts: str) -> str:
        return osp.join(self.work_dir, *parts)

    def data_root(self, domain: str) -> str:
        return self.path('data', domain)

    def _marker(self, stage: str) -> str:
        # Written after a stage succeeds: some tools write their outputs
        # step by step, so an output file alone does not mean done.
        return osp.join(self.log_dir, f'{stage}.done')

    def _log(self, stage: str) -> str:
        return osp.join(self.log_dir, f'{stage}.log')

    def _result(self, run: str) -> str:
        """A training run's record: checkpoint, val mIoU, lambda."""
        return self.path('runs', run, 'result.json')

    def _selection(self, method: Method) -> str:
        return self.path('runs', f'select_{method.key}.json')

    def _robustness(self, model: str) -> str:
        return self.path('eval', model, 'corruption', 'robustness.json')

    def _ood(self, run: str) -> str:
        return self.path('eval', run, 'ood', 'metrics.json')

    @staticmethod
    def grid_run(method: Method, lam: float, seed: int) -> str:
        return f'{method.key}_lam{lam:g}_s{seed}'

    @staticmethod
    def model_name(method: Method, seed: int) -> str:
        return f'{method.key}_s{seed}'

    def chosen_lambda(self, method: Method) -> float:
        return float(_read_json(self._selection(method))['chosen'])

    def final_run(self, method: Method, seed: int) -> str:
        """The training run behind the seed's model of ``method``.

        For a tuned method, the first seed's model is the grid run with the
        chosen lambda.
        """
        if method.tuned and seed == self.settings['seeds'][0]:
            return self.grid_run(method, self.chosen_lambda(method), seed)
        return self.model_name(method, seed)

    def run_of(self, model: str) -> str:
        """The training run behind :data:`PRETRAIN` or a model name."""
        if model == PRETRAIN:
            return PRETRAIN
        for method in METHODS:
            for seed in self.settings['seeds']:
                if model == self.model_name(method, seed):
                    return self.final_run(method, seed)
        raise KeyError(model)

    def checkpoint(self, run: str) -> str:
        """The checkpoint a training run ended with."""
        return _read_json(self._result(run))['checkpoint']

    # -- tool command lines -------------------------------------------------

    def _data_options(self, loader: str, domain: str,
                      split: str) -> list[str]:
        return [
            f'{loader}.dataset.data_root={self.data_root(domain)}',
            f'{loader}.dataset.ann_file={SPLIT_FILE.format(split)}',
        ]

    def _train_options(self, domain: str, iters: int | None) -> list[str]:
        options = (self._data_options('train_dataloader', domain, 'train') +
                   self._data_options('val_dataloader', domain, 'val') +
                   # A run is never resumed half-way (its stage re-runs),
                   # so the optimizer state need not be saved.
                   ['default_hooks.checkpoint.save_optimizer=False'])
        if iters is not None:
            options += [
                f'train_cfg.max_iters={iters}',
                f'train_cfg.val_interval={iters}',
                f'default_hooks.checkpoint.interval={iters}',
                'default_hooks.logger.interval=1'
            ]
        return options

    def _tool(self, stage: str, args: list[str], echo: bool = False) -> None:
        _run_tool(stage, [osp.join(REPO, 'tools', args[0]), *args[1:]],
                  self._log(stage), self.threads, echo)

    def _train(self, stage: str, config: str, run: str, options: list[str],
               lam: float | None = None, echo: bool = False) -> None:
        work = self.path('runs', run)
        self._tool(stage, ['train.py', config, '--work-dir', work,
                           '--cfg-options', *options], echo=echo)
        pointer = osp.join(work, 'last_checkpoint')
        try:
            with open(pointer, encoding='utf-8') as f:
                checkpoint = f.read().strip()
        except OSError as err:
            raise DemoError(f'training in {work} finished without a '
                            f'checkpoint ({pointer} missing)') from err
        scalars = glob.glob(osp.join(work, '*', 'vis_data', 'scalars.json'))
        val = _newest_with_miou(scalars, f'validation result in {work}')
        _write_json(self._result(run), {
            'checkpoint': checkpoint,
            'val_mIoU': val['mIoU'],
            'lambda': lam,
        })

    def _pretrain(self, log: str) -> None:
        s = self.settings
        self._train(PRETRAIN, PRETRAIN_CONFIG, PRETRAIN,
                    self._train_options('broad', s['pretrain_iters']),
                    echo=True)

    def _finetune(self, stage: str, method: Method, seed: int, run: str,
                  lam: float | None) -> None:
        options = self._train_options('target', self.settings[
            'finetune_iters']) + [
                f'load_from={self.checkpoint(PRETRAIN)}',
                f'randomness.seed={seed}'
            ]
        if lam is not None:
            options.append(f'optim_wrapper.optimizer.weight_decay={lam!r}')
        self._train(stage, method.config, run, options, lam=lam)

    def _test_options(self, domain: str) -> list[str]:
        return self._data_options('test_dataloader', domain, 'test') + [
            # 64x64 images stack without padding: batches are cheaper.
            'test_dataloader.batch_size=8'
        ]

    def _eval_corruption(self, stage: str, model: str, config: str) -> None:
        self._tool(stage, [
            'test_corruption.py', config, self.checkpoint(self.run_of(model)),
            '--work-dir', osp.dirname(self._robustness(model)),
            '--severities', *map(str, self.settings['severities']),
            '--cfg-options', *self._test_options('target')
        ])

    def _eval_ood(self, stage: str, run: str, config: str) -> None:
        out = osp.dirname(self._ood(run))
        self._tool(stage, [
            'test.py', config, self.checkpoint(run), '--work-dir', out,
            '--cfg-options', *self._test_options('ood')
        ])
        found = glob.glob(osp.join(out, '*', '*.json'))
        _write_json(self._ood(run),
                    _newest_with_miou(found, f'test metrics under {out}'))

    def _select(self, method: Method) -> None:
        """Choose lambda by the first seed's target val mIoU."""
        seed = self.settings['seeds'][0]
        scores = {
            str(lam): _read_json(self._result(
                self.grid_run(method, lam, seed)))['val_mIoU']
            for lam in self.settings['grids'][method.key]
        }
        # The first of equal scores wins: the grid's order breaks ties.
        chosen = max(scores, key=scores.get)
        _write_json(self._selection(method), {
            'seed': seed, 'val_mIoU': scores, 'chosen': float(chosen)})

    def _gen_data(self, log: str) -> None:
        counts = self.settings['counts']
        with open(log, 'w', encoding='utf-8') as f:
            for domain, splits in counts.items():
                names = generate_demo_dataset(
                    self.data_root(domain), domain=domain,
                    num_train=splits.get('train', 0),
                    num_val=splits.get('val', 0),
                    num_test=splits.get('test', 0),
                    size=self.settings['size'])
                written = ', '.join(f'{len(v)} {k}'
                                    for k, v in names.items())
                f.write(f'{domain}: {written} in {self.data_root(domain)}\n')

    # -- stages ------------------------------------------------------------

    def _check_settings(self) -> None:
        """Refuse a work dir that holds a run with other settings."""
        os.makedirs(self.log_dir, exist_ok=True)
        path = self.path('demo_settings.json')
        if osp.exists(path) and _read_json(path) != self.settings:
            raise DemoError(
                f'{self.work_dir} holds a demo run with other settings '
                f'({path}); pass another --work-dir, or delete it to start '
                'over')
        _write_json(path, self.settings)

    def stages(self) -> list[Stage]:
        """The demo's stages in a good order, with their dependencies."""
        s = self.settings
        seeds, first = s['seeds'], s['seeds'][0]
        data_outputs = [
            osp.join(self.data_root(domain), SPLIT_FILE.format(split))
            for domain, split in (('broad', 'train'), ('target', 'train'),
                                  ('target', 'test'), ('ood', 'test'))
        ]
        stages = [
            Stage('data', data_outputs, self._gen_data),
            Stage(PRETRAIN, [self._result(PRETRAIN)], self._pretrain,
                  deps=('data', )),
        ]

        trained = {PRETRAIN: PRETRAIN_CONFIG}  # training run: its config

        def finetune(method, seed, run, lam, deps):
            name = f'finetune_{run}'
            trained[run] = method.config
            stages.append(
                Stage(name, [self._result(run)],
                      lambda log: self._finetune(
                          name, method, seed, run,
                          self.chosen_lambda(method) if lam == 'chosen' else
                          lam),
                      deps=deps))
            return name

        # Grid runs first: the other seeds of tuned methods wait for them.
        for method in METHODS:
            if not method.tuned:
                continue
            grid = [
                finetune(method, first, self.grid_run(method, lam, first),
                         lam, (PRETRAIN, )) for lam in s['grids'][method.key]
            ]
            stages.append(
                Stage(f'select_{method.key}', [self._selection(method)],
                      lambda log, m=method: self._select(m),
                      deps=tuple(grid)))
        for method in METHODS:
            for seed in seeds:
                if not method.tuned:
                    finetune(method, seed, self.model_name(method, seed),
                             None, (PRETRAIN, ))
                elif seed != first:
                    finetune(method, seed, self.model_name(method, seed),
                             'chosen', (f'select_{method.key}', ))

        models = [(PRETRAIN, PRETRAIN_CONFIG, PRETRAIN)]
        for method in METHODS:
            for seed in seeds:
                model = self.model_name(method, seed)
                dep = (f'select_{method.key}' if method.tuned
                       and seed == first else f'finetune_{model}')
                models.append((model, method.config, dep))
        for model, config, dep in models:
            stages.append(
                Stage(f'corruption_{model}', [self._robustness(model)],
                      lambda log, m=model, c=config: self._eval_corruption(
                          f'corruption_{m}', m, c),
                      deps=(dep, )))
        # Every training run gets the OOD test, the grid runs included: the
        # summary shows what each lambda would have given.
        for run, config in trained.items():
            stages.append(
                Stage(f'ood_{run}', [self._ood(run)],
                      lambda log, r=run, c=config: self._eval_ood(
                          f'ood_{r}', r, c),
                      deps=(PRETRAIN if run == PRETRAIN else
                            f'finetune_{run}', )))
        return stages

    # -- summary -----------------------------------------------------------

    def _model_numbers(self, model: str) -> dict:
        """ID, OOD, per-corruption means, mPC and rPC of one model."""
        from mmspd.evaluation import RobustnessResults
        results = RobustnessResults.load(self._robustness(model))
        summary = results.summary()
        severity = {
            corruption: {
                str(c['severity']): c['mIoU']
                for c in results.conditions if c['corruption'] == corruption
            }
            for corruption in results.corruptions
        }
        return {
            'ID': results.clean['mIoU'],
            'OOD': _read_json(self._ood(self.run_of(model)))['mIoU'],
            'corruptions': {
                c: v['mIoU']
                for c, v in summary['per_corruption'].items()
            },
            'severity': severity,
            'mPC': summary['mPC']['mIoU'],
            'rPC': summary['rPC']['mIoU'],
        }

    def collect(self) -> dict:
        """Every model's numbers, the lambda grids and the deviations."""
        s = self.settings
        first = s['seeds'][0]
        models = [self.model_name(m, seed) for m in METHODS
                  for seed in s['seeds']]
        grid_runs = [self.grid_run(m, lam, first) for m in METHODS
                     if m.tuned for lam in s['grids'][m.key]]
        runs = [self.run_of(model) for model in models] + grid_runs
        deviations = parameter_deviation(
            self.checkpoint(PRETRAIN), [self.checkpoint(r) for r in runs],
            PRETRAIN_CONFIG)
        dev = dict(zip(runs, deviations))

        rows = {PRETRAINED: [dict(self._model_numbers(PRETRAIN),
                                  deviation=0.0)]}
        grids = {}
        for method in METHODS:
            rows[method.name] = []
            for seed in s['seeds']:
                model = self.model_name(method, seed)
                run = self.run_of(model)
                record = _read_json(self._result(run))
                rows[method.name].append(
                    dict(self._model_numbers(model), seed=seed, run=run,
                         lam=record['lambda'], val_mIoU=record['val_mIoU'],
                         deviation=100 * dev[run]['rel'],
                         deviation_abs=dev[run]['abs']))
            if method.tuned:
                grid = _read_json(self._selection(method))
                grid['runs'] = [{
                    'lam': lam,
                    'val_mIoU': grid['val_mIoU'][str(lam)],
                    'OOD': _read_json(self._ood(run))['mIoU'],
                    'deviation': 100 * dev[run]['rel'],
                } for lam in s['grids'][method.key]
                    for run in [self.grid_run(method, lam, first)]]
                grids[method.name] = grid
        return {'rows': rows, 'grids': grids}

    def format_summary(self, data: dict) -> str:
        """``summary.md``: the table, the lambda choice, what it means."""
        rows, grids = data['rows'], data['grids']
        corruptions = list(rows[PRETRAINED][0]['corruptions'])
        header = (['Model', 'λ', 'ID', 'OOD'] +
                  [_label(c) for c in corruptions] +
                  ['mPC', 'rPC (%)', 'deviation (%)'])
        lines = ['| ' + ' | '.join(header) + ' |',
                 '|---|---|' + '---:|' * (len(header) - 2)]
        for name, runs in rows.items():
            lam = f'{grids[name]["chosen"]:g}' if name in grids else '-'
            cells = [name, lam, _cell([r['ID'] for r in runs]),
                     _cell([r['OOD'] for r in runs])]
            cells += [_cell([r['corruptions'][c] for r in runs])
                      for c in corruptions]
            cells += [_cell([r['mPC'] for r in runs]),
                      _cell([r['rPC'] for r in runs]),
                      _cell([r['deviation'] for r in runs], 2)]
            lines.append('| ' + ' | '.join(cells) + ' |')
        s = self.settings
        first = s['seeds'][0]
        out = [
            '# mmspd demo: broad pre-training, narrow fine-tuning', '',
            *lines, '',
            'Fine-tuned rows: mean ± sample std over seeds ' +
            ', '.join(map(str, s['seeds'])) + '; the pre-trained row is '
            'one model. mIoU in %. ID: the target\'s clean test split. '
            'OOD: scenes in held-out appearances. Corruption columns: mIoU '
            'on the target test split averaged over severities ' +
            ', '.join(map(str, s['severities'])) + '; mPC: their mean; '
            'rPC = 100 mPC / ID. Deviation: |theta - theta_pre| / '
            '|theta_pre| over all parameters, in %.', '',
            '## Lambda, chosen on the target val split', '',
            f'Seed {first}, every grid value. Only the val mIoU chose '
            'lambda; the OOD column is shown, not used.', '',
            '| Method | λ | val mIoU | OOD | deviation (%) | |',
            '|---|---:|---:|---:|---:|---|'
        ]
        for name, grid in grids.items():
            for run in grid['runs']:
                mark = 'chosen' if run['lam'] == grid['chosen'] else ''
                out.append(f'| {name} | {run["lam"]:g} | '
                           f'{run["val_mIoU"]:.2f} | {run["OOD"]:.2f} | '
                           f'{run["deviation"]:.2f} | {mark} |')
        out += ['', 'Figures: severity.png (mIoU against severity), '
                'ood_vs_deviation.png (OOD mIoU against deviation). Every '
                "run's numbers: summary.json."]
        return '\n'.join(out) + '\n'

    def plot(self, data: dict) -> list[str]:
        """``severity.png`` and ``ood_vs_deviation.png``."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        rows = data['rows']
        corruptions = list(rows[PRETRAINED][0]['corruptions'])
        colours = dict(zip(rows, ('black', 'tab:blue', 'tab:orange',
                                  'tab:green')))
        figure = Figure(figsize=(3.2 * len(corruptions), 3.4))
        FigureCanvasAgg(figure)
        axes = figure.subplots(1, len(corruptions), squeeze=False)[0]
        for ax, corruption in zip(axes, corruptions):
            for name, runs in rows.items():
                levels = sorted(runs[0]['severity'][corruption], key=int)
                xs = [0] + [int(level) for level in levels]
                stats = [mean_std([r['ID'] for r in runs])] + [
                    mean_std([r['severity'][corruption][level]
                              for r in runs]) for level in levels
                ]
                means = [m for m, _ in stats]
                ax.plot(xs, means, marker='o', markersize=3,
                        color=colours[name], label=name,
                        linestyle='--' if name == PRETRAINED else '-')
                if len(runs) > 1:
                    ax.fill_between(xs, [m - d for m, d in stats],
                                    [m + d for m, d in stats],
                                    color=colours[name], alpha=0.15)
            ax.set_title(_label(corruption), fontsize=9)
            ax.set_xlabel('severity (0: clean)')
            ax.grid(alpha=0.3)
        axes[0].set_ylabel('target test mIoU (%)')
        axes[-1].legend(fontsize=7)
        figure.tight_layout()
        severity = self.path('severity.png')
        figure.savefig(severity, dpi=100)

        figure = Figure(figsize=(5, 4))
        FigureCanvasAgg(figure)
        ax = figure.add_subplot()
        for name, runs in rows.items():
            xs = [r['deviation'] for r in runs]
            ys = [r['OOD'] for r in runs]
            ax.scatter(xs, ys, color=colours[name], alpha=0.5, s=18)
            (mx, sx), (my, sy) = mean_std(xs), mean_std(ys)
            ax.errorbar(mx, my, xerr=0 if math.isnan(sx) else sx,
                        yerr=0 if math.isnan(sy) else sy, fmt='o',
                        color=colours[name], capsize=3, label=name)
        for name, grid in data['grids'].items():
            for run in grid['runs']:
                ax.scatter(run['deviation'], run['OOD'], s=40,
                           facecolors='none', edgecolors=colours[name])
                ax.annotate(f'λ={run["lam"]:g}', (run['deviation'],
                                                  run['OOD']),
                            fontsize=6, xytext=(3, 3),
                            textcoords='offset points')
        ax.set_xlabel('deviation from pre-trained weights (%)')
        ax.set_ylabel('OOD mIoU (%)')
        ax.set_title('filled: chosen lambda, every seed; hollow: lambda '
                     'grid, first seed', fontsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        figure.tight_layout()
        scatter = self.path('ood_vs_deviation.png')
        figure.savefig(scatter, dpi=100)
        return [severity, scatter]

    def summarize(self) -> str:
        """Collect the numbers; write ``summary.md``, ``.json``, figures."""
        data = self.collect()
        text = self.format_summary(data)
        with open(self.path('summary.md'), 'w', encoding='utf-8') as f:
            f.write(text)
        self.plot(data)
        _write_json(self.path('summary.json'), {
            **data,
            'settings': self.settings,
            'stage_seconds': self.timings,
            'stages_skipped_this_run': self.skipped,
        })
        return text

    # -- running -----------------------------------------------------------

    def run(self) -> str:
        """Run every stage not yet done; return the summary.

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
                    ready = [st for st in pending if set(st.deps) <= done]
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
        text = self.summarize()
        print(f'\nDemo finished in {_fmt_time(time.time() - start)}; '
              f'outputs in {self.work_dir}\n')
        print(text)
        return text


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='CPU demo: pre-train on a broad mixture of synthetic '
        'appearances, fine-tune on one narrow target appearance with AdamW, '
        'L2-SP and Adam-SPD (three seeds each), compare in-distribution, '
        'out-of-distribution and corrupted mIoU and the distance from the '
        'pre-trained weights')
    parser.add_argument(
        '--work-dir', default=osp.join('work_dirs', 'demo'),
        help='where all outputs go (default: %(default)s)')
    parser.add_argument(
        '--quick', action='store_true',
        help='tiny data, two seeds, two grid values, a few iterations: '
        'checks that every stage runs (one to a few minutes, mostly process '
        'start-up); the numbers mean nothing')
    parser.add_argument(
        '--jobs', type=int, default=2,
        help='stages run at once when their inputs are ready; each gets '
        'CPU cores / JOBS threads (default: %(default)s)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        demo = Demo(args.work_dir, QUICK if args.quick else FULL,
                    jobs=args.jobs)
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
