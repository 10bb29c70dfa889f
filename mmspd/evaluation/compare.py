"""Side-by-side comparison of several robustness results.

Methods are rows; clean mIoU, the mean over severities of every
corruption, mPC and rPC are columns, as in the PASCAL-Context table of Tian
et al. (NeurIPS 2024); held-out corruptions follow with their own mean.
A baseline adds delta columns, mCE and relative mCE. Averages over other
conditions than the reference's are refused, or (``strict=False``)
marked, with a note that says what each covers.
"""
from __future__ import annotations

import math
from typing import Sequence

from .metrics import describe_set, is_finite
from .report import RobustnessResults

#: Marks a value averaged over other conditions than the reference's.
MISMATCH = '*'

#: Run settings that should agree between compared results; a difference
#: is noted under the table.
SETUP_KEYS = (('data', 'test data (fingerprints)'), ('images', 'test images'),
              ('seed', 'corruption seeds'), ('key', 'seed keys'))


def condition_set(result: RobustnessResults,
                  holdout: bool = False) -> dict:
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
