"""What a robustness run evaluates: its conditions and their test data."""
from __future__ import annotations

import copy
import hashlib
import json
from typing import Any, Optional, Sequence, Tuple

from mmspd.corruptions import check_severity, resolve_corruptions

from .metrics import CLEAN

#: Image loading transforms after which ``ImageCorruption`` is inserted.
LOADING_TRANSFORMS = ('LoadImageFromFile', )

#: ``test_cfg`` keys of ``CorruptionTestLoop`` that choose conditions or
#: outputs, not how a condition is tested; left out of the fingerprint.
LOOP_KEYS = ('type', 'corruptions', 'severities', 'seed', 'key',
             'overwrite', 'show_dir', 'show_num')

Condition = Tuple[str, Optional[int]]


def plan_conditions(corruptions: Sequence[str],
                    severities: Sequence[int]) -> list[Condition]:
    """``('clean', None)``, then ``(corruption, severity)`` for every
    corruption (names and/or groups) at every severity (1 to 5; 0, clean,
    is always evaluated)."""
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
    """A copy of a dataloader config whose images are corrupted: an
    ``ImageCorruption`` step right after each ``LoadImageFromFile`` of the
    dataset's pipeline (of every dataset it wraps), with ``root`` set to
    that dataset's ``data_root``, and no persistent workers.

    Args:
        dataloader_cfg (dict): A test dataloader config (left unchanged).
        corruption (str): Corruption name.
        severity (int): 1 to 5.
        seed (int): Global seed. Defaults to 0.
        key (str): See ``ImageCorruption``. Defaults to ``'relative'``.
    """
    cfg = copy.deepcopy(dataloader_cfg)
    inserted = 0
    for dataset in _datasets_with_pipelines(cfg.get('dataset')):
        pipeline = dataset['pipeline']
        for index in reversed(range(len(pipeline))):
            if isinstance(pipeline[index], dict) and _type_name(
                    pipeline[index].get('type')) in LOADING_TRANSFORMS:
                pipeline.insert(index + 1, dict(
                    type='ImageCorruption', corruption=corruption,
                    severity=severity, seed=seed, key=key,
                    root=dataset.get('data_root') or None))
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
    """Fingerprint of what determines test metrics in a config: the model,
    test dataloader, evaluator and test loop, without worker settings and
    the benchmark's own ``test_cfg`` keys (it counts as the plain
    ``TestLoop`` it extends), which do not change a condition's metrics.
    """
    parts = {name: copy.deepcopy(cfg.get(name)) for name in (
        'model', 'test_dataloader', 'test_evaluator', 'test_cfg')}
    if isinstance(parts['test_dataloader'], dict):
        for name in ('num_workers', 'persistent_workers', 'pin_memory',
                     'prefetch_factor'):
            parts['test_dataloader'].pop(name, None)
    if isinstance(parts['test_cfg'], dict) and _type_name(
            parts['test_cfg'].get('type')) == 'CorruptionTestLoop':
        parts['test_cfg'] = dict(
            {k: v for k, v in parts['test_cfg'].items()
             if k not in LOOP_KEYS}, type='TestLoop')
    text = json.dumps(parts, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode('utf-8')).hexdigest()[:16]
