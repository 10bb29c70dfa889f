"""Robustness metrics: per condition, mean per corruption, mPC and rPC.

Following Michaelis et al., "Benchmarking Robustness in Object Detection:
Autonomous Driving when Winter is Coming" (2019) and Hendrycks &
Dietterich (ICLR 2019):

- a *condition* is one corruption at one severity;
- the *mean per corruption* averages a metric over that corruption's
  severities;
- mPC (mean performance under corruption) averages the per-corruption
  means over the corruptions;
- rPC (relative performance under corruption) is ``100 * mPC / clean``,
  in percent.

Metric values are those of mmseg's ``IoUMetric``: percentages rounded to
two decimals (``mIoU``, ``aAcc``, ``mAcc``).
"""
from __future__ import annotations

import math
from typing import Iterable, Mapping, Sequence

#: Metrics reported for every condition, main metric first.
METRICS = ('mIoU', 'aAcc', 'mAcc')

#: Name of the uncorrupted condition.
CLEAN = 'clean'


def _mean(values: Sequence[float]) -> float:
    return float(sum(values) / len(values)) if values else math.nan


def summarize(clean: Mapping[str, float] | None,
              conditions: Iterable[Mapping],
              metrics: Sequence[str] = METRICS) -> dict:
    """Aggregate per-condition results.

    Args:
        clean (Mapping[str, float], optional): Metrics on clean data, or
            None if not evaluated yet.
        conditions (Iterable[Mapping]): One mapping per condition with keys
            ``'corruption'``, ``'severity'`` and the metric names.
        metrics (Sequence[str]): Metrics to aggregate. Defaults to
            :data:`METRICS`.

    Returns:
        dict: ``{'per_corruption': {corruption: {metric: mean}},
        'severities': {corruption: [evaluated severities]},
        'mPC': {metric: value}, 'rPC': {metric: percent}}``. A metric
        missing from a condition is skipped; an average of nothing is NaN.
    """
    grouped: dict[str, list[Mapping]] = {}
    for condition in conditions:
        grouped.setdefault(condition['corruption'], []).append(condition)

    per_corruption = {}
    severities = {}
    for corruption, rows in grouped.items():
        rows = sorted(rows, key=lambda row: row['severity'])
        severities[corruption] = [row['severity'] for row in rows]
        per_corruption[corruption] = {
            metric: _mean([row[metric] for row in rows if metric in row])
            for metric in metrics
        }

    mpc = {
        metric: _mean([
            means[metric] for means in per_corruption.values()
            if not math.isnan(means[metric])
        ])
        for metric in metrics
    }
    rpc = {}
    for metric in metrics:
        reference = (clean or {}).get(metric)
        if reference is None or math.isnan(mpc[metric]) or reference == 0:
            rpc[metric] = math.nan
        else:
            rpc[metric] = 100. * mpc[metric] / reference
    return {
        'per_corruption': per_corruption,
        'severities': severities,
        'mPC': mpc,
        'rPC': rpc}
