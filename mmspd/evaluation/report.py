"""Robustness results: storage (JSON), CSV and Markdown tables, plots.

A :class:`RobustnessResults` is what ``tools/test_corruption.py`` writes to
``robustness.json`` after every condition and reads back to resume.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import os.path as osp
from typing import Iterable, Mapping, Sequence

from .metrics import CLEAN, METRICS, summarize

FORMAT = 'mmspd.robustness'
VERSION = 1

#: Output files written into the work dir, by kind.
OUTPUT_FILES = {
    'json': 'robustness.json',
    'csv': 'robustness.csv',
    'markdown': 'robustness.md',
    'plot': 'robustness.png',
}


def _finite_or_none(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _jsonable(obj):
    """NaN becomes null: strict JSON readers reject NaN literals."""
    if isinstance(obj, dict):
        return {key: _jsonable(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(value) for value in obj]
    return _finite_or_none(obj)


def _fmt(value: float | None, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return '-'
    return f'{value:.{digits}f}'


def atomic_write(path: str, text: str) -> None:
    """Write ``text`` to ``path`` so that readers never see a partial file.

    A run killed mid-write leaves the previous version in place.
    """
    tmp = f'{path}.tmp{os.getpid()}'
    with open(tmp, 'w', encoding='utf-8', newline='') as f:
        f.write(text)
    os.replace(tmp, path)


class RobustnessResults:
    """Clean and per-condition metrics of one model, plus run metadata.

    Args:
        meta (Mapping, optional): Run description (config, checkpoint,
            seed, ...). Defaults to None.
        clean (Mapping[str, float], optional): Clean metrics. Defaults to
            None.
        conditions (Iterable[Mapping], optional): Per-condition metrics,
            each with ``'corruption'`` and ``'severity'``. Defaults to None.
    """

    def __init__(self,
                 meta: Mapping | None = None,
                 clean: Mapping[str, float] | None = None,
                 conditions: Iterable[Mapping] | None = None) -> None:
        self.meta = dict(meta or {})
        self.clean = dict(clean) if clean is not None else None
        self._conditions: dict[tuple, dict] = {}
        for condition in conditions or ():
            condition = dict(condition)
            self.add(condition.pop('corruption'), condition.pop('severity'),
                     condition)

    # --- contents -------------------------------------------------------

    @property
    def conditions(self) -> list[dict]:
        """Per-condition rows in the order they were added."""
        return [
            dict(corruption=corruption, severity=severity, **metrics)
            for (corruption, severity), metrics in self._conditions.items()
        ]

    @property
    def corruptions(self) -> list[str]:
        """Corruptions with at least one evaluated severity, in order."""
        return list(dict.fromkeys(key[0] for key in self._conditions))

    def has(self, corruption: str, severity: int | None = None) -> bool:
        """Whether a condition (``'clean'`` for clean data) is evaluated."""
        if corruption == CLEAN:
            return self.clean is not None
        return (corruption, int(severity)) in self._conditions

    def get(self, corruption: str,
            severity: int | None = None) -> dict | None:
        """Metrics of a condition, or None if not evaluated."""
        if corruption == CLEAN:
            return self.clean
        return self._conditions.get((corruption, int(severity)))

    def add(self, corruption: str, severity: int | None,
            metrics: Mapping[str, float]) -> None:
        """Record the metrics of a condition (``'clean'``: clean data)."""
        values = {key: float(value) for key, value in metrics.items()}
        if corruption == CLEAN:
            self.clean = values
        else:
            self._conditions[(corruption, int(severity))] = values

    def summary(self) -> dict:
        """Means per corruption, mPC and rPC; see :func:`summarize`."""
        return summarize(self.clean, self.conditions, self.metrics)

    @property
    def metrics(self) -> list[str]:
        """:data:`METRICS` plus any other metric the evaluator reported."""
        names = list(METRICS)
        for values in [self.clean or {}, *self._conditions.values()]:
            names.extend(key for key in values if key not in names)
        return names

    # --- serialisation --------------------------------------------------

    def to_dict(self) -> dict:
        return _jsonable(
            {
                'format': FORMAT,
                'version': VERSION,
                'meta': self.meta,
                'clean': self.clean,
                'conditions': self.conditions,
                'summary': self.summary()})

    @classmethod
    def from_dict(cls, data: Mapping,
                  source: str = 'results') -> RobustnessResults:
        if not isinstance(data, Mapping) or data.get('format') != FORMAT:
            raise ValueError(f'{source} is not an mmspd robustness result '
                             f'(expected "format": "{FORMAT}"); it is '
                             'written by tools/test_corruption.py as '
                             f'{OUTPUT_FILES["json"]}')
        if data.get('version') != VERSION:
            raise ValueError(f'{source} has version {data.get("version")}; '
                             f'this mmspd reads version {VERSION}')

        def restore(metrics):
            return {
                key: math.nan if value is None else value
                for key, value in metrics.items()
            }

        clean = data.get('clean')
        return cls(
            meta=data.get('meta'),
            clean=restore(clean) if clean is not None else None,
            conditions=[restore(row) for row in data.get('conditions', [])])

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

    # --- reports --------------------------------------------------------

    def to_csv(self) -> str:
        """One row per condition, then per-corruption means, mPC and rPC."""
        metrics = self.metrics
        summary = self.summary()
        out = io.StringIO()
        writer = csv.writer(out, lineterminator='\n')
        writer.writerow(['corruption', 'severity', *metrics])

        def row(name, severity, values):
            writer.writerow([
                name, severity,
                *[_fmt((values or {}).get(m), 4) for m in metrics]
            ])

        row(CLEAN, '', self.clean)
        for condition in self.conditions:
            row(condition['corruption'], condition['severity'], condition)
        for corruption, means in summary['per_corruption'].items():
            row(corruption, 'mean', means)
        row('mPC', '', summary['mPC'])
        row('rPC', '', summary['rPC'])
        return out.getvalue()

    def to_markdown(self) -> str:
        """mIoU by corruption and severity, then all metrics' summaries."""
        summary = self.summary()
        severities = sorted({c['severity'] for c in self.conditions})
        clean_miou = (self.clean or {}).get('mIoU')
        lines = ['# Corruption robustness', '']
        for key in ('config', 'checkpoint', 'seed'):
            if key in self.meta:
                lines.append(f'- {key}: `{self.meta[key]}`')
        lines += [
            f'- clean mIoU: {_fmt(clean_miou)}',
            f'- mPC (mIoU): {_fmt(summary["mPC"].get("mIoU"))}',
            f'- rPC (mIoU): {_fmt(summary["rPC"].get("mIoU"))} %', '',
            '## mIoU by severity', ''
        ]
        header = ['Corruption', *map(str, severities), 'Mean']
        lines.append('| ' + ' | '.join(header) + ' |')
        lines.append('|' + '|'.join(['---'] + ['---:'] *
                                    (len(header) - 1)) + '|')
        for corruption in self.corruptions:
            cells = [
                _fmt((self.get(corruption, s) or {}).get('mIoU'))
                for s in severities
            ]
            mean = summary['per_corruption'][corruption]['mIoU']
            lines.append(f'| {corruption} | ' + ' | '.join(cells) +
                         f' | {_fmt(mean)} |')
        lines += ['', '## All metrics', '']
        metrics = self.metrics
        lines.append('| | ' + ' | '.join(metrics) + ' |')
        lines.append('|---|' + '---:|' * len(metrics))

        def row(name, values):
            cells = [_fmt((values or {}).get(m)) for m in metrics]
            lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')

        row(CLEAN, self.clean)
        for corruption, means in summary['per_corruption'].items():
            row(f'{corruption} (mean)', means)
        row('mPC', summary['mPC'])
        row('rPC (%)', summary['rPC'])
        return '\n'.join(lines) + '\n'

    def plot(self, path: str) -> None:
        """Save mIoU against severity, one line per corruption, as PNG."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        # A Figure without pyplot: no global backend switch, no GUI.
        figure = Figure(figsize=(7, 4.5))
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        for corruption in self.corruptions:
            rows = sorted((c for c in self.conditions
                           if c['corruption'] == corruption),
                          key=lambda c: c['severity'])
            axes.plot([r['severity'] for r in rows],
                      [r.get('mIoU', math.nan) for r in rows],
                      marker='o',
                      label=corruption)
        if self.clean is not None and 'mIoU' in self.clean:
            axes.axhline(
                self.clean['mIoU'], color='black', linestyle='--',
                label=f'clean ({self.clean["mIoU"]:.2f})')
        severities = sorted({c['severity'] for c in self.conditions})
        if severities:
            axes.set_xticks(severities)
        axes.set_xlabel('severity')
        axes.set_ylabel('mIoU (%)')
        title = 'mIoU under corruption'
        if self.meta.get('config'):
            title += f': {osp.basename(str(self.meta["config"]))}'
        axes.set_title(title, fontsize=9)
        axes.grid(alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize=8)
        figure.tight_layout()
        figure.savefig(path, dpi=100)

    def save(self, work_dir: str,
             files: Sequence[str] = tuple(OUTPUT_FILES)) -> dict[str, str]:
        """Write JSON, CSV, Markdown and the plot into ``work_dir``.

        Each file is replaced atomically, so an interrupted run keeps the
        previous complete version.

        Args:
            work_dir (str): Output directory, created if missing.
            files (Sequence[str]): Kinds to write, keys of
                :data:`OUTPUT_FILES`. Defaults to all.

        Returns:
            dict: Kind to written path.
        """
        os.makedirs(work_dir, exist_ok=True)
        paths = {kind: osp.join(work_dir, OUTPUT_FILES[kind])
                 for kind in files}
        if 'json' in paths:
            atomic_write(paths['json'],
                         json.dumps(self.to_dict(), indent=2) + '\n')
        if 'csv' in paths:
            atomic_write(paths['csv'], self.to_csv())
        if 'markdown' in paths:
            atomic_write(paths['markdown'], self.to_markdown())
        if 'plot' in paths:
            tmp = f'{paths["plot"]}.tmp{os.getpid()}.png'
            self.plot(tmp)
            os.replace(tmp, paths['plot'])
        return paths
