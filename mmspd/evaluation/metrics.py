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

:func:`comparison_table` puts several results side by side: methods are
rows; clean mIoU, the mean over severities of every corruption, mPC and
rPC are columns, as in the PASCAL-Context table of Tian et al. (NeurIPS
2024); held-out corruptions follow with their own mean. A baseline adds
delta columns, mCE and relative mCE. Averages over other conditions than
the reference's are refused, or (``strict=False``) marked, with a note
that says what each covers.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

from mmspd.corruptions import HOLDOUT_CORRUPTIONS

if TYPE_CHECKING:
    from .report import RobustnessResults

#: Metrics reported for every condition, main metric first.
METRICS = ('mIoU', 'aAcc', 'mAcc')

#: Name of the uncorrupted condition.
CLEAN = 'clean'

#: Marks a value averaged over other conditions than the reference's.
MISMATCH = '*'

#: Run settings that should agree between compared results; a difference
#: is noted under the table.
SETUP_KEYS = (('data', 'test data (fingerprints)'), ('images', 'test images'),
              ('seed', 'corruption seeds'), ('key', 'seed keys'))


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


def condition_set(result: RobustnessResults, holdout: bool = False) -> dict:
    """Corruption -> severities with a finite mIoU, as mPC (``holdout``:
    the held-out mPC) averages them."""
    summary = result.summary()
    part = summary.get('holdout', {}) if holdout else summary
    return {c: tuple(s) for c, s in part.get('averaged_over', {}).get(
        'severities', {}).items()}


def _set_difference(reference: dict, other: dict) -> str:
    return '; '.join(
        f'{name}: severities {list(other.get(name) or [])} vs '
        f'{list(reference.get(name) or [])}'
        for name in dict.fromkeys([*reference, *other])
        if reference.get(name) != other.get(name))


def corruption_errors(result: RobustnessResults,
                      baseline: RobustnessResults,
                      metric: str = 'mIoU') -> tuple[float, float]:
    """mCE and relative mCE of ``result``, normalised to ``baseline``.

    With the error ``E = 100 - metric``, over each benchmark corruption
    ``c`` both results have at the same severities ``s``:
    ``CE_c = sum_s E_{s,c} / sum_s E^base_{s,c}`` and ``relCE_c =
    sum_s (E_{s,c} - E_clean) / sum_s (E^base_{s,c} - E^base_clean)``;
    mCE and relative mCE are ``100 *`` their means (Hendrycks & Dietterich,
    ICLR 2019, with the baseline in AlexNet's place; below 100 is better).

    Returns:
        tuple[float, float]: ``(mCE, relative mCE)``, NaN when undefined
        (e.g. a baseline sum of 0).
    """
    ours, theirs = condition_set(result), condition_set(baseline)
    ce, rel = [], []
    for name in [c for c in ours if ours[c] == theirs.get(c)]:
        sums = []
        for run in (result, baseline):
            errors = [100. - run.get(name, s).get(metric, math.nan)
                      for s in ours[name]]
            clean = 100. - (run.clean or {}).get(metric, math.nan)
            sums.append((sum(errors), sum(e - clean for e in errors)))
        (error, degradation), (base, base_degradation) = sums
        ce.append(error / base if base else math.nan)
        rel.append(degradation / base_degradation if base_degradation
                   else math.nan)

    def mean(values):
        if not values or not all(is_finite(v) for v in values):
            return math.nan
        return 100. * sum(values) / len(values)

    return mean(ce), mean(rel)


