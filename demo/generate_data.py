"""Generate the synthetic demo data: broad, target and ood sets.

Writes one PASCAL-Context-layout dataset per set under ``OUT_DIR/<set>``
(see ``demo/data.py``), by default with the full demo's sizes::

    python demo/generate_data.py data/demo
    python demo/generate_data.py data/demo --domains target \\
        --num-train 32 --num-val 16 --num-test 16
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys

# The demo is not installed: import it from the checkout.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from demo.data import (
    DEMO_SIZES,
    DOMAINS,
    SPLITS,
    generate_demo_dataset,
)


def parse_args(argv=None) -> argparse.Namespace:
    sizes = '; '.join(
        f'{domain}: ' + ', '.join(f'{n} {split}' for split, n in
                                  DEMO_SIZES[domain].items())
        for domain in DOMAINS)
    parser = argparse.ArgumentParser(
        description='Generate the synthetic demo data: a broad mixture of '
        'appearances (pre-training), a narrow target (fine-tuning, ID test) '
        'and held-out appearances (OOD test)')
    parser.add_argument(
        'out_dir', help='parent directory; each set goes to OUT_DIR/<set>')
    parser.add_argument(
        '--domains', nargs='+', default=list(DOMAINS), choices=DOMAINS,
        help='sets to generate (default: all)')
    for split in SPLITS:
        parser.add_argument(
            f'--num-{split}', type=int, metavar='N',
            help=f'{split} samples of every generated set (default: the '
            f'demo\'s sizes: {sizes})')
    parser.add_argument(
        '--size', type=int, default=64,
        help='image side in pixels (default: %(default)s)')
    parser.add_argument(
        '--seed', type=int, default=0, help='base seed (default: '
        '%(default)s)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    for domain in args.domains:
        counts = {
            split: (getattr(args, f'num_{split}')
                    if getattr(args, f'num_{split}') is not None else
                    DEMO_SIZES[domain].get(split, 0))
            for split in SPLITS
        }
        root = osp.join(args.out_dir, domain)
        try:
            names = generate_demo_dataset(
                root, domain=domain, num_train=counts['train'],
                num_val=counts['val'], num_test=counts['test'],
                size=args.size, seed=args.seed)
        except (ValueError, OSError) as err:
            print(f'error: {err}', file=sys.stderr)
            return 2
        written = ', '.join(f'{len(v)} {k}' for k, v in names.items())
        print(f'{domain}: {written} samples in {root}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
