"""Robustness metrics: per condition, mean per corruption, mPC and rPC.

Following Michaelis et al., "Benchmarking Robustness in Object Detection:
Autonomous Driving when Winter is Coming" (2019) and Hendrycks &
Dietterich (ICLR 2019):

- a *condition* is one corruption at one severity;
- the *mean per corruption* averages a metric over that corruption's
  severities;
- mPC (mean performance under corruption) averages the per-corruption
  means over the *benchmark* corruptions (the 15 of ImageNet-C; the
  held-out corruptions get an mPC of their own, as mmdet's
  ``--final-prints-aggregate benchmark`` keeps them apart);
- rPC (relative performance under corruption) is ``100 * mPC / clean``,
  in percent.

A condition whose main metric (mIoU) is NaN counts as missing. Every
summary says what it averaged over and which requested conditions are
missing, so that averages over different condition sets are never taken
for comparable.

Metric values are those of mmseg's ``IoUMetric``: percentages rounded to
two decimals (``mIoU``, ``aAcc``, ``mAcc``).
"""
from __future__ import annotations

import math
from typing import Iterable, Mapping, Sequence

from mmspd.corruptions import HOLDOUT_CORRUPTIONS

#: Metrics reported for every condition, main metric first.
METRICS = ('mIoU', 'aAcc', 'mAcc')

#: Name of the uncorrupted condition.
CLEAN = 'clean'


def is_finite(value) -> bool:
    """Whether ``value`` is a number other than NaN or infinity."""
    return isinstance(value, (int, float)) and math.isfinite(value)


def _mean(values: Sequence[float]) -> float:
    values = [v for v in values if is_finite(v)]
    return float(sum(values) / len(values)) if values else math.nan


def condition_label(corruption: str, severity: int) -> str:
    """``'fog-3'``: how reports name a condition."""
    return f'{corruption}-{severity}'


def severities_label(severities: Sequence[int]) -> str:
    """``'1-5'`` for a run of consecutive severities, else ``'1, 3, 5'``."""
    levels = sorted(severities)
    if len(levels) > 2 and levels == list(range(levels[0],
                                                levels[-1] + 1)):
        return f'{levels[0]}-{levels[-1]}'
    return ', '.join(map(str, levels))


def describe_set(severities: Mapping[str, Sequence[int]]) -> str:
    """Say what an average covers, e.g. ``'4 corruptions x severities
    1-5 (20 conditions)'``."""
    if not severities:
        return 'no condition'
    count = sum(len(levels) for levels in severities.values())
    distinct = {tuple(sorted(levels)) for levels in severities.values()}
    noun = 'corruption' if len(severities) == 1 else 'corruptions'
    conditions = f'({count} condition{"s" if count != 1 else ""})'
    if len(distinct) == 1:
        levels = next(iter(distinct))
        return (f'{len(severities)} {noun} x '
                f'severit{"ies" if len(levels) != 1 else "y"} '
                f'{severities_label(levels)} {conditions}')
    return f'{len(severities)} {noun}, uneven severities {conditions}'


def _aggregate(per_corruption: Mapping[str, Mapping[str, float]],
               names: Sequence[str], clean: Mapping[str, float] | None,
               metrics: Sequence[str]) -> tuple[dict, dict]:
    mpc = {
        metric: _mean([per_corruption[name][metric] for name in names])
        for metric in metrics
    }
    rpc = {}
    for metric in metrics:
        reference = (clean or {}).get(metric)
        if not is_finite(reference) or reference == 0 or not is_finite(
                mpc[metric]):
            rpc[metric] = math.nan
        else:
            rpc[metric] = 100. * mpc[metric] / reference
    return mpc, rpc


def summarize(clean: Mapping[str, float] | None,
              conditions: Iterable[Mapping],
              metrics: Sequence[str] = METRICS,
              expected: Iterable[tuple[str, int]] | None = None) -> dict:
    """Aggregate per-condition results.

    Args:
        clean (Mapping[str, float], optional): Metrics on clean data, or
            None if not evaluated yet.
        conditions (Iterable[Mapping]): One mapping per condition with keys
            ``'corruption'``, ``'severity'`` and the metric names.
        metrics (Sequence[str]): Metrics to aggregate, main metric first.
            Defaults to :data:`METRICS`.
        expected (Iterable[tuple], optional): The ``(corruption,
            severity)`` pairs the run was asked for; those not evaluated
            (or NaN) are listed as missing. Defaults to None: only
            uneven severities make a summary incomplete.

    Returns:
        dict: ``per_corruption`` ({corruption: {metric: mean over its
        severities}}), ``severities`` ({corruption: severities with a
        finite main metric}), ``mPC`` and ``rPC`` ({metric: value}, over
        the benchmark corruptions), ``averaged_over`` (``corruptions``,
        ``severities`` per corruption, ``label``, ``missing`` (condition
        labels), ``complete``), and, when held-out corruptions were
        evaluated, ``holdout`` with the same keys for them. An average of
        nothing is NaN.

    Raises:
        ValueError: If a condition lacks ``corruption`` or ``severity``.
    """
    main = metrics[0]
    grouped: dict[str, list[Mapping]] = {}
    for index, condition in enumerate(conditions):
        for field in ('corruption', 'severity'):
            if field not in condition:
                raise ValueError(
                    f'Condition {index} ({dict(condition)!r}) has no '
                    f'{field!r}; every condition needs "corruption" and '
                    '"severity"')
        grouped.setdefault(condition['corruption'], []).append(condition)

    per_corruption, severities, present = {}, {}, set()
    for corruption, rows in grouped.items():
        rows = [row for row in rows if is_finite(row.get(main))]
        if not rows:
            continue
        rows.sort(key=lambda row: row['severity'])
        severities[corruption] = [int(row['severity']) for row in rows]
        present.update((corruption, s) for s in severities[corruption])
        per_corruption[corruption] = {
            metric: _mean([row.get(metric, math.nan) for row in rows])
            for metric in metrics
        }

    expected = list(dict.fromkeys(
        (c, int(s)) for c, s in expected or ()))
    missing = [condition_label(c, s) for c, s in expected
               if (c, s) not in present]
    for corruption, rows in grouped.items():
        missing.extend(
            condition_label(corruption, row['severity']) for row in rows
            if not is_finite(row.get(main)) and condition_label(
                corruption, row['severity']) not in missing)

    def part(names: list[str], held_out: bool) -> dict:
        mpc, rpc = _aggregate(per_corruption, names, clean, metrics)
        chosen = {name: severities[name] for name in names}
        own_missing = [
            m for m in missing
            if (m.rsplit('-', 1)[0] in HOLDOUT_CORRUPTIONS) == held_out
        ]
        even = len({tuple(v) for v in chosen.values()}) <= 1
        return {
            'mPC': mpc, 'rPC': rpc,
            'averaged_over': {
                'corruptions': names,
                'severities': chosen,
                'label': describe_set(chosen),
                'missing': own_missing,
                'complete': bool(names) and even and not own_missing,
            }}

    benchmark = [c for c in per_corruption if c not in HOLDOUT_CORRUPTIONS]
    holdout = [c for c in per_corruption if c in HOLDOUT_CORRUPTIONS]
    summary = {'per_corruption': per_corruption, 'severities': severities}
    summary.update(part(benchmark, False))
    if holdout or any(c in HOLDOUT_CORRUPTIONS for c, _ in expected):
        summary['holdout'] = part(holdout, True)
    return summary
