"""Evaluate one model on clean and corrupted test data, resumably.

:func:`evaluate_robustness` drives an already built MMEngine ``Runner``:
the model is built and its checkpoint loaded once, and for every condition
only the test dataloader is rebuilt, with an ``ImageCorruption`` step
inserted after image loading. Results are written after every condition;
a later call with the same work dir skips the conditions already there,
if :func:`load_for_resume` finds that they were computed from the same
checkpoint contents, config, data, seed and software.
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
import os.path as osp
import time
from typing import Any, Optional, Sequence, Tuple

import numpy as np
from mmengine.dist import (broadcast_object_list, get_world_size,
                           is_main_process)

from mmspd.corruptions import check_key, check_severity, resolve_corruptions

from .checks import load_weights
from .metrics import CLEAN, condition_label, is_finite
from .report import OUTPUT_FILES, RobustnessResults
from .runtime import now

#: Image loading transforms after which ``ImageCorruption`` is inserted.
LOADING_TRANSFORMS = ('LoadImageFromFile', )

#: Metadata that must match for a work dir's results to be reused.
RESUME_KEYS = ('checkpoint_sha256', 'test_setup', 'data', 'seed', 'key',
               'versions')

Condition = Tuple[str, Optional[int]]


def plan_conditions(corruptions: Sequence[str],
                    severities: Sequence[int]) -> list[Condition]:
    """Clean first, then every corruption at every severity.

    Args:
        corruptions (Sequence[str]): Corruption and/or group names.
        severities (Sequence[int]): Severities, each 0 (clean, which is
            always evaluated) to 5.

    Returns:
        list[tuple]: ``('clean', None)`` then ``(corruption, severity)``.
    """
    names = resolve_corruptions(corruptions)
    levels = set()
    for severity in severities:
        if severity == 0 and not isinstance(severity, bool):
            continue
        try:
            levels.add(check_severity(severity))
        except ValueError:
            raise ValueError(f'Invalid severity {severity!r}; accepted: '
                             '0 (clean), 1, 2, 3, 4, 5') from None
    if not levels:
        raise ValueError('No severity from 1 to 5 given (0, clean, is '
                         'always evaluated); accepted: 1, 2, 3, 4, 5')
    return [(CLEAN, None)] + [(name, level) for name in names
                              for level in sorted(levels)]


def _type_name(type_: Any) -> str:
    name = type_ if isinstance(type_, str) else getattr(
        type_, '__name__', str(type_))
    return name.split('.')[-1]


def _datasets_with_pipelines(dataset: Any) -> list[dict]:
    """Every dataset config with a pipeline list, wrappers included."""
    if not isinstance(dataset, dict):
        return []
    found = [dataset] if isinstance(dataset.get('pipeline'), list) else []
    for sub in dataset.get('datasets') or []:
        found += _datasets_with_pipelines(sub)
    if isinstance(dataset.get('dataset'), dict):
        found += _datasets_with_pipelines(dataset['dataset'])
    return found


def add_corruption(dataloader_cfg: dict,
                   corruption: str,
                   severity: int,
                   seed: int = 0,
                   key: str = 'relative') -> dict:
    """A copy of a dataloader config whose images are corrupted.

    An ``ImageCorruption`` step is inserted right after each
    ``LoadImageFromFile`` of the dataset's pipeline (of every dataset, when
    the config wraps several), with ``root`` set to that dataset's
    ``data_root``.

    Args:
        dataloader_cfg (dict): A test dataloader config.
        corruption (str): Corruption name.
        severity (int): 1 to 5.
        seed (int): Global seed. Defaults to 0.
        key (str): See ``ImageCorruption``. Defaults to ``'relative'``.

    Returns:
        dict: The modified copy; ``dataloader_cfg`` is left unchanged.
    """
    cfg = copy.deepcopy(dataloader_cfg)
    inserted = 0
    for dataset in _datasets_with_pipelines(cfg.get('dataset')):
        step = {
            'type': 'ImageCorruption',
            'corruption': corruption,
            'severity': severity,
            'seed': seed,
            'key': key,
            'root': dataset.get('data_root') or None}
        pipeline = dataset['pipeline']
        for index in reversed(range(len(pipeline))):
            transform = pipeline[index]
            if isinstance(transform, dict) and _type_name(
                    transform.get('type')) in LOADING_TRANSFORMS:
                pipeline.insert(index + 1, dict(step))
                inserted += 1
    if not inserted:
        raise ValueError(
            'Cannot corrupt the test data: no '
            f'{" / ".join(LOADING_TRANSFORMS)} step found in '
            'test_dataloader.dataset.pipeline; ImageCorruption must follow '
            'image loading')
    # A single pass per condition: persistent workers would only linger.
    cfg['persistent_workers'] = False
    return cfg


def fingerprint_test_setup(cfg: Any) -> str:
    """Fingerprint of what determines test metrics in a config.

    Covers the model, test dataloader, evaluator and test loop, so a work
    dir's results are not reused for a different model or setup. Worker
    settings, which do not change the metrics, are left out.
    """
    parts = {
        name: copy.deepcopy(cfg.get(name))
        for name in ('model', 'test_dataloader', 'test_evaluator',
                     'test_cfg')
    }
    if isinstance(parts['test_dataloader'], dict):
        for name in ('num_workers', 'persistent_workers', 'pin_memory',
                     'prefetch_factor'):
            parts['test_dataloader'].pop(name, None)
    text = json.dumps(parts, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode('utf-8')).hexdigest()[:16]


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


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True) if isinstance(
        value, dict) else repr(value)
    return text if len(text) <= 60 else text[:57] + '...'


def load_for_resume(path: str, meta: dict[str, Any]) -> RobustnessResults:
    """Results of an earlier run to continue, checked against ``meta``.

    Args:
        path (str): ``robustness.json`` of the work dir.
        meta (dict): This run's metadata.

    Returns:
        RobustnessResults: The earlier results (with ``meta`` updated), or
        empty results when ``path`` does not exist.

    Raises:
        ValueError: If the earlier run differs in any of
            :data:`RESUME_KEYS` (checkpoint contents, test setup, data,
            seed, seed key, versions); nothing is overwritten.
    """
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
    requested = list(results.meta.get('corruptions', []))
    requested += [c for c in meta.get('corruptions', [])
                  if c not in requested]
    severities = sorted(
        set(results.meta.get('severities', [])) |
        set(meta.get('severities', [])))
    # Each run's own conditions, not every corruption at every severity.
    conditions = list(results.meta.get('requested', []))
    conditions += [c for c in meta.get('requested', [])
                   if c not in conditions]
    started = results.meta.get('started')
    results.meta.update(meta, corruptions=requested, severities=severities,
                        requested=conditions)
    if started:
        results.meta['started'] = started
    return results


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return (f'{hours}h{rest // 60:02d}m' if hours else
            f'{rest // 60}m{rest % 60:02d}s')


def evaluate_robustness(runner,
                        conditions: Sequence[Condition],
                        work_dir: str,
                        meta: dict[str, Any] | None = None,
                        seed: int = 0,
                        key: str = 'relative',
                        results: RobustnessResults | None = None,
                        show=None) -> RobustnessResults:
    """Evaluate ``runner``'s model on every condition not yet in work_dir.

    Every rank evaluates its share of each condition; the main process
    writes ``robustness.{json,csv,md,png}`` into ``work_dir`` after each
    condition. A condition whose mIoU is NaN is stored but not counted as
    done (a warning says so): summaries list it as missing and the next run
    evaluates it again.

    Args:
        runner (mmengine.runner.Runner): Built runner with ``load_from``
            set, ``test_dataloader``, ``test_cfg`` and ``test_evaluator``.
        conditions (Sequence[tuple]): From :func:`plan_conditions`.
        work_dir (str): Where results are read from and written to.
        meta (dict, optional): Run metadata stored with the results;
            :data:`RESUME_KEYS` must match an earlier run's. Defaults to
            None.
        seed (int): Corruption seed. Defaults to 0.
        key (str): See ``ImageCorruption``. Defaults to ``'relative'``.
        results (RobustnessResults, optional): Results already loaded with
            :func:`load_for_resume` (main process). Defaults to None:
            loaded here. Only the main process reads the work dir; it
            tells the other ranks which conditions are left.
        show (ShowSamplesHook, optional): Registered hook that saves
            samples; told each condition. Defaults to None.

    Returns:
        RobustnessResults: All results in the work dir.
    """
    check_key(key)
    meta = dict(meta or {}, seed=seed, key=key)
    json_path = osp.join(work_dir, OUTPUT_FILES['json'])
    if results is None:
        results = load_for_resume(json_path, meta) if is_main_process() \
            else RobustnessResults(meta)
    logger = runner.logger

    pending = [c for c in conditions if not results.has(*c)]
    if get_world_size() > 1:
        # The main process decides what is left; every rank must run the
        # same conditions.
        box = [pending]
        broadcast_object_list(box, src=0)
        pending = box[0]
    done = len(conditions) - len(pending)
    if done:
        logger.info(f'{done} of {len(conditions)} conditions already in '
                    f'{json_path} (same checkpoint, setup, data, seed and '
                    'versions); skipping them')
    if pending:
        clean_dataloader = copy.deepcopy(runner._test_dataloader)
        loop_cfg = runner._test_loop
        if not isinstance(loop_cfg, dict):
            raise TypeError('evaluate_robustness needs a runner whose test '
                            'loop is not built yet (test_cfg as a dict)')
        runner.call_hook('before_run')
        if runner._load_from and not runner._has_loaded:
            matched, total = load_weights(runner, runner._load_from)
            logger.info(f'Loaded {matched} of the model\'s {total} tensors '
                        f'from {runner._load_from}')
        timings = []
        for index, (corruption, severity) in enumerate(pending):
            label = CLEAN if corruption == CLEAN else \
                condition_label(corruption, severity)
            logger.info(f'Robustness condition {done + index + 1}/'
                        f'{len(conditions)}: {label}')
            if corruption == CLEAN:
                runner._test_dataloader = copy.deepcopy(clean_dataloader)
                # One pass, as for the corrupted copies: no lingering workers.
                runner._test_dataloader['persistent_workers'] = False
            else:
                runner._test_dataloader = add_corruption(
                    clean_dataloader, corruption, severity, seed, key)
            if show is not None:
                show.start(label)
            start = time.perf_counter()
            loop = runner.build_test_loop(copy.deepcopy(loop_cfg))
            runner._test_loop = loop
            metrics = _main_metrics(loop.run())
            timings.append(time.perf_counter() - start)
            results.add(corruption, severity, metrics)
            results.meta['updated'] = now()
            if is_main_process():
                results.save(work_dir)
            left = len(pending) - index - 1
            per_condition = sum(timings) / len(timings)
            eta = (f'; {left} left, ETA {_duration(per_condition * left)}'
                   if left else '; all done')
            logger.info(f'{label}: ' + ', '.join(
                f'{name} {value:.2f}' for name, value in metrics.items()) +
                f' ({_duration(timings[-1])}{eta})')
            if not is_finite(metrics['mIoU']):
                logger.warning(
                    f'{label}: mIoU is NaN (no pixel with a valid label?); '
                    'stored but not counted: the summary lists it as '
                    'missing and the next run evaluates it again')
        runner._test_loop = loop_cfg
        runner._test_dataloader = clean_dataloader
        runner.call_hook('after_run')
    elif is_main_process():
        results.save(work_dir)
    summary = results.summary()
    over = summary['averaged_over']
    logger.info(
        f'clean mIoU {(results.clean or {}).get("mIoU", math.nan):.2f}, '
        f'mPC {summary["mPC"]["mIoU"]:.2f} over {over["label"]}, '
        f'rPC {summary["rPC"]["mIoU"]:.2f} %; reports in {work_dir}')
    if over['missing']:
        logger.warning('mPC is incomplete; not evaluated or NaN: ' +
                       ', '.join(over['missing']))
    return results

