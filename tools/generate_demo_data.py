"""Generate the synthetic two-domain demo dataset.

Writes one PASCAL-Context-layout dataset per domain under
``OUT_DIR/domain_<X>`` (see :mod:`mmspd.datasets.demo_data`)::

    python tools/generate_demo_data.py data/demo
    python tools/generate_demo_data.py data/demo --domains B --num-train 32
"""
import argparse
import os.path as osp
import sys

# Run from a checkout without installing the package.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmspd.datasets.demo_data import DOMAINS, generate_demo_dataset


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Generate the synthetic two-domain demo dataset')
    parser.add_argument(
        'out_dir', help='parent directory; each domain goes to '
        'OUT_DIR/domain_<X>')
    parser.add_argument(
        '--domains', nargs='+', default=list(DOMAINS), choices=DOMAINS,
        help='domains to generate (default: %(default)s)')
    parser.add_argument(
        '--num-train', type=int, default=64,
        help='training samples per domain (default: %(default)s)')
    parser.add_argument(
        '--num-val', type=int, default=16,
        help='validation samples per domain (default: %(default)s)')
    parser.add_argument(
        '--size', type=int, default=64,
        help='image side in pixels (default: %(default)s)')
    parser.add_argument(
        '--seed', type=int, default=0,
        help='base seed; domain X uses seed + its index so the two domains '
        'have different scenes (default: %(default)s)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    for domain in args.domains:
        root = osp.join(args.out_dir, f'domain_{domain}')
        try:
            names = generate_demo_dataset(
                root, domain=domain, num_train=args.num_train,
                num_val=args.num_val, size=args.size,
                seed=args.seed + DOMAINS.index(domain))
        except (ValueError, OSError) as err:
            print(f'error: {err}', file=sys.stderr)
            return 2
        print(f'domain {domain}: {len(names["train"])} train, '
              f'{len(names["val"])} val samples in {root}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
