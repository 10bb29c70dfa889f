"""Evaluate one model on clean and corrupted test data, resumably.

:func:`evaluate_robustness` drives an already built MMEngine ``Runner``:
the model is built and its checkpoint loaded once, and for every condition
only the test dataloader is rebuilt, with an ``ImageCorruption`` step
inserted after image loading. Results are written after every condition;
a later call with the same work dir skips the conditions already there.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os.path as osp
from typing import Any, Optional, Sequence, Tuple

import numpy as np
from mmengine.dist import is_main_process

from mmspd.corruptions import check_severity, image_key, resolve_corruptions
from mmspd.utils.launch import type_name

from .metrics import CLEAN
from .report import OUTPUT_FILES, RobustnessResults

#: Image loading transforms after which ``ImageCorruption`` is inserted.
LOADING_TRANSFORMS = ('LoadImageFromFile', )

#: Metadata that must match for a work dir's results to be reused.
RESUME_KEYS = ('checkpoint', 'seed', 'key', 'test_setup')

Condition = Tuple[str, Optional[int]]


def plan_conditions(corruptions: Sequence[str],
                    severities: Sequence[int]) -> list[Condition]:
    """Clean first, then every corruption at every severity.

    Args:
        corruptions (Sequence[str]): Corruption and/or group names.
        severities (Sequence[int]): Severities, each 1 to 5.

    Returns:
        list[tuple]: ``('clean', None)`` then ``(corruption, severity)``.
    """
    names = resolve_corruptions(corruptions)
    if not severities:
        raise ValueError('No severity given; accepted: 1, 2, 3, 4, 5')
    levels = sorted({check_severity(s) for s in severities})
    return [(CLEAN, None)] + [(name, level) for name in names
                              for level in levels]


def _pipelines(dataset: Any) -> list[list]:
    """Every pipeline list in a dataset config, wrappers included."""
    if not isinstance(dataset, dict):
        return []
    found = []
    if isinstance(dataset.get('pipeline'), list):
        found.append(dataset['pipeline'])
    for sub in dataset.get('datasets') or []:
        found += _pipelines(sub)
    if isinstance(dataset.get('dataset'), dict):
        found += _pipelines(dataset['dataset'])
    return found


def add_corruption(dataloader_cfg: dict,
                   corruption: str,
                   severity: int,
                   seed: int = 0,
                   key: str = 'name') -> dict:
    """A copy of a dataloader config whose images are corrupted.

    An ``ImageCorruption`` step is inserted right after each
    ``LoadImageFromFile`` of the dataset's pipeline (of every dataset, when
    the config wraps several).

    Args:
        dataloader_cfg (dict): A test dataloader config.
        corruption (str): Corruption name.
        severity (int): 1 to 5.
        seed (int): Global seed. Defaults to 0.
        key (str): See ``ImageCorruption``. Defaults to ``'name'``.

    Returns:
        dict: The modified copy; ``dataloader_cfg`` is left unchanged.
    """
    cfg = copy.deepcopy(dataloader_cfg)
    step = {
        'type': 'ImageCorruption',
        'corruption': corruption,
        'severity': severity,
        'seed': seed,
        'key': key}
    inserted = 0
    for pipeline in _pipelines(cfg.get('dataset')):
        for index in reversed(range(len(pipeline))):
            transform = pipeline[index]
            if isinstance(transform, dict) and type_name(
                    transform.get('type')).split('.')[-1] in \
                    LOADING_TRANSFORMS:
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
    dir's results are not reused for different data or a different model.
    Worker settings, which do not change the metrics, are left out.
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


def load_for_resume(path: str, meta: dict[str, Any]) -> RobustnessResults:
    """Results of an earlier run to continue, checked against ``meta``.

    Args:
        path (str): ``robustness.json`` of the work dir.
        meta (dict): This run's metadata.

    Returns:
        RobustnessResults: The earlier results (with ``meta`` updated), or
        empty results when ``path`` does not exist.

    Raises:
        ValueError: If the earlier run used another checkpoint, seed, key
            or test setup; nothing is overwritten.
    """
    if not osp.exists(path):
        return RobustnessResults(meta)
    results = RobustnessResults.load(path)
    differ = [
        f'{name}: {results.meta.get(name)!r} there, {meta.get(name)!r} now'
        for name in RESUME_KEYS if results.meta.get(name) != meta.get(name)
    ]
    if differ:
        raise ValueError(
            f'{path} holds results of a different run ({"; ".join(differ)}'
            '). Use another --work-dir, or delete the file to start over.')
    requested = list(results.meta.get('corruptions', []))
    requested += [c for c in meta.get('corruptions', [])
                  if c not in requested]
    severities = sorted(
        set(results.meta.get('severities', [])) |
        set(meta.get('severities', [])))
    results.meta.update(meta, corruptions=requested, severities=severities)
    return results


def evaluate_robustness(runner,
                        conditions: Sequence[Condition],
                        work_dir: str,
                        meta: dict[str, Any] | None = None,
                        seed: int = 0,
                        key: str = 'name') -> RobustnessResults:
    """Evaluate ``runner``'s model on every condition not yet in work_dir.

    Every rank evaluates its share of each condition; the main process
    writes ``robustness.{json,csv,md,png}`` into ``work_dir`` after each
    condition.

    Args:
        runner (mmengine.runner.Runner): Built runner with ``load_from``
            set, ``test_dataloader``, ``test_cfg`` and ``test_evaluator``.
        conditions (Sequence[tuple]): From :func:`plan_conditions`.
        work_dir (str): Where results are read from and written to.
        meta (dict, optional): Run metadata stored with the results;
            :data:`RESUME_KEYS` must match an earlier run's. Defaults to
            None.
        seed (int): Corruption seed. Defaults to 0.
        key (str): See ``ImageCorruption``. Defaults to ``'name'``.

    Returns:
        RobustnessResults: All results in the work dir.
    """
    image_key('', key)  # validates key before any work
    meta = dict(meta or {}, seed=seed, key=key)
    json_path = osp.join(work_dir, OUTPUT_FILES['json'])
    results = load_for_resume(json_path, meta)
    logger = runner.logger

    pending = [c for c in conditions if not results.has(*c)]
    done = len(conditions) - len(pending)
    if done:
        logger.info(f'{done} of {len(conditions)} conditions already in '
                    f'{json_path}; skipping them')
    if pending:
        clean_dataloader = copy.deepcopy(runner._test_dataloader)
        loop_cfg = runner._test_loop
        if not isinstance(loop_cfg, dict):
            raise TypeError('evaluate_robustness needs a runner whose test '
                            'loop is not built yet (test_cfg as a dict)')
        runner.call_hook('before_run')
        runner.load_or_resume()
        for index, (corruption, severity) in enumerate(pending):
            label = CLEAN if corruption == CLEAN else \
                f'{corruption} severity {severity}'
            logger.info(f'Robustness condition {done + index + 1}/'
                        f'{len(conditions)}: {label}')
            if corruption == CLEAN:
                runner._test_dataloader = copy.deepcopy(clean_dataloader)
                # One pass, as for the corrupted copies: no lingering workers.
                runner._test_dataloader['persistent_workers'] = False
            else:
                runner._test_dataloader = add_corruption(
                    clean_dataloader, corruption, severity, seed, key)
            loop = runner.build_test_loop(copy.deepcopy(loop_cfg))
            runner._test_loop = loop
            metrics = _main_metrics(loop.run())
            results.add(corruption, severity, metrics)
            if is_main_process():
                results.save(work_dir)
            logger.info(f'{label}: ' + ', '.join(
                f'{name} {value:.2f}' for name, value in metrics.items()))
        runner._test_loop = loop_cfg
        runner._test_dataloader = clean_dataloader
        runner.call_hook('after_run')
    elif is_main_process():
        results.save(work_dir)
    summary = results.summary()
    logger.info(
        f'clean mIoU {(results.clean or {}).get("mIoU", float("nan")):.2f}, '
        f'mPC {summary["mPC"]["mIoU"]:.2f}, '
        f'rPC {summary["rPC"]["mIoU"]:.2f} %; reports in {work_dir}')
    return results
