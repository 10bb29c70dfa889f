"""Robustness metrics: per condition, mean per corruption, mPC and rPC.

As in Michaelis et al. (2019) and Hendrycks & Dietterich (ICLR 2019): a
*condition* is one corruption at one severity; the *mean per corruption*
averages a metric over its severities; mPC averages those means over the
*benchmark* corruptions (held-out ones get an mPC of their own, as
mmdet's ``--final-prints-aggregate benchmark`` keeps them apart); rPC is
``100 * mPC / clean``. A condition whose main metric is NaN counts as
missing, and every summary says what it averaged over and what is
missing. Values are those of mmseg's ``IoUMetric``: percentages rounded
to two decimals.
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


def _mean(values: Iterable[float]) -> float:
    values = [v for v in values if is_finite(v)]
    return float(sum(values) / len(values)) if values else math.nan


def condition_label(corruption: str, severity: int) -> str:
    """``'fog-3'``: how reports name a condition."""
    return f'{corruption}-{severity}'


def _plural(count: int, noun: str) -> str:
    return f'{count} {noun}' + 's' * (count != 1)


def describe_set(severities: Mapping[str, Sequence[int]]) -> str:
    """What an average covers, e.g. ``'4 corruptions x severities 1-5
    (20 conditions)'`` or ``'2 corruptions, uneven severities (...)'``."""
    if not severities:
        return 'no condition'
    what = _plural(len(severities), 'corruption')
    conditions = '(' + _plural(sum(map(len, severities.values())),
                               'condition') + ')'
    distinct = {tuple(sorted(levels)) for levels in severities.values()}
    if len(distinct) > 1:
        return f'{what}, uneven severities {conditions}'
    levels = list(distinct.pop())
    text = f'{levels[0]}-{levels[-1]}' if len(levels) > 2 and levels == list(
        range(levels[0], levels[-1] + 1)) else ', '.join(map(str, levels))
    noun = 'severities' if len(levels) != 1 else 'severity'
    return f'{what} x {noun} {text} {conditions}'


def summarize(clean: Mapping[str, float] | None,
              conditions: Iterable[Mapping],
              metrics: Sequence[str] = METRICS,
              expected: Iterable[tuple[str, int]] | None = None) -> dict:
    """Aggregate per-condition results.

    Args:
        clean (Mapping[str, float], optional): Clean metrics, or None.
        conditions (Iterable[Mapping]): One mapping per condition with keys
            ``'corruption'``, ``'severity'`` and the metric names.
        metrics (Sequence[str]): Metrics to aggregate, main metric first.
            Defaults to :data:`METRICS`.
        expected (Iterable[tuple], optional): The ``(corruption,
            severity)`` pairs asked for; those not evaluated (or NaN) are
            listed as missing. Defaults to None.

    Returns:
        dict: ``per_corruption`` ({corruption: {metric: mean over its
        severities}}), ``severities`` ({corruption: severities with a
        finite main metric}), ``mPC`` and ``rPC`` ({metric: value}, over
        the benchmark corruptions), ``averaged_over`` (``corruptions``,
        ``severities``, ``label``, ``missing`` labels, ``complete``), and,
        when held-out corruptions were asked for or evaluated,
        ``holdout`` with the same keys for them. An average of nothing is
        NaN.
    """
    main, grouped = metrics[0], {}
    for index, condition in enumerate(conditions):
        for field in ('corruption', 'severity'):
            if field not in condition:
                raise ValueError(
                    f'Condition {index} ({dict(condition)!r}) has no '
                    f'{field!r}; every condition needs "corruption" and '
                    '"severity"')
        grouped.setdefault(condition['corruption'], []).append(condition)
    per_corruption, severities = {}, {}
    expected = list(dict.fromkeys((c, int(s)) for c, s in expected or ()))
    missing = [condition_label(c, s) for c, s in expected]
    for corruption, rows in grouped.items():
        valid = [row for row in rows if is_finite(row.get(main))]
        for row in rows:
            label = condition_label(corruption, row['severity'])
            if is_finite(row.get(main)) and label in missing:
                missing.remove(label)
            elif not is_finite(row.get(main)) and label not in missing:
                missing.append(label)
        if valid:
            severities[corruption] = sorted(int(r['severity']) for r in valid)
            per_corruption[corruption] = {metric: _mean(
                row.get(metric, math.nan) for row in valid)
                for metric in metrics}

    def part(held_out: bool) -> dict:
        names = [c for c in per_corruption
                 if (c in HOLDOUT_CORRUPTIONS) == held_out]
        mpc = {metric: _mean(per_corruption[name][metric] for name in names)
               for metric in metrics}
        ref = clean or {}
        rpc = {m: 100. * v / ref[m] if is_finite(ref.get(m)) and ref[m] != 0
               and is_finite(v) else math.nan for m, v in mpc.items()}
        chosen = {name: severities[name] for name in names}
        own = [m for m in missing
               if (m.rsplit('-', 1)[0] in HOLDOUT_CORRUPTIONS) == held_out]
        even = len({tuple(v) for v in chosen.values()}) <= 1
        return {'mPC': mpc, 'rPC': rpc, 'averaged_over': {
            'corruptions': names, 'severities': chosen,
            'label': describe_set(chosen), 'missing': own,
            'complete': bool(names) and even and not own}}

    summary = {'per_corruption': per_corruption, 'severities': severities,
               **part(False)}
    if any(c in HOLDOUT_CORRUPTIONS
           for c in [*per_corruption, *(c for c, _ in expected)]):
        summary['holdout'] = part(True)
    return summary
