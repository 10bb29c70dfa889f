"""PNG plots of one robustness result and of a comparison.

Figures are built without pyplot: no global backend switch, no GUI.
"""
from __future__ import annotations

import math
import os.path as osp


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


def plot_results(results, path: str) -> None:
    """Save mIoU against severity, one line per corruption, as PNG.

    Args:
        results (RobustnessResults): The results to plot.
        path (str): PNG file to write.
    """
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
    axes.set_ylabel('mIoU (%)')
    title = 'mIoU under corruption'
    if results.meta.get('config'):
        title += f': {osp.basename(str(results.meta["config"]))}'
    axes.set_title(title, fontsize=9)
    axes.grid(alpha=0.3)
    _legend_outside(figure, axes)
    figure.savefig(path, dpi=100)


def plot_comparison(columns: list[str], rows: list[list], path: str,
                    metric: str = 'mIoU') -> None:
    """Grouped bars: one group per column, one bar per method.

    Args:
        columns (list[str]): Group names (clean, corruptions, mean).
        rows (list[list]): ``[method, value per column...]``; None or NaN
            for a missing value.
        path (str): PNG file to write.
        metric (str): Axis label. Defaults to ``'mIoU'``.
    """
    import numpy as np
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
    axes.set_ylabel(f'{metric} (%)')
    axes.set_title(f'{metric}: clean, mean over severities per corruption, '
                   'mean (mPC)', fontsize=9)
    axes.grid(axis='y', alpha=0.3)
    _legend_outside(figure, axes)
    figure.savefig(path, dpi=100)
