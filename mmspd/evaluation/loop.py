"""The corruption benchmark as an MMEngine test loop.

``test_cfg = dict(type='CorruptionTestLoop')`` makes mmseg's
``tools/test.py`` and ``dist_test.sh`` test the checkpoint on clean data,
then on every corruption at every severity, each with a dataloader from
``runner.build_dataloader``. After each condition the main process writes
``robustness.{json,csv,md,png}`` into the work dir; a later run there
skips the conditions already evaluated, if the checkpoint contents,
setup, data, seed and software are the same.
"""
from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import os.path as osp
import time
from typing import Any, Sequence

import numpy as np
from mmengine.dist import (
    broadcast_object_list,
    get_world_size,
    is_main_process,
)
from mmengine.hooks import Hook
from mmengine.registry import LOOPS
from mmengine.runner import TestLoop

from mmspd.corruptions import check_key
from mmspd.hooks import ShowSamplesHook

from .conditions import (
    add_corruption,
    file_sha256,
    fingerprint_test_setup,
    now,
    plan_conditions,
    scan_test_data,
    versions,
    work_dir_lock,
)
from .metrics import CLEAN, condition_label, is_finite
from .report import OUTPUT_FILES, RobustnessResults

#: Metadata that must match for a work dir's results to be reused.
RESUME_KEYS = ('checkpoint_sha256', 'test_setup', 'data', 'seed', 'key',
               'versions')


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True) if isinstance(
        value, dict) else repr(value)
    return text if len(text) <= 60 else text[:57] + '...'


def load_for_resume(path: str, meta: dict[str, Any]) -> RobustnessResults:
    """The results in ``path`` (a work dir's ``robustness.json``; empty if
    there is none) with this run's ``meta`` merged in; ValueError if they
    differ in any of :data:`RESUME_KEYS` (nothing is overwritten)."""
    if not osp.exists(path):
        return RobustnessResults(meta)
    results = RobustnessResults.load(path)
    differ = []
    for name in RESUME_KEYS:
        there, here = results.meta.get(name), meta.get(name)
        if there == here:
            continue
        if isinstance(there, dict) and isinstance(here, dict):
            changed = sorted(k for k in set(there) | set(here)
                             if there.get(k) != here.get(k))
            differ.append(f'{name}: ' + ', '.join(
                f'{k} {there.get(k)} there, {here.get(k)} now'
                for k in changed))
        else:
            differ.append(f'{name}: {_short(there)} there, '
                          f'{_short(here)} now')
    if differ:
        raise ValueError(
            f'{path} holds results of a different run ({"; ".join(differ)}'
            '); mixing them would report numbers of two setups. Use another '
            '--work-dir, or --overwrite to discard them and start over.')
    old = results.meta
    results.meta = {
        **old, **meta, 'started': old.get('started', meta.get('started')),
        'severities': sorted({*old.get('severities', []),
                              *meta.get('severities', [])}),
        **{name: list(dict.fromkeys([*old.get(name, []),  # every run's
                                     *meta.get(name, [])]))
           for name in ('corruptions', 'requested')}}
    return results


def _main_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """Numeric metrics keyed without an evaluator prefix (``'x/mIoU'``)."""
    values = {}
    for name, value in metrics.items():
        if isinstance(value, np.floating) and value.dtype.itemsize < 8:
            # IoUMetric's float32 percentages: keep the decimals it rounded
            # to (12.34), not their float64 expansion (12.340000152...).
            value = str(value)
        try:
            values[name.split('/')[-1]] = float(value)
        except (TypeError, ValueError):
            continue
    if 'mIoU' not in values:
        raise ValueError(
            'The test evaluator reported no mIoU (got '
            f'{", ".join(metrics) or "nothing"}); use '
            "test_evaluator=dict(type='IoUMetric', iou_metrics=['mIoU'])")
    return values


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    return (f'{hours}h{rest // 60:02d}m' if hours else
            f'{rest // 60}m{rest % 60:02d}s')


