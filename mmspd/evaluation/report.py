"""Robustness results: storage (JSON), CSV and Markdown reports.

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

from mmspd.corruptions import ALL_CORRUPTIONS, SEVERITIES

from .metrics import CLEAN, METRICS, is_finite, summarize

FORMAT = 'mmspd.robustness'
VERSION = 1

#: Output files written into the work dir, by kind.
OUTPUT_FILES = {
    'json': 'robustness.json',
    'csv': 'robustness.csv',
    'markdown': 'robustness.md',
    'plot': 'robustness.png',
}

#: Reproducibility record of ``meta``, as (key, label) for reports.
RECORD = (('config', 'config'), ('checkpoint', 'checkpoint'),
          ('checkpoint_sha256', 'checkpoint sha256'),
          ('images', 'test images'), ('data', 'data fingerprint'),
          ('seed', 'seed'), ('key', 'seed key'),
          ('world_size', 'processes'), ('started', 'started'),
          ('updated', 'last update'))


def _jsonable(obj):
    """NaN becomes null: strict JSON readers reject NaN literals."""
    if isinstance(obj, dict):
        return {key: _jsonable(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(value) for value in obj]
    if isinstance(obj, float) and math.isnan(obj):
        return None
    return obj


def fmt(value, digits: int = 2) -> str:
    """A number with ``digits`` decimals; ``-`` for None and NaN."""
    if not is_finite(value):
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


def _check_row(row, index: int, source: str) -> tuple[str, int, dict]:
    """A stored condition row as ``(corruption, severity, metrics)``."""
    where = f'{source}: condition {index}'
    if not isinstance(row, Mapping):
        raise ValueError(f'{where} is {row!r}, not an object')
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
    """Clean and per-condition metrics of one model, plus run metadata.

    A condition (or clean) whose main metric is NaN is stored but does not
    count as evaluated: :meth:`has` is False for it, so a resumed run
    evaluates it again, and summaries list it as missing.

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
        self.clean = None
        if clean is not None:
            self.add(CLEAN, None, clean)  # null (NaN in JSON) -> NaN
        self._conditions: dict[tuple, dict] = {}
        for index, row in enumerate(conditions or ()):
            corruption, severity, metrics = _check_row(
                row, index, 'results')
            self.add(corruption, severity, metrics)

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
        """Corruptions with at least one stored severity, in order."""
        return list(dict.fromkeys(key[0] for key in self._conditions))

    def has(self, corruption: str, severity: int | None = None) -> bool:
        """Whether a condition (``'clean'`` for clean data) is evaluated
        with a finite main metric."""
        return is_finite((self.get(corruption, severity) or {}).get(
            METRICS[0]))

    def get(self, corruption: str,
            severity: int | None = None) -> dict | None:
        """Metrics of a condition, or None if not stored."""
        if corruption == CLEAN:
            return self.clean
        return self._conditions.get((corruption, int(severity)))

    def add(self, corruption: str, severity: int | None,
            metrics: Mapping[str, float]) -> None:
        """Record the metrics of a condition (``'clean'``: clean data)."""
        values = {
            key: math.nan if value is None else float(value)
            for key, value in metrics.items()
        }
        if corruption == CLEAN:
            self.clean = values
        else:
            self._conditions[(corruption, int(severity))] = values

    @property
    def expected(self) -> list[tuple[str, int]]:
        """The conditions the runs in this work dir were asked for:
        ``meta['requested']`` (``'fog-3'`` labels), else every
        ``meta['corruptions']`` at every ``meta['severities']``."""
        if 'requested' in self.meta:
            return [(label.rsplit('-', 1)[0], int(label.rsplit('-', 1)[1]))
                    for label in self.meta['requested']]
        return [(c, int(s)) for c in self.meta.get('corruptions', [])
                for s in self.meta.get('severities', [])]

    def summary(self) -> dict:
        """Means per corruption, mPC and rPC; see :func:`summarize`."""
        return summarize(self.clean, self.conditions, self.metrics,
                         self.expected)

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
        rows = data.get('conditions') or []
        if not isinstance(rows, list):
            raise ValueError(f'{source}: "conditions" must be a list')
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
                *[fmt((values or {}).get(m), 4) for m in metrics]
            ])

        row(CLEAN, '', self.clean)
        for condition in self.conditions:
            row(condition['corruption'], condition['severity'], condition)
        for corruption, means in summary['per_corruption'].items():
            row(corruption, 'mean', means)
        row('mPC', '', summary['mPC'])
        row('rPC', '', summary['rPC'])
        if 'holdout' in summary:
            row('mPC holdout', '', summary['holdout']['mPC'])
            row('rPC holdout', '', summary['holdout']['rPC'])
        return out.getvalue()

    def record_lines(self) -> list[str]:
        """The reproducibility record as Markdown list items."""
        lines = [f'- {label}: `{self.meta[key]}`' for key, label in RECORD
                 if self.meta.get(key) not in (None, '')]
        versions = self.meta.get('versions') or {}
        if versions:
            lines.append('- versions: ' + ', '.join(
                f'{name} {version}' for name, version in versions.items()))
        return lines

    def to_markdown(self) -> str:
        """mIoU by corruption and severity, then all metrics' summaries."""
        summary = self.summary()
        over = summary['averaged_over']
        severities = sorted({c['severity'] for c in self.conditions})
        lines = ['# Corruption robustness', '', *self.record_lines(), '',
                 f'- clean mIoU: {fmt((self.clean or {}).get("mIoU"))}',
                 f'- mPC (mIoU): {fmt(summary["mPC"].get("mIoU"))}, mean '
                 f'over {over["label"]}',
                 f'- rPC (mIoU): {fmt(summary["rPC"].get("mIoU"))} %']
        if 'holdout' in summary:
            held = summary['holdout']
            lines.append(
                f'- held-out mPC (mIoU): {fmt(held["mPC"].get("mIoU"))}, '
                f'mean over {held["averaged_over"]["label"]} (not in mPC)')
        missing = over['missing'] + summary.get('holdout', {}).get(
            'averaged_over', {}).get('missing', [])
        if missing:
            lines.append('- **incomplete**: not evaluated or NaN: ' +
                         ', '.join(missing))
        lines += ['', '## mIoU by severity', '']
        header = ['Corruption', *map(str, severities), 'Mean']
        lines.append('| ' + ' | '.join(header) + ' |')
        lines.append('|' + '|'.join(['---'] + ['---:'] *
                                    (len(header) - 1)) + '|')
        for corruption in self.corruptions:
            cells = [
                fmt((self.get(corruption, s) or {}).get('mIoU'))
                for s in severities
            ]
            mean = summary['per_corruption'].get(corruption, {}).get('mIoU')
            lines.append(f'| {corruption} | ' + ' | '.join(cells) +
                         f' | {fmt(mean)} |')
        lines += ['', '## All metrics', '']
        metrics = self.metrics
        lines.append('| | ' + ' | '.join(metrics) + ' |')
        lines.append('|---|' + '---:|' * len(metrics))

        def row(name, values):
            cells = [fmt((values or {}).get(m)) for m in metrics]
            lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')

        row(CLEAN, self.clean)
        for corruption, means in summary['per_corruption'].items():
            row(f'{corruption} (mean)', means)
        row('mPC', summary['mPC'])
        row('rPC (%)', summary['rPC'])
        if 'holdout' in summary:
            row('held-out mPC', summary['holdout']['mPC'])
        return '\n'.join(lines) + '\n'

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
        from .plots import plot_results
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
            plot_results(self, tmp)
            os.replace(tmp, paths['plot'])
        return paths
