"""Compare robustness results of several models side by side.

Reads ``robustness.json`` files written by ``CorruptionTestLoop``
(``tools/test_corruption.py``, or mmseg's ``tools/test.py`` with
``test_cfg.type=CorruptionTestLoop``) and writes ``comparison.md``,
``comparison.csv`` and ``comparison.png`` into ``--out-dir``: methods as
rows; clean mIoU, the mean mIoU over severities of each corruption, the
mean over corruptions (mPC) and rPC as columns. The Markdown table is also
printed. Results averaged over different conditions are refused unless
``--allow-mismatch`` (then marked). ::

    python tools/robustness_table.py work_dirs/adamw/robustness.json \\
        work_dirs/spd/robustness.json --names AdamW AdamSPD --out-dir cmp
    # deltas, mCE and relative mCE against AdamW
    python tools/robustness_table.py A.json B.json --names AdamW AdamSPD \\
        --baseline AdamW --out-dir cmp
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import sys
from functools import partial

# Run from a checkout without installing the package.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmspd.evaluation import (
    RobustnessResults,
    atomic_write,
    comparison_table,
)
from mmspd.evaluation.report import (
    csv_text,
    fmt,
    markdown_table,
    plot_comparison,
)

#: Files written into --out-dir, by kind.
FILES = {'markdown': 'comparison.md', 'csv': 'comparison.csv',
         'plot': 'comparison.png'}


def default_name(results: RobustnessResults, path: str) -> str:
    """A method name for a result: its config's stem, else its folder."""
    config = results.meta.get('config')
    if config:
        return osp.splitext(osp.basename(str(config)))[0]
    return osp.basename(osp.dirname(osp.abspath(path))) or path


def unique_names(names: list[str], paths: list[str]) -> list[str]:
    """``names`` with duplicates told apart by their result's folder (its
    work dir), then by a number if that is not enough."""
    names = [
        f'{name} ({osp.basename(osp.dirname(osp.abspath(path)))})'
        if names.count(name) > 1 else name
        for name, path in zip(names, paths)
    ]
    seen: dict[str, int] = {}
    numbered = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        numbered.append(f'{name} #{seen[name]}' if names.count(name) > 1
                        else name)
    return numbered


def comparison_markdown(table: dict) -> str:
    """The comparison as a Markdown table, notes underneath."""
    marks = table['marks']
    lines = markdown_table(table['columns'], [
        [row[0], *(fmt(value) + marks.get((index, column), '')
                   for column, value in enumerate(row[1:], start=1))]
        for index, row in enumerate(table['rows'])])
    return '\n'.join(lines + [''] * bool(table['notes']) + [
        f'- {note}' for note in table['notes']]) + '\n'


def write_comparison(table: dict, out_dir: str, metric: str) -> dict:
    """Write ``table`` as :data:`FILES` into ``out_dir``; return their
    paths by kind, and ``'table'``: the Markdown text."""
    os.makedirs(out_dir, exist_ok=True)
    paths = {kind: osp.join(out_dir, name) for kind, name in FILES.items()}
    markdown = comparison_markdown(table)
    atomic_write(paths['markdown'], markdown)
    atomic_write(paths['csv'], csv_text([table['columns']] + [
        [row[0], *(fmt(value, 4, '') for value in row[1:])]
        for row in table['rows']]))
    last = table['columns'].index('Mean')
    atomic_write(paths['plot'], partial(
        plot_comparison, table['columns'][1:last + 1],
        [row[:last + 1] for row in table['rows']], metric=metric))
    return dict(paths, table=markdown)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Merge robustness results into one comparison table')
    parser.add_argument(
        'results', nargs='+', metavar='RESULT_JSON',
        help='robustness.json files of the corruption benchmark')
    parser.add_argument(
        '--names', nargs='+', metavar='NAME',
        help='method names, one per file (default: config file names, '
        'told apart by work dir when equal)')
    parser.add_argument(
        '--out-dir', required=True, help='where the comparison is written')
    parser.add_argument(
        '--metric', default='mIoU',
        help='metric to compare: mIoU, aAcc or mAcc (default: mIoU)')
    parser.add_argument(
        '--baseline', metavar='RUN',
        help='a method name or one of the RESULT_JSON files (another file '
        'is added as the first row): adds Δ columns against it, mCE and '
        'relative mCE (100 = the baseline; see docs/robustness.md)')
    parser.add_argument(
        '--allow-mismatch', action='store_true',
        help='compare results averaged over different corruptions or '
        'severities, marking those values with *, instead of refusing')
    parser.add_argument(
        '--paper', action='store_true',
        help="the paper's table shape: Method, Clean, each corruption, "
        "Mean (then, with --baseline, the deltas and mCE columns)")
    return parser.parse_args(argv)


def _baseline_index(args, paths: list[str], names: list[str]) -> int:
    if args.baseline in names:
        return names.index(args.baseline)
    for index, path in enumerate(paths):
        if osp.exists(args.baseline) and osp.samefile(path, args.baseline):
            return index
    if osp.isfile(args.baseline):
        return -1  # a further file
    raise ValueError(f'--baseline {args.baseline!r} is neither a method '
                     f'name ({", ".join(names)}) nor a result file')


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.names is not None and len(args.names) != len(args.results):
        print(f'error: got {len(args.names)} --names for '
              f'{len(args.results)} result files; give one name per file',
              file=sys.stderr)
        return 2
    paths = list(args.results)
    try:
        results = [RobustnessResults.load(path) for path in paths]
        names = list(args.names or unique_names(
            [default_name(r, p) for r, p in zip(results, paths)], paths))
        baseline = None
        if args.baseline is not None:
            baseline = _baseline_index(args, paths, names)
            if baseline == -1:
                paths.insert(0, args.baseline)
                results.insert(0, RobustnessResults.load(args.baseline))
                names.insert(0, unique_names(
                    [default_name(results[0], args.baseline), *names],
                    paths)[0])
                baseline = 0
        known = set().union(*(result.metrics for result in results))
        if args.metric not in known:
            raise ValueError(f'unknown metric {args.metric!r}; the results '
                             f'have {", ".join(sorted(known))}')
        paths = write_comparison(comparison_table(
            results, names, args.metric, baseline=baseline,
            strict=not args.allow_mismatch, paper=args.paper),
            args.out_dir, args.metric)
    except (OSError, ValueError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    print(paths.pop('table'), end='')
    print('Wrote ' + ', '.join(paths.values()))
    return 0


if __name__ == '__main__':
    sys.exit(main())
