"""Side-by-side comparison of several robustness results.

Methods are rows; clean mIoU, the mean mIoU over severities of every
corruption, mPC and rPC are columns, as in the PASCAL-Context table of Tian
et al. (NeurIPS 2024). Held-out corruptions, which mPC leaves out, follow
with their own mean. With a baseline, delta columns and the corruption
errors mCE and relative mCE (normalised to the baseline, see
:func:`corruption_errors`) are added.

Averages are comparable only over the same conditions: results whose
condition sets (benchmark or held-out) differ are refused, or
(``strict=False``) marked.
"""
from __future__ import annotations

import csv
import io
import math
import os
import os.path as osp
from typing import Sequence

from .metrics import describe_set, is_finite
from .report import RobustnessResults, atomic_write, fmt

#: Output files of :func:`write_comparison`, by kind.
COMPARISON_FILES = {
    'markdown': 'comparison.md',
    'csv': 'comparison.csv',
    'plot': 'comparison.png',
}

#: Marks a value averaged over other conditions than the reference's.
MISMATCH = '*'

#: Run settings that should agree between compared results; a difference
#: is noted under the table.
SETUP_KEYS = (('data', 'test data (fingerprints)'), ('images', 'test images'),
              ('seed', 'corruption seeds'), ('key', 'seed keys'))


def default_name(results: RobustnessResults, path: str) -> str:
    """A method name for a result: its config's stem, else its folder."""
    config = results.meta.get('config')
    if config:
        return osp.splitext(osp.basename(str(config)))[0]
    return osp.basename(osp.dirname(osp.abspath(path))) or path


def unique_names(names: Sequence[str], paths: Sequence[str]) -> list[str]:
    """``names`` with duplicates told apart by their result's folder.

    Two runs of one config get the same default name; the folder holding
    each ``robustness.json`` (its work dir) is added, then a number if
    that is not enough.
    """
    given = list(names)
    names = [
        f'{name} ({osp.basename(osp.dirname(osp.abspath(path)))})'
        if given.count(name) > 1 else name
        for name, path in zip(given, paths)
    ]
    seen: dict[str, int] = {}
    numbered = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        numbered.append(f'{name} #{seen[name]}' if names.count(name) > 1
                        else name)
    return numbered


def condition_set(result: RobustnessResults,
                  holdout: bool = False) -> dict:
    """Corruption -> severities with a finite mIoU, as mPC (``holdout``:
    the held-out mPC) averages them."""
    summary = result.summary()
    part = summary.get('holdout', {}) if holdout else summary
    over = part.get('averaged_over', {})
    return {c: tuple(s) for c, s in over.get('severities', {}).items()}


def _check_sets(sets: list[dict], names: Sequence[str], reference: int,
                what: str) -> tuple[list[int], list[str]]:
    """Indices whose set differs from the reference's, and notes."""
    mismatched, notes = [], []
    for index, current in enumerate(sets):
        difference = _set_difference(sets[reference], current)
        if difference:
            mismatched.append(index)
            notes.append(f'{MISMATCH} {names[index]}: {what} over '
                         f'{describe_set(current)}, not the '
                         f'{describe_set(sets[reference])} of '
                         f'{names[reference]} ({difference})')
    return mismatched, notes


def _set_difference(reference: dict, other: dict) -> str:
    parts = []
    for name in list(reference) + [c for c in other if c not in reference]:
        ours, theirs = reference.get(name), other.get(name)
        if ours != theirs:
            parts.append(f'{name}: severities {list(theirs or [])} vs '
                         f'{list(ours or [])}')
    return '; '.join(parts)


