"""What the demo runs: the methods, the work dir and the stages.

Every stage is a step a user could take by hand: generate the data, train
with ``tools/train.py``, test with ``tools/test.py`` or
``tools/test_corruption.py`` (``--cfg-options`` set data locations, seeds
and lambda), or choose lambda from the grid runs' val mIoU. The work dir::

    data/{broad,target,ood}/        the generated sets (demo/data.py)
    runs/<run>/                     a training run; result.json records its
                                    checkpoint, val mIoU and lambda
    runs/select_<method>.json       the lambda grid's val mIoU, the choice
    eval/<model>/corruption/        tools/test_corruption.py's outputs
    eval/<run>/ood/metrics.json     tools/test.py's metrics on ood
    logs/<stage>.log, .done         each stage's output and end marker

A *run* is one training run: ``pretrain``, a grid run ``spd_lam0.3_s0``
or a seed's run ``spd_s1``. A *model* is a row entry of the table:
``pretrain`` or ``<method>_s<seed>``; a tuned method's first-seed model is
the grid run with the chosen lambda.
"""
from __future__ import annotations

import glob
import json
import os.path as osp
from dataclasses import dataclass

from demo.data import generate_demo_dataset
from demo.scheduler import DemoError, Stage, read_json, run_tool, write_json

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG_DIR = osp.join(REPO, 'demo', 'configs')
PRETRAIN_CONFIG = osp.join(
    CONFIG_DIR, 'upernet_swin-demo_adamw_1xb16-700i_demo-broad-64x64.py')
PRETRAIN = 'pretrain'  # its run, model and stage name
SPLIT_FILE = 'ImageSets/SegmentationContext/{}.txt'


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