def comparison_table(results: Sequence[RobustnessResults],
                     names: Sequence[str], metric: str = 'mIoU',
                     baseline: int | None = None, strict: bool = True,
                     paper: bool = False) -> dict:
    """Rows of the comparison of ``results`` named ``names``.

    Args:
        metric (str): Metric to compare. Defaults to ``'mIoU'``.
        baseline (int, optional): Index of the baseline result: adds
            ``Δ`` columns (method minus baseline) for clean, mean and rPC
            (not with ``paper``), then mCE and relative mCE, marked with
            :data:`MISMATCH` where they leave out corruptions evaluated at
            other severities than the baseline's. Defaults to None.
        strict (bool): Refuse results whose mPC covers other conditions
            than the reference's (the baseline, else the first result);
            when False, mark them with :data:`MISMATCH`. Defaults to True.
        paper (bool): The paper's columns: Method, Clean, the benchmark
            corruptions and Mean (then the baseline's). Defaults to False.

    Returns:
        dict: ``columns``, ``rows`` (``[name, value, ...]``, None where a
        result lacks the value), ``marks`` (``{(row, column): mark}``)
        and ``notes`` (lines to print under the table).
    """
    if len(names) != len(results):
        raise ValueError(f'Got {len(names)} names for {len(results)} '
                         'result files; give one name per file')
    reference = baseline or 0
    sets = {held: [condition_set(r, held) for r in results]
            for held in (False, True)}
    notes, mismatched = [], {False: [], True: []}
    for held, what in ((False, 'mPC'), (True, 'held-out mPC')):
        ours = sets[held][reference]
        for index, current in enumerate(sets[held]):
            difference = _set_difference(ours, current)
            if difference:
                mismatched[held].append(index)
                notes.append(f'{MISMATCH} {names[index]}: {what} over '
                             f'{describe_set(current)}, not the '
                             f'{describe_set(ours)} of {names[reference]} '
                             f'({difference})')
    if notes and strict:
        raise ValueError(
            'The results average over different conditions, so their mPC '
            'are not comparable: ' + ' | '.join(n[2:] for n in notes) +
            '. Evaluate the missing conditions (the same --corruptions and '
            '--severities for every run), or pass --allow-mismatch to '
            'compare anyway with the values marked')
    for key, what in SETUP_KEYS:
        values = [r.meta.get(key) for r in results]
        if len({repr(v) for v in values}) > 1:
            notes.append(f'{what} differ: ' + ', '.join(
                f'{name} {value}' for name, value in zip(names, values)))
    summaries = [r.summary() for r in results]
    for name, summary in zip(names, summaries):
        missing = summary['averaged_over']['missing'] + summary.get(
            'holdout', {}).get('averaged_over', {}).get('missing', [])
        if missing:
            notes.append(f'{name}: incomplete, not evaluated or NaN: '
                         f'{", ".join(missing)}')
    corruptions, held_out = (list(dict.fromkeys(
        c for current in sets[held] for c in current))
        for held in (False, True))
    columns = ['Method', 'Clean', *corruptions, 'Mean']
    if paper and held_out:
        notes.append('held-out corruptions (' + ', '.join(held_out) +
                     ') are not in the paper-shaped table')
    if not paper:
        columns += ['rPC (%)', *held_out] + ['Held-out mean'] * bool(held_out)
    rows, marks = [], {}
    for index, (name, summary) in enumerate(zip(names, summaries)):
        values = [(results[index].clean or {}).get(metric)]
        parts = [(False, corruptions, summary['mPC'].get(metric))]
        if held_out and not paper:
            parts.append((True, held_out, summary.get('holdout', {}).get(
                'mPC', {}).get(metric)))
        for held, part, mean in parts:
            mine, ours = sets[held][index], sets[held][reference]
            for corruption in part:
                values.append(summary['per_corruption'].get(
                    corruption, {}).get(metric))
                if corruption in mine and \
                        mine[corruption] != ours.get(corruption):
                    marks[(index, len(values))] = MISMATCH
            values.append(mean)
            if index in mismatched[held]:
                marks[(index, len(values))] = MISMATCH
            if not (held or paper):
                values.append(summary['rPC'].get(metric))
        rows.append([name, *values])
    if baseline is not None:  # deltas, mCE and relative mCE
        compared = ['Clean', 'Mean'] + ([] if paper else ['rPC (%)'])
        at = [columns.index(name) for name in compared]
        columns += [f'Δ {name.split()[0]}' for name in compared]
        columns += ['mCE (%)', 'rel. mCE (%)']
        theirs = condition_set(results[baseline])
        for index, row in enumerate(rows):
            row.extend(None if not (is_finite(row[i]) and is_finite(
                rows[baseline][i])) else row[i] - rows[baseline][i]
                for i in at)
            row.extend(corruption_errors(results[index], results[baseline],
                                         metric))
            ours = condition_set(results[index])
            left_out = _set_difference(theirs, ours)
            if left_out:  # mCE leaves out other severities than theirs
                marks[(index, len(row) - 2)] = \
                    marks[(index, len(row) - 1)] = MISMATCH
                shared = [c for c in ours if ours[c] == theirs.get(c)]
                notes.append(
                    f'{MISMATCH} {names[index]}: mCE and rel. mCE over '
                    f'{len(shared)} corruption{"s" * (len(shared) != 1)} '
                    f'evaluated at the same severities as {names[baseline]}'
                    f'; left out: {left_out}')
    return {'columns': columns, 'rows': rows, 'marks': marks,
            'notes': notes}