def corruption_errors(result: RobustnessResults,
                      baseline: RobustnessResults,
                      metric: str = 'mIoU') -> tuple[float, float]:
    """mCE and relative mCE of ``result``, normalised to ``baseline``.

    With the error ``E = 100 - metric`` (percent), for each benchmark
    corruption ``c`` both results share:

    - ``CE_c = sum_s E_{s,c} / sum_s E^base_{s,c}``;
    - ``relCE_c = sum_s (E_{s,c} - E_clean) /
      sum_s (E^base_{s,c} - E^base_clean)``;

    mCE and relative mCE are ``100 *`` their means over corruptions
    (Hendrycks & Dietterich, ICLR 2019, with the baseline in AlexNet's
    place). Below 100 is better than the baseline. A corruption whose
    baseline sum is 0 makes the mean NaN.

    Returns:
        tuple[float, float]: ``(mCE, relative mCE)``, NaN when undefined.
    """
    ours, theirs = condition_set(result), condition_set(baseline)
    names = [c for c in ours if ours[c] == theirs.get(c)]
    clean = (result.clean or {}).get(metric, math.nan)
    base_clean = (baseline.clean or {}).get(metric, math.nan)
    ce, rel = [], []
    for name in names:
        errors = [100. - result.get(name, s).get(metric, math.nan)
                  for s in ours[name]]
        base = [100. - baseline.get(name, s).get(metric, math.nan)
                for s in ours[name]]
        ce.append(sum(errors) / sum(base) if sum(base) else math.nan)
        degradation = sum(e - (100. - clean) for e in errors)
        base_degradation = sum(e - (100. - base_clean) for e in base)
        rel.append(degradation / base_degradation
                   if base_degradation else math.nan)

    def mean(values):
        if not values or not all(is_finite(v) for v in values):
            return math.nan
        return 100. * sum(values) / len(values)

    return mean(ce), mean(rel)


def comparison_table(results: Sequence[RobustnessResults],
                     names: Sequence[str],
                     metric: str = 'mIoU',
                     baseline: int | None = None,
                     strict: bool = True,
                     paper: bool = False) -> dict:
    """Rows of the comparison.

    Args:
        results (Sequence[RobustnessResults]): One result per method.
        names (Sequence[str]): Method names, as many as results.
        metric (str): Metric to compare. Defaults to ``'mIoU'``.
        baseline (int, optional): Index of the baseline result: adds
            ``Δ`` columns (method minus baseline) for clean, mean and rPC,
            and mCE / relative mCE. Defaults to None.
        strict (bool): Refuse results whose mPC covers other conditions
            than the reference's (the baseline, else the first result).
            When False, such values are marked with :data:`MISMATCH` and
            explained in ``notes``. Defaults to True.
        paper (bool): Only Method, Clean, the benchmark corruptions and
            Mean, as in the paper's table (held-out ones are left out, with
            a note). Defaults to False.

    Returns:
        dict: ``columns``, ``rows`` (``[name, value, ...]``, None where a
        result lacks the value), ``marks`` (``{(row, column): mark}``)
        and ``notes`` (lines to print under the table).

    Raises:
        ValueError: On a name count mismatch, or (``strict``) on results
            over different condition sets.
    """
    if len(names) != len(results):
        raise ValueError(f'Got {len(names)} names for {len(results)} '
                         'result files; give one name per file')
    reference = 0 if baseline is None else baseline
    sets = [condition_set(r) for r in results]
    held = [condition_set(r, holdout=True) for r in results]
    mismatched, notes = _check_sets(sets, names, reference, 'mPC')
    held_mismatched, held_notes = _check_sets(held, names, reference,
                                              'held-out mPC')
    notes += held_notes
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
    for index, result in enumerate(results):
        summary = result.summary()
        missing = summary['averaged_over']['missing'] + summary.get(
            'holdout', {}).get('averaged_over', {}).get('missing', [])
        if missing:
            notes.append(f'{names[index]}: incomplete, not evaluated or '
                         f'NaN: {", ".join(missing)}')

    corruptions: list[str] = []
    for current in sets:
        corruptions.extend(c for c in current if c not in corruptions)
    held_out: list[str] = []
    for current in held:
        held_out.extend(c for c in current if c not in held_out)
    columns = ['Method', 'Clean', *corruptions, 'Mean']
    if paper and held_out:
        notes.append('held-out corruptions (' + ', '.join(held_out) +
                     ') are not in the paper-shaped table')
    if not paper:
        columns.append('rPC (%)')
        if held_out:
            columns += [*held_out, 'Held-out mean']
        if baseline is not None:
            columns += ['Δ Clean', 'Δ Mean', 'Δ rPC', 'mCE (%)',
                        'rel. mCE (%)']
    rows, marks = [], {}
    base_row = None
    for index, (name, result) in enumerate(zip(names, results)):
        summary = result.summary()
        per = summary['per_corruption']
        values = [(result.clean or {}).get(metric)]
        for column, corruption in enumerate(corruptions, start=2):
            values.append(per.get(corruption, {}).get(metric))
            if corruption in sets[index] and sets[index][corruption] != \
                    sets[reference].get(corruption):
                marks[(index, column)] = MISMATCH
        values.append(summary['mPC'].get(metric))
        if index in mismatched:
            marks[(index, len(values))] = MISMATCH
        if not paper:
            values.append(summary['rPC'].get(metric))
            for corruption in held_out:
                values.append(per.get(corruption, {}).get(metric))
                if corruption in held[index] and held[index][corruption] \
                        != held[reference].get(corruption):
                    marks[(index, len(values))] = MISMATCH
            if held_out:
                values.append(summary.get('holdout', {}).get(
                    'mPC', {}).get(metric))
                if index in held_mismatched:
                    marks[(index, len(values))] = MISMATCH
        rows.append([name, *values])
        if index == baseline:
            base_row = rows[-1]
    if baseline is not None and not paper:
        clean_at, mean_at = 1, len(corruptions) + 2
        for index, row in enumerate(rows):
            deltas = [_minus(row[i], base_row[i])
                      for i in (clean_at, mean_at, mean_at + 1)]
            row.extend([*deltas, *corruption_errors(
                results[index], results[baseline], metric)])
    return {'columns': columns, 'rows': rows, 'marks': marks,
            'notes': notes}


