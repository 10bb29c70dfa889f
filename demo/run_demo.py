"""The CPU demo: does SPD keep more of a broad pre-training's robustness?

One command asks the paper's question on generated data (no download)::

    python demo/run_demo.py [--work-dir work_dirs/demo] [--quick]

1. ``data``: three generated sets (``demo/data.py``): a *broad* mixture of
   appearances for pre-training, a *narrow target* (one appearance, few
   training images) and *out-of-distribution* scenes in held-out
   appearances.
2. ``pretrain``: the tiny Swin-UperNet trained on the broad mixture.
3. Fine-tuning on the target from that checkpoint with AdamW, L2-SP
   (``AdamL2SP``) and Adam-SPD (``AdamSPD``), one run per seed. The
   strength lambda of L2-SP and Adam-SPD is chosen from a small grid on the
   target's val split, with the first seed (``select_*`` stages); the other
   seeds use the chosen value.
4. Every model, the pre-trained one included, is evaluated on the target's
   test split, clean (ID) and under the four default corruptions at every
   severity (``tools/test_corruption.py``), and on the held-out
   appearances (OOD, ``tools/test.py``).
5. ``summary``: ``summary.md`` (mean +- std over seeds), ``summary.json``
   (every run's numbers), ``corruptions.png`` and ``ood_vs_deviation.png``.

Training and evaluation run the project's tools as separate processes,
exactly as a user would (``demo/stages.py``). A stage that finished and
whose outputs still exist is skipped, so an interrupted demo resumes where
it stopped (``demo/scheduler.py``). Each stage's console output goes to
``logs/<stage>.log``. The table and figures: ``demo/summary.py``.
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import sys
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
# The demo is not installed, and mmspd need not be: import from the checkout.
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from demo.data import DEMO_SIZES
from demo.scheduler import (
    DemoError,
    read_json,
    run_stages,
    write_json,
)
from demo.stages import Plan
from demo.summary import write_summary

# The full demo (docs/demo.md records a run).
FULL = {
    'size': 64,
    # Samples per split: broad (pre-training), target (fine-tuning, lambda
    # choice on val, ID test) and ood (held-out appearances).
    'counts': DEMO_SIZES,
    'pretrain_iters': None,  # the configs' own schedules
    'finetune_iters': None,
    'seeds': [0, 1, 2],
    # The grids the Swin-T configs' comments propose, fixed before any
    # demo run: L2-SP's alpha and Adam-SPD's lambda.
    'grids': {'l2sp': [1e-3, 1e-2, 1e-1], 'spd': [0.1, 0.3, 1.0]},
    'severities': [1, 2, 3, 4, 5],
}
# --quick: every stage on tiny sizes; the numbers mean nothing.
QUICK = {
    'size': 64,
    'counts': {
        'broad': {'train': 16, 'val': 4},
        'target': {'train': 8, 'val': 4, 'test': 4},
        'ood': {'test': 4},
    },
    'pretrain_iters': 4,
    'finetune_iters': 2,
    'seeds': [0, 1],
    'grids': {'l2sp': [1e-3, 1e-1], 'spd': [0.1, 1.0]},
    'severities': [1, 5],
}


def check_work_dir(work_dir: str, settings: dict) -> None:
    """Refuse a work dir that holds a run with other settings.

    Raises:
        DemoError: Naming the work dir and what to do.
    """
    path = osp.join(work_dir, 'demo_settings.json')
    if osp.exists(path) and read_json(path) != settings:
        raise DemoError(
            f'{work_dir} holds a demo run with other settings ({path}); '
            'pass another --work-dir, or delete it to start over')
    os.makedirs(osp.join(work_dir, 'logs'), exist_ok=True)
    write_json(path, settings)


def run_demo(work_dir: str, settings: dict, jobs: int = 2) -> str:
    """Run every stage not yet done, then the summary.

    Args:
        work_dir (str): Where everything goes.
        settings (dict): :data:`FULL` or :data:`QUICK`.
        jobs (int): How many stages may run at once. Defaults to 2.

    Returns:
        str: The text of ``summary.md``.
    """
    if jobs < 1:
        raise DemoError(f'Invalid jobs: {jobs}; expected >= 1')
    # Share the cores between the stages that run at once: with more
    # threads than free cores, a small model trains up to ten times slower
    # (measured on a loaded 2-core machine).
    threads = max(1, (os.cpu_count() or 1) // jobs)
    plan = Plan(work_dir, settings, threads)
    check_work_dir(plan.work_dir, settings)
    record = run_stages(plan.stages(), plan.log_dir, jobs)
    return write_summary(plan, record)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='CPU demo: pre-train on a broad mixture of synthetic '
        'appearances, fine-tune on one narrow target appearance with AdamW, '
        'L2-SP and Adam-SPD (three seeds each), compare in-distribution, '
        'out-of-distribution and corrupted mIoU and the distance from the '
        'pre-trained weights')
    parser.add_argument(
        '--work-dir', default=osp.join('work_dirs', 'demo'),
        help='where all outputs go (default: %(default)s)')
    parser.add_argument(
        '--quick', action='store_true',
        help='tiny data, two seeds, two grid values, a few iterations: '
        'checks that every stage runs (one to a few minutes, mostly process '
        'start-up); the numbers mean nothing')
    parser.add_argument(
        '--jobs', type=int, default=2,
        help='stages run at once when their inputs are ready; each gets '
        'CPU cores / JOBS threads (default: %(default)s)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    start = time.time()
    try:
        text = run_demo(args.work_dir, QUICK if args.quick else FULL,
                        args.jobs)
    except DemoError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print('\ninterrupted; run the same command again to resume',
              file=sys.stderr)
        return 130
    minutes, seconds = divmod(round(time.time() - start), 60)
    print(f'\nDemo finished in {minutes}:{seconds:02d}; outputs in '
          f'{osp.abspath(args.work_dir)}\n')
    print(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
