"""Compare robustness results of several models side by side.

Reads ``robustness.json`` files written by ``tools/test_corruption.py``
and writes ``comparison.md``, ``comparison.csv`` and ``comparison.png``
into ``--out-dir``: methods as rows; clean mIoU, the mean mIoU over
severities of each corruption, the mean over corruptions (mPC) and rPC as
columns. The Markdown table is also printed. ::

    python tools/robustness_table.py work_dirs/adamw/robustness.json \\
        work_dirs/spd/robustness.json --names AdamW AdamSPD --out-dir cmp
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys

# Run from a checkout without installing the package.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmspd.evaluation.compare import default_name, write_comparison
from mmspd.evaluation.report import RobustnessResults


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Merge robustness results into one comparison table')
    parser.add_argument(
        'results', nargs='+', metavar='RESULT_JSON',
        help='robustness.json files of tools/test_corruption.py')
    parser.add_argument(
        '--names', nargs='+', metavar='NAME',
        help='method names, one per file (default: config file names)')
    parser.add_argument(
        '--out-dir', required=True, help='where the comparison is written')
    parser.add_argument(
        '--metric', default='mIoU',
        help='metric to compare: mIoU, aAcc or mAcc (default: mIoU)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.names is not None and len(args.names) != len(args.results):
        print(f'error: got {len(args.names)} --names for '
              f'{len(args.results)} result files; give one name per file',
              file=sys.stderr)
        return 2
    try:
        results = [RobustnessResults.load(path) for path in args.results]
    except (OSError, ValueError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    names = args.names or [
        default_name(result, path)
        for result, path in zip(results, args.results)
    ]
    known = set().union(*(result.metrics for result in results))
    if args.metric not in known:
        print(f'error: unknown metric {args.metric!r}; the results have '
              f'{", ".join(sorted(known))}', file=sys.stderr)
        return 2
    paths = write_comparison(results, names, args.out_dir, args.metric)
    print(paths.pop('table'), end='')
    print('Wrote ' + ', '.join(paths.values()))
    return 0


if __name__ == '__main__':
    sys.exit(main())