def _minus(value, reference):
    if not (is_finite(value) and is_finite(reference)):
        return None
    return value - reference


def comparison_markdown(table: dict) -> str:
    """The comparison as a Markdown table, notes underneath."""
    columns = table['columns']
    marks = table.get('marks', {})
    lines = [
        '| ' + ' | '.join(columns) + ' |',
        '|' + '|'.join(['---'] + ['---:'] * (len(columns) - 1)) + '|'
    ]
    for index, row in enumerate(table['rows']):
        cells = [
            fmt(value) + marks.get((index, column), '')
            for column, value in enumerate(row[1:], start=1)
        ]
        lines.append(f'| {row[0]} | ' + ' | '.join(cells) + ' |')
    if table.get('notes'):
        lines += [''] + [f'- {note}' for note in table['notes']]
    return '\n'.join(lines) + '\n'


def comparison_csv(table: dict) -> str:
    """The comparison as CSV (empty cells for missing values)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator='\n')
    writer.writerow(table['columns'])
    for row in table['rows']:
        writer.writerow([row[0]] + [
            f'{value:.4f}' if is_finite(value) else '' for value in row[1:]
        ])
    return out.getvalue()


def write_comparison(results: Sequence[RobustnessResults],
                     names: Sequence[str],
                     out_dir: str,
                     metric: str = 'mIoU',
                     **kwargs) -> dict[str, str]:
    """Write ``comparison.md``, ``comparison.csv`` and ``comparison.png``.

    Args:
        kwargs: ``baseline``, ``strict``, ``paper`` of
            :func:`comparison_table`.

    Returns:
        dict: Kind to written path, plus ``'table'``: the Markdown text.
    """
    from .plots import plot_comparison
    table = comparison_table(results, names, metric, **kwargs)
    os.makedirs(out_dir, exist_ok=True)
    paths = {k: osp.join(out_dir, v) for k, v in COMPARISON_FILES.items()}
    markdown = comparison_markdown(table)
    atomic_write(paths['markdown'], markdown)
    atomic_write(paths['csv'], comparison_csv(table))
    tmp = f'{paths["plot"]}.tmp{os.getpid()}.png'
    last = table['columns'].index('Mean')
    plot_comparison(table['columns'][1:last + 1],
                    [row[:last + 1] for row in table['rows']], tmp, metric)
    os.replace(tmp, paths['plot'])
    paths['table'] = markdown
    return paths

