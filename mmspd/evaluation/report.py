"""Robustness results and their reports: ``robustness.json``, CSV,
Markdown and PNG (drawn without pyplot: no global backend, no GUI).

A :class:`RobustnessResults` is what ``CorruptionTestLoop`` writes to
``robustness.json`` after every condition and reads back to resume.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import os.path as osp
from functools import partial
from typing import Callable, Mapping, Sequence

import numpy as np

from mmspd.corruptions import ALL_CORRUPTIONS, SEVERITIES

from .metrics import CLEAN, METRICS, is_finite, summarize

#: ``format`` and ``version`` of a ``robustness.json``.
FORMAT, VERSION = 'mmspd.robustness', 1

#: Output files written into the work dir, by kind.
OUTPUT_FILES = {'json': 'robustness.json', 'csv': 'robustness.csv',
                'markdown': 'robustness.md', 'plot': 'robustness.png'}

#: Reproducibility record of ``meta``, as (key, label) for reports.
RECORD = (('config', 'config'), ('checkpoint', 'checkpoint'),
          ('checkpoint_sha256', 'checkpoint sha256'),
          ('images', 'test images'), ('data', 'data fingerprint'),
          ('seed', 'seed'), ('key', 'seed key'),
          ('world_size', 'processes'), ('started', 'started'),
          ('updated', 'last update'))


def fmt(value, digits: int = 2, missing: str = '-') -> str:
    """A number with ``digits`` decimals; ``missing`` for None and NaN."""
    return f'{value:.{digits}f}' if is_finite(value) else missing


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence]) -> list:
    """Lines of a Markdown table: a text column, then numeric ones."""
    lines = [' '.join(['|', *(f'{c} |' if c != '' else '|' for c in cells)])
             for cells in [columns, *rows]]
    return lines[:1] + ['|---|' + '---:|' * (len(columns) - 1)] + lines[1:]


def csv_text(rows: Sequence[Sequence]) -> str:
    """``rows`` as CSV text."""
    out = io.StringIO()
    csv.writer(out, lineterminator='\n').writerows(rows)
    return out.getvalue()


def atomic_write(path: str, content: str | Callable[[str], None]) -> None:
    """Write ``path`` so that readers never see a partial file: ``content``
    (text, or a function that writes the file whose path it is given,
    e.g. a plot's ``savefig``) goes to a temporary file beside ``path``
    with its extension, which then replaces it."""
    root, ext = osp.splitext(path)
    tmp = f'{root}.tmp{os.getpid()}{ext}'
    try:
        if callable(content):
            content(tmp)
        else:
            with open(tmp, 'w', encoding='utf-8', newline='') as f:
                f.write(content)
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


def _nan_to_null(obj):
    """Strict JSON readers reject NaN literals."""
    if isinstance(obj, dict):
        return {key: _nan_to_null(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return list(map(_nan_to_null, obj))
    return None if isinstance(obj, float) and math.isnan(obj) else obj


def _check_row(row, index: int, source: str) -> tuple[str, int, dict]:
    """A stored condition row as ``(corruption, severity, metrics)``."""
    where = f'{source}: condition {index}'
    if not isinstance(row, Mapping):
        raise ValueError(f'{where} is {row!r}, not an object')  # noqa: TRY004
    metrics = dict(row)
    corruption = metrics.pop('corruption', None)
    severity = metrics.pop('severity', None)
    if corruption not in ALL_CORRUPTIONS:
        raise ValueError(f'{where} has corruption {corruption!r}; '
                         f'accepted: {", ".join(ALL_CORRUPTIONS)}')
    if isinstance(severity, bool) or severity not in SEVERITIES:
        raise ValueError(
            f'{where} ({corruption}) has severity {severity!r}; every '
            'condition needs "severity": 1 to 5. Fix or delete the row, '
            'or delete the file to start over')
    for name, value in metrics.items():
        if value is not None and not isinstance(value, (int, float)):
            raise ValueError(f'{where} has {name}={value!r}; metrics must '
                             'be numbers or null')
    return corruption, int(severity), metrics


class RobustnessResults:
    """Clean and per-condition metrics of one model, plus run metadata
    (``meta``: config, checkpoint, seed, ...).

    A condition (or clean) whose main metric is NaN is stored but does not
    count as evaluated: :meth:`has` is False for it, so a resumed run
    evaluates it again, and summaries list it as missing.
    """

    def __init__(self, meta: Mapping | None = None,
                 clean: Mapping[str, float] | None = None) -> None:
        self.meta, self.clean = dict(meta or {}), None
        self._conditions: dict[tuple, dict] = {}
        if clean is not None:
            self.add(CLEAN, None, clean)  # null (NaN in JSON) -> NaN

    @property
    def conditions(self) -> list[dict]:
        """Per-condition rows in the order they were added."""
        return [dict(corruption=c, severity=s, **metrics)
                for (c, s), metrics in self._conditions.items()]

    @property
    def corruptions(self) -> list[str]:
        """Corruptions with at least one stored severity, in order."""
        return list(dict.fromkeys(key[0] for key in self._conditions))

    @property
    def metrics(self) -> list[str]:
        """:data:`METRICS` plus any other metric the evaluator reported."""
        names = list(METRICS)
        for values in [self.clean or {}, *self._conditions.values()]:
            names.extend(key for key in values if key not in names)
        return names

    def has(self, corruption: str, severity: int | None = None) -> bool:
        """Whether a condition (``'clean'`` for clean data) is evaluated
        with a finite main metric."""
        return is_finite((self.get(corruption, severity) or {}).get(
            METRICS[0]))

    def get(self, corruption: str,
            severity: int | None = None) -> dict | None:
        """Metrics of a condition, or None if not stored."""
        return self.clean if corruption == CLEAN else \
            self._conditions.get((corruption, int(severity)))

    def add(self, corruption: str, severity: int | None,
            metrics: Mapping[str, float]) -> None:
        """Record the metrics of a condition (``'clean'``: clean data)."""
        values = {key: math.nan if value is None else float(value)
                  for key, value in metrics.items()}
        if corruption == CLEAN:
            self.clean = values
        else:
            self._conditions[(corruption, int(severity))] = values

    def summary(self) -> dict:
        """Means per corruption, mPC and rPC (see :func:`summarize`),
        missing conditions judged against what the runs asked for:
        ``meta['requested']``, else ``corruptions`` x ``severities``."""
        if 'requested' in self.meta:
            expected = [label.rsplit('-', 1)
                        for label in self.meta['requested']]
        else:
            expected = [(c, s) for c in self.meta.get('corruptions', [])
                        for s in self.meta.get('severities', [])]
        return summarize(self.clean, self.conditions, self.metrics,
                         expected)

    def to_dict(self) -> dict:
        return _nan_to_null({
            'format': FORMAT, 'version': VERSION, 'meta': self.meta,
            'clean': self.clean, 'conditions': self.conditions,
            'summary': self.summary()})

    @classmethod
    def from_dict(cls, data: Mapping,
                  source: str = 'results') -> RobustnessResults:
        """Check and read :meth:`to_dict`'s output; ``source`` names it
        in errors."""
        if not isinstance(data, Mapping) or data.get('format') != FORMAT:
            raise ValueError(f'{source} is not an mmspd robustness result '
                             f'(expected "format": "{FORMAT}"); it is '
                             'written by CorruptionTestLoop as '
                             f'{OUTPUT_FILES["json"]}')
        if data.get('version') != VERSION:
            raise ValueError(f'{source} has version {data.get("version")}; '
                             f'this mmspd reads version {VERSION}')
        rows = data.get('conditions') or []
        if not isinstance(rows, list):
            raise ValueError(  # noqa: TRY004
                f'{source}: "conditions" must be a list')
        results = cls(meta=data.get('meta'), clean=data.get('clean'))
        for index, row in enumerate(rows):
            results.add(*_check_row(row, index, source))
        return results

    @classmethod
    def load(cls, path: str) -> RobustnessResults:
        """Read a ``robustness.json``."""
        if not osp.isfile(path):
            raise FileNotFoundError(f'Result file not found: {path!r}')
        try:
            with open(path, encoding='utf-8') as f:
                data = json.load(f)
        except json.JSONDecodeError as error:
            raise ValueError(f'{path} is not valid JSON: {error}') from None
        return cls.from_dict(data, source=path)

    def _summary_rows(self, summary: dict) -> list[tuple[str, dict]]:
        held = summary.get('holdout')
        return [*((f'{c} (mean)', means) for c, means
                  in summary['per_corruption'].items()),
                ('mPC', summary['mPC']), ('rPC', summary['rPC']),
                *((('mPC holdout', held['mPC']),
                   ('rPC holdout', held['rPC'])) if held else ())]

    def to_csv(self) -> str:
        """One row per condition, then per-corruption means, mPC and rPC."""
        rows = [(CLEAN, '', self.clean)] + [
            (c['corruption'], c['severity'], c) for c in self.conditions]
        for name, values in self._summary_rows(self.summary()):
            name, mean, _ = name.partition(' (mean)')
            rows.append((name, 'mean' if mean else '', values))
        return csv_text([['corruption', 'severity', *self.metrics]] + [
            [name, severity, *(fmt((values or {}).get(m), 4)
                               for m in self.metrics)]
            for name, severity, values in rows])

    def to_markdown(self) -> str:
        """The record, mIoU by corruption and severity, all metrics."""
        summary = self.summary()
        over = summary['averaged_over']
        lines = ['# Corruption robustness', ''] + [
            f'- {label}: `{self.meta[key]}`' for key, label in RECORD
            if self.meta.get(key) not in (None, '')]
        if self.meta.get('versions'):
            lines.append('- versions: ' + ', '.join(
                f'{k} {v}' for k, v in self.meta['versions'].items()))
        lines += ['', f'- clean mIoU: {fmt((self.clean or {}).get("mIoU"))}',
                  (f'- mPC (mIoU): {fmt(summary["mPC"].get("mIoU"))}, mean '
                   f'over {over["label"]}'),
                  f'- rPC (mIoU): {fmt(summary["rPC"].get("mIoU"))} %']
        missing = list(over['missing'])
        if 'holdout' in summary:
            held = summary['holdout']
            missing += held['averaged_over']['missing']
            lines.append(
                f'- held-out mPC (mIoU): {fmt(held["mPC"].get("mIoU"))}, '
                f'mean over {held["averaged_over"]["label"]} (not in mPC)')
        if missing:
            lines.append('- **incomplete**: not evaluated or NaN: ' +
                         ', '.join(missing))
        severities = sorted({c['severity'] for c in self.conditions})
        lines += ['', '## mIoU by severity', ''] + markdown_table(
            ['Corruption', *map(str, severities), 'Mean'],
            [[corruption, *(fmt((self.get(corruption, s) or {}).get('mIoU'))
                            for s in severities),
              fmt(summary['per_corruption'].get(corruption, {}).get('mIoU'))]
             for corruption in self.corruptions])
        rename = {'rPC': 'rPC (%)', 'mPC holdout': 'held-out mPC'}
        rows = [(CLEAN, self.clean)] + [
            (rename.get(name, name), values)
            for name, values in self._summary_rows(summary)
            if name != 'rPC holdout']
        lines += ['', '## All metrics', ''] + markdown_table(
            ['', *self.metrics],
            [[name, *(fmt((values or {}).get(m)) for m in self.metrics)]
             for name, values in rows])
        return '\n'.join(lines) + '\n'

    def save(self, work_dir: str) -> dict[str, str]:
        """Write :data:`OUTPUT_FILES` into ``work_dir``, each replaced
        atomically; return their paths by kind."""
        os.makedirs(work_dir, exist_ok=True)
        contents = {'json': json.dumps(self.to_dict(), indent=2) + '\n',
                    'csv': self.to_csv(), 'markdown': self.to_markdown(),
                    'plot': partial(plot_results, self)}
        paths = {kind: osp.join(work_dir, name)
                 for kind, name in OUTPUT_FILES.items()}
        for kind, path in paths.items():
            atomic_write(path, contents[kind])
        return paths


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
