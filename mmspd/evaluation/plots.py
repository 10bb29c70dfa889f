"""PNG plots of one robustness result and of a comparison, built without
pyplot: no global backend switch, no GUI."""
from __future__ import annotations

import math
import os.path as osp

import numpy as np


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure


def _legend_outside(figure, axes) -> None:
    """Legend to the right of the axes, where it covers no data."""
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize=8, loc='upper left', bbox_to_anchor=(1.01, 1.),
                    borderaxespad=0.)
    # tight_layout keeps the outside legend inside the saved image.
    figure.tight_layout()


def _save(figure, axes, path: str, ylabel: str, title: str, **grid) -> None:
    axes.set_ylabel(ylabel)
    axes.set_title(title, fontsize=9)
    axes.grid(alpha=0.3, **grid)
    _legend_outside(figure, axes)
    figure.savefig(path, dpi=100)


def plot_results(results, path: str) -> None:
    """Save mIoU against severity of a ``RobustnessResults``, one line per
    corruption, as PNG."""
    figure = _figure(8, 4.5)
    axes = figure.add_subplot()
    for corruption in results.corruptions:
        rows = sorted((c for c in results.conditions
                       if c['corruption'] == corruption),
                      key=lambda c: c['severity'])
        axes.plot([r['severity'] for r in rows],
                  [r.get('mIoU', math.nan) for r in rows],
                  marker='o', label=corruption)
    clean = (results.clean or {}).get('mIoU')
    if clean is not None and math.isfinite(clean):
        axes.axhline(clean, color='black', linestyle='--',
                     label=f'clean ({clean:.2f})')
    severities = sorted({c['severity'] for c in results.conditions})
    if severities:
        axes.set_xticks(severities)
    axes.set_xlabel('severity')
    title = 'mIoU under corruption'
    if results.meta.get('config'):
        title += f': {osp.basename(str(results.meta["config"]))}'
    _save(figure, axes, path, 'mIoU (%)', title)


def plot_comparison(columns: list[str], rows: list[list], path: str,
                    metric: str = 'mIoU') -> None:
    """Save grouped bars as PNG: one group per column (clean, corruptions,
    mean), one bar per row (``[method, value per column...]``; None or
    NaN where missing); ``metric`` names the axis."""
    figure = _figure(max(6., 1.1 * len(columns) + 3.5), 4.5)
    axes = figure.add_subplot()
    positions = np.arange(len(columns))
    width = 0.8 / max(len(rows), 1)
    for index, row in enumerate(rows):
        values = [np.nan if v is None else v for v in row[1:]]
        axes.bar(positions + (index - (len(rows) - 1) / 2) * width, values,
                 width, label=row[0])
    axes.set_xticks(positions)
    axes.set_xticklabels(columns, rotation=30, ha='right', fontsize=8)
    _save(figure, axes, path, f'{metric} (%)',
          f'{metric}: clean, mean over severities per corruption, mean '
          '(mPC)', axis='y')
