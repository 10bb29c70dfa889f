"""Side-by-side comparison of several robustness results.

Methods are rows; clean mIoU, the mean mIoU over severities of every
corruption, mPC and rPC are columns, as in the PASCAL-Context table of Tian
et al. (NeurIPS 2024).
"""
from __future__ import annotations

import csv
import io
import math
import os
import os.path as osp
from typing import Sequence

from .report import RobustnessResults, atomic_write

#: Output files of :func:`write_comparison`, by kind.
COMPARISON_FILES = {
    'markdown': 'comparison.md',
    'csv': 'comparison.csv',
    'plot': 'comparison.png',
}


def _fmt(value: float | None) -> str:
    if value is None or math.isnan(value):
        return '-'
    return f'{value:.2f}'


def default_name(results: RobustnessResults, path: str) -> str:
    """A method name for a result: its config's stem, else its folder."""
    config = results.meta.get('config')
    if config:
        return osp.splitext(osp.basename(str(config)))[0]
    return osp.basename(osp.dirname(osp.abspath(path))) or path


def comparison_table(results: Sequence[RobustnessResults],
                     names: Sequence[str],
                     metric: str = 'mIoU') -> dict:
    """Rows of the comparison.

    Args:
        results (Sequence[RobustnessResults]): One result per method.
        names (Sequence[str]): Method names, as many as results.
        metric (str): Metric to compare. Defaults to ``'mIoU'``.

    Returns:
        dict: ``{'columns': [...], 'rows': [[name, value, ...], ...]}``.
        Columns: ``Method``, ``Clean``, the union of the corruptions in
        first-seen order, ``Mean`` (mPC) and ``rPC (%)``; a value a result
        lacks is None.
    """
    if len(names) != len(results):
        raise ValueError(f'Got {len(names)} names for {len(results)} '
                         'result files; give one name per file')
    corruptions: list[str] = []
    for result in results:
        corruptions.extend(c for c in result.corruptions
                           if c not in corruptions)
    rows = []
    for name, result in zip(names, results):
        summary = result.summary()
        per_corruption = summary['per_corruption']
        rows.append([
            name, (result.clean or {}).get(metric), *[
                per_corruption[c][metric] if c in per_corruption else None
                for c in corruptions
            ], summary['mPC'].get(metric), summary['rPC'].get(metric)
        ])
    return {
        'columns': ['Method', 'Clean', *corruptions, 'Mean', 'rPC (%)'],
        'rows': rows}


def comparison_markdown(table: dict) -> str:
    """The comparison as a Markdown table."""
    columns = table['columns']
    lines = [
        '| ' + ' | '.join(columns) + ' |',
        '|' + '|'.join(['---'] + ['---:'] * (len(columns) - 1)) + '|'
    ]
    for row in table['rows']:
        lines.append(f'| {row[0]} | ' +
                     ' | '.join(_fmt(value) for value in row[1:]) + ' |')
    return '\n'.join(lines) + '\n'


def comparison_csv(table: dict) -> str:
    """The comparison as CSV (empty cells for missing values)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator='\n')
    writer.writerow(table['columns'])
    for row in table['rows']:
        writer.writerow([row[0]] + [
            '' if value is None or math.isnan(value) else f'{value:.4f}'
            for value in row[1:]
        ])
    return out.getvalue()


def comparison_plot(table: dict, path: str, metric: str = 'mIoU') -> None:
    """Grouped bars: one group per column, one bar per method."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    columns = table['columns'][1:-1]  # rPC has another scale
    rows = table['rows']
    figure = Figure(figsize=(max(6., 1.1 * len(columns) + 2), 4.5))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    positions = np.arange(len(columns))
    width = 0.8 / max(len(rows), 1)
    for index, row in enumerate(rows):
        values = [np.nan if v is None else v for v in row[1:-1]]
        axes.bar(positions + (index - (len(rows) - 1) / 2) * width, values,
                 width, label=row[0])
    axes.set_xticks(positions)
    axes.set_xticklabels(columns, rotation=30, ha='right', fontsize=8)
    axes.set_ylabel(f'{metric} (%)')
    axes.set_title(f'{metric}: clean, mean over severities per corruption, '
                   'mean (mPC)', fontsize=9)
    axes.grid(axis='y', alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def write_comparison(results: Sequence[RobustnessResults],
                     names: Sequence[str],
                     out_dir: str,
                     metric: str = 'mIoU') -> dict[str, str]:
    """Write ``comparison.md``, ``comparison.csv`` and ``comparison.png``.

    Returns:
        dict: Kind to written path, plus ``'table'``: the Markdown text.
    """
    table = comparison_table(results, names, metric)
    os.makedirs(out_dir, exist_ok=True)
    paths = {k: osp.join(out_dir, v) for k, v in COMPARISON_FILES.items()}
    markdown = comparison_markdown(table)
    atomic_write(paths['markdown'], markdown)
    atomic_write(paths['csv'], comparison_csv(table))
    tmp = f'{paths["plot"]}.tmp{os.getpid()}.png'
    comparison_plot(table, tmp, metric)
    os.replace(tmp, paths['plot'])
    paths['table'] = markdown
    return paths