class Plan:
    """The demo's work dir and stages for one set of settings.

    Args:
        work_dir (str): Where everything goes.
        settings (dict): ``FULL`` or ``QUICK`` of demo/run_demo.py.
        threads (int): CPU threads per tool process. Defaults to 1.
    """

    def __init__(self, work_dir: str, settings: dict, threads: int = 1):
        self.work_dir = osp.abspath(work_dir)
        self.settings = settings
        self.threads = threads
        self.log_dir = self.path('logs')

    # -- the work dir --------------------------------------------------------

    def path(self, *parts: str) -> str:
        return osp.join(self.work_dir, *parts)

    def data_root(self, domain: str) -> str:
        return self.path('data', domain)

    def result(self, run: str) -> str:
        return self.path('runs', run, 'result.json')

    def selection(self, method: Method) -> str:
        return self.path('runs', f'select_{method.key}.json')

    def robustness(self, model: str) -> str:
        return self.path('eval', model, 'corruption', 'robustness.json')

    def ood(self, run: str) -> str:
        return self.path('eval', run, 'ood', 'metrics.json')

    # -- runs and models -----------------------------------------------------

    @staticmethod
    def grid_run(method: Method, lam: float, seed: int) -> str:
        return f'{method.key}_lam{lam:g}_s{seed}'

    @staticmethod
    def model_name(method: Method, seed: int) -> str:
        return f'{method.key}_s{seed}'

    def chosen_lambda(self, method: Method) -> float:
        return float(read_json(self.selection(method))['chosen'])

    def final_run(self, method: Method, seed: int) -> str:
        """The training run behind the seed's model of ``method``."""
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
        return read_json(self.result(run))['checkpoint']

    # -- the stages ----------------------------------------------------------

    def stages(self) -> list[Stage]:
        """Every stage, each after the stages it needs."""
        s = self.settings
        seeds, first = s['seeds'], s['seeds'][0]
        data_outputs = [
            osp.join(self.data_root(domain), SPLIT_FILE.format(split))
            for domain, split in (('broad', 'train'), ('target', 'train'),
                                  ('target', 'test'), ('ood', 'test'))
        ]
        stages = [
            Stage('data', data_outputs, self.generate_data),
            Stage(PRETRAIN, [self.result(PRETRAIN)], self.pretrain,
                  deps=('data', )),
        ]
        trained = {PRETRAIN: PRETRAIN_CONFIG}  # training run: its config

        def finetune(method, seed, run, lam, deps):
            name = f'finetune_{run}'
            trained[run] = method.config
            stages.append(Stage(
                name, [self.result(run)],
                lambda log: self.finetune(
                    name, method, seed, run,
                    self.chosen_lambda(method) if lam == 'chosen' else lam),
                deps=deps))

        # Grid runs first: the other seeds of tuned methods wait for them.
        for method in METHODS:
            if method.tuned:
                for lam in s['grids'][method.key]:
                    finetune(method, first, self.grid_run(method, lam, first),
                             lam, (PRETRAIN, ))
                grid = tuple(f'finetune_{self.grid_run(method, lam, first)}'
                             for lam in s['grids'][method.key])
                stages.append(Stage(
                    f'select_{method.key}', [self.selection(method)],
                    lambda log, m=method: self.select(m), deps=grid))
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
            stages.append(Stage(
                f'corruption_{model}', [self.robustness(model)],
                lambda log, m=model, c=config: self.test_corruption(
                    f'corruption_{m}', m, c),
                deps=(dep, )))
        # Every training run gets the OOD test, the grid runs included: the
        # summary shows what each lambda would have given.
        for run, config in trained.items():
            stages.append(Stage(
                f'ood_{run}', [self.ood(run)],
                lambda log, r=run, c=config: self.test_ood(f'ood_{r}', r, c),
                deps=(PRETRAIN if run == PRETRAIN else f'finetune_{run}', )))
        return stages

    # -- what each stage does -----------------------------------------------

    def generate_data(self, log: str) -> None:
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

    def pretrain(self, log: str) -> None:
        self._train(PRETRAIN, PRETRAIN_CONFIG, PRETRAIN,
                    self._train_options('broad',
                                        self.settings['pretrain_iters']))

    def finetune(self, stage: str, method: Method, seed: int, run: str,
                 lam: float | None) -> None:
        options = self._train_options(
            'target', self.settings['finetune_iters']) + [
                f'load_from={self.checkpoint(PRETRAIN)}',
                f'randomness.seed={seed}'
            ]
        if lam is not None:
            options.append(f'optim_wrapper.optimizer.weight_decay={lam!r}')
        self._train(stage, method.config, run, options, lam=lam)

    def select(self, method: Method) -> None:
        """Choose lambda by the first seed's target val mIoU."""
        seed = self.settings['seeds'][0]
        scores = {
            str(lam): read_json(self.result(
                self.grid_run(method, lam, seed)))['val_mIoU']
            for lam in self.settings['grids'][method.key]
        }
        # The first of equal scores wins: the grid's order breaks ties.
        chosen = max(scores, key=scores.get)
        write_json(self.selection(method), {
            'seed': seed, 'val_mIoU': scores, 'chosen': float(chosen)})

    def test_corruption(self, stage: str, model: str, config: str) -> None:
        self._tool(stage, [
            'test_corruption.py', config, self.checkpoint(self.run_of(model)),
            '--work-dir', osp.dirname(self.robustness(model)),
            '--severities', *map(str, self.settings['severities']),
            '--cfg-options', *self._test_options('target')
        ])

    def test_ood(self, stage: str, run: str, config: str) -> None:
        out = osp.dirname(self.ood(run))
        self._tool(stage, [
            'test.py', config, self.checkpoint(run), '--work-dir', out,
            '--cfg-options', *self._test_options('ood')
        ])
        found = glob.glob(osp.join(out, '*', '*.json'))
        write_json(self.ood(run),
                   _newest_with_miou(found, f'test metrics under {out}'))

    # -- tool command lines --------------------------------------------------

    def _tool(self, stage: str, args: list[str]) -> None:
        run_tool(stage, [osp.join(REPO, 'tools', args[0]), *args[1:]],
                 osp.join(self.log_dir, f'{stage}.log'), self.threads)

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

    def _test_options(self, domain: str) -> list[str]:
        return self._data_options('test_dataloader', domain, 'test') + [
            # 64x64 images stack without padding: batches are cheaper.
            'test_dataloader.batch_size=8'
        ]

    def _train(self, stage: str, config: str, run: str, options: list[str],
               lam: float | None = None) -> None:
        work = self.path('runs', run)
        self._tool(stage, ['train.py', config, '--work-dir', work,
                           '--cfg-options', *options])
        pointer = osp.join(work, 'last_checkpoint')
        try:
            with open(pointer, encoding='utf-8') as f:
                checkpoint = f.read().strip()
        except OSError as err:
            raise DemoError(f'training in {work} finished without a '
                            f'checkpoint ({pointer} missing)') from err
        scalars = glob.glob(osp.join(work, '*', 'vis_data', 'scalars.json'))
        val = _newest_with_miou(scalars, f'validation result in {work}')
        write_json(self.result(run), {
            'checkpoint': checkpoint,
            'val_mIoU': val['mIoU'],
            'lambda': lam,
        })