class _CheckpointCheck(Hook):
    """Refuses a checkpoint that fills none of the model's tensors (one of
    another model would be tested with random weights)."""

    priority = 'VERY_LOW'

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get('state_dict', checkpoint) if isinstance(
            checkpoint, dict) else None
        if not isinstance(state, dict):
            raise ValueError(  # noqa: TRY004  a bad file, not a bad call
                'The checkpoint holds no state dict')
        own = getattr(runner.model, 'module', runner.model).state_dict()
        matched = 0
        for name, value in state.items():
            # Keys as MMEngine loads them: without a DDP 'module.' prefix.
            mine = own.get(name[7:] if name.startswith('module.') else name)
            matched += mine is not None and tuple(mine.shape) == tuple(
                getattr(value, 'shape', ()))
        if matched == 0:
            sample = ', '.join(list(state)[:3]) or 'none'
            raise ValueError(
                f'checkpoint {runner.cfg.get("load_from")!r} fills none '
                f'of the model\'s {len(own)} tensors (its {len(state)} '
                f'keys, e.g. {sample}, match no parameter name and shape); '
                'it is for another model or config')
        runner.logger.info(f'Loaded {matched} of the model\'s {len(own)} '
                           'tensors from the checkpoint')


@LOOPS.register_module()
class CorruptionTestLoop(TestLoop):
    """Test on clean data, then on every corruption at every severity.

    The condition being tested is :attr:`condition`, its dataloader
    :attr:`dataloader`; after :meth:`run`, :attr:`results` holds all
    results of the work dir (main process).

    Args:
        runner (Runner): The runner; its config's ``load_from`` (the
            ``CHECKPOINT`` of ``tools/test.py``) is the model tested.
        dataloader (dict): The clean test dataloader config.
        evaluator (dict or list or Evaluator): Must report ``mIoU``.
        corruptions (Sequence[str]): Corruption and/or group names.
            Defaults to ``('default', )``: gaussian_noise, defocus_blur,
            fog, brightness.
        severities (Sequence[int]): 1 to 5 (0 means clean, always
            tested). Defaults to ``(1, 2, 3, 4, 5)``.
        seed (int): Corruption seed; each image is seeded from it, its
            path, the corruption and the severity. Defaults to 0.
        key (str): What of an image path seeds it: ``'relative'`` (to the
            dataset's ``data_root``), ``'name'`` or ``'path'``. Defaults
            to ``'relative'``.
        overwrite (bool): Discard results already in the work dir instead
            of resuming. Defaults to False.
        show_dir (str, optional): Save the first ``show_num`` images of
            every condition under ``<show_dir>/<condition>/``. Defaults
            to None.
        show_num (int): Images per condition. Defaults to 3.
        fp16 (bool): As for ``TestLoop``. Defaults to False.
    """

    def __init__(self, runner, dataloader: dict, evaluator,
                 corruptions: Sequence[str] = ('default', ),
                 severities: Sequence[int] = (1, 2, 3, 4, 5),
                 seed: int = 0, key: str = 'relative',
                 overwrite: bool = False, show_dir: str | None = None,
                 show_num: int = 3, fp16: bool = False) -> None:
        if not isinstance(dataloader, dict):
            raise TypeError('CorruptionTestLoop builds a dataloader per '
                            'condition: test_dataloader must be a config '
                            f'dict, not {type(dataloader).__name__}')
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f'Invalid seed {seed!r}; expected an integer')
        self.seed, self.key, self.overwrite = seed, check_key(key), overwrite
        self.conditions = plan_conditions(corruptions, severities)
        checkpoint = runner.cfg.get('load_from')
        if not checkpoint:
            raise ValueError(
                'CorruptionTestLoop tests a checkpoint, and none is given: '
                'pass it to tools/test.py (CONFIG CHECKPOINT) or set '
                'load_from')
        cfg, main = runner.cfg, is_main_process()
        if show_dir and main:
            os.makedirs(show_dir, exist_ok=True)  # fails before any work
        self._clean_cfg = dict(copy.deepcopy(dataloader),
                               persistent_workers=False)
        super().__init__(runner, self._clean_cfg, evaluator, fp16=fp16)
        self._clean_loader, self.condition = self.dataloader, CLEAN
        data = scan_test_data(self.dataloader.dataset, fingerprint=main)
        self.results: RobustnessResults | None = None
        corrupted = self.conditions[1:]
        self.meta = {
            'config': osp.abspath(cfg.filename) if cfg.filename else None,
            'checkpoint': checkpoint if '://' in str(checkpoint) else
            osp.abspath(checkpoint),
            'test_setup': fingerprint_test_setup(cfg),
            'images': data['images'],
            'corruptions': list(dict.fromkeys(c for c, _ in corrupted)),
            'severities': sorted({s for _, s in corrupted}),
            'requested': [condition_label(*c) for c in corrupted],
            'seed': seed, 'key': key, 'world_size': get_world_size(),
            'started': now()}
        if main:
            self.meta.update(checkpoint_sha256=file_sha256(checkpoint),
                             data=data['fingerprint'], versions=versions())
        runner.register_hook(_CheckpointCheck())
        if show_dir:
            runner.register_hook(ShowSamplesHook(show_dir, show_num))

    def run(self) -> dict:
        """Test every condition not yet in the work dir; return the clean
        metrics (``'clean/mIoU'``, ...), mPC and rPC (``'mPC/mIoU'``, ...;
        main process)."""
        work_dir = self.runner.work_dir
        if not is_main_process():
            self._test(self._share([]), work_dir)
            return {}
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(work_dir_lock(work_dir))
                path = osp.join(work_dir, OUTPUT_FILES['json'])
                self.results = RobustnessResults(self.meta) if \
                    self.overwrite else load_for_resume(path, self.meta)
            except Exception as error:  # noqa: BLE001  re-raised below
                self._share([], error)  # raises it on every rank
            self._test(self._share([c for c in self.conditions
                                    if not self.results.has(*c)]),
                       work_dir)
        summary = self.results.summary()
        over = summary['averaged_over']
        clean = (self.results.clean or {}).get('mIoU', math.nan)
        self.runner.logger.info(
            f'clean mIoU {clean:.2f}, mPC {summary["mPC"]["mIoU"]:.2f} over '
            f'{over["label"]}, rPC {summary["rPC"]["mIoU"]:.2f} %; reports '
            f'in {work_dir}')
        if over['missing']:
            self.runner.logger.warning(
                'mPC is incomplete; not evaluated or NaN: ' +
                ', '.join(over['missing']))
        return {f'{part}/{name}': value
                for part, values in (('clean', self.results.clean or {}),
                                     ('mPC', summary['mPC']),
                                     ('rPC', summary['rPC']))
                for name, value in values.items()}

    def _share(self, pending: list, error: Exception | None = None) -> list:
        """The main process's list of conditions left (or its error),
        on every rank: all ranks must test the same conditions."""
        if get_world_size() > 1:
            box = [(pending, error)]
            broadcast_object_list(box, src=0)
            pending, error = box[0]
        if error is not None:
            raise error
        return pending

    def _test(self, pending: list, work_dir: str) -> None:
        """Test this rank's share of each pending condition; the main
        process saves the results after each."""
        main = self.results is not None
        logger = self.runner.logger
        done = len(self.conditions) - len(pending)
        if done:
            logger.info(f'{done} of {len(self.conditions)} conditions '
                        f'already in {work_dir} (same checkpoint, setup, '
                        'data, seed and versions); skipping them')
        if not pending and main:
            self.results.save(work_dir)
        seconds = []
        for index, (corruption, severity) in enumerate(pending):
            self.condition = CLEAN if corruption == CLEAN else \
                condition_label(corruption, severity)
            logger.info(f'Robustness condition {done + index + 1}/'
                        f'{len(self.conditions)}: {self.condition}')
            start = time.perf_counter()
            self.dataloader = self._clean_loader if corruption == CLEAN \
                else self.runner.build_dataloader(
                    add_corruption(self._clean_cfg, corruption, severity,
                                   self.seed, self.key),
                    seed=self.runner.seed,
                    diff_rank_seed=(self.runner.cfg.get('randomness') or
                                    {}).get('diff_rank_seed', False))
            metrics = _main_metrics(super().run())
            seconds.append(time.perf_counter() - start)
            if main:
                self.results.add(corruption, severity, metrics)
                self.results.meta['updated'] = now()
                self.results.save(work_dir)
            left = len(pending) - index - 1
            eta = (f'; {left} left, ETA '
                   f'{_duration(sum(seconds) / len(seconds) * left)}'
                   if left else '; all done')
            logger.info(f'{self.condition}: ' + ', '.join(
                f'{name} {value:.2f}' for name, value in metrics.items()) +
                f' ({_duration(seconds[-1])}{eta})')
            if not is_finite(metrics['mIoU']):
                logger.warning(
                    f'{self.condition}: mIoU is NaN (no pixel with a valid '
                    'label?); stored but not counted: the summary lists it '
                    'as missing and the next run evaluates it again')
        self.dataloader, self.condition = self._clean_loader, CLEAN
