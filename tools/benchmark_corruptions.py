"""Images per second of mmspd's corruptions against imagecorruptions 1.1.2.

Times each corruption at every severity on the same 512 x 512 RGB image
with both implementations, interleaved in one run so machine load affects
both alike, and prints images/s, the speed-up and the pixel agreement
(same seed for both). ::

    python tools/benchmark_corruptions.py
    python tools/benchmark_corruptions.py --corruptions fog --repeats 20
"""
from __future__ import annotations

import argparse
import os.path as osp
import statistics
import sys
import time

# Run from a checkout without installing the package.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import numpy as np

from mmspd.corruptions import (
    DEFAULT_CORRUPTIONS,
    SEVERITIES,
    compatible_imagecorruptions,
    corrupt,
    resolve_corruptions,
)


def test_image(size: int) -> np.ndarray:
    """scikit-image's astronaut photograph, resized to ``size``."""
    import cv2
    from skimage import data
    image = data.astronaut()
    if image.shape[:2] != (size, size):
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(image)


def reference(image: np.ndarray, name: str, severity: int,
              seed: int) -> np.ndarray:
    """imagecorruptions.corrupt with NumPy's global state seeded."""
    with compatible_imagecorruptions():
        import imagecorruptions
        np.random.seed(seed)
        return imagecorruptions.corrupt(image, severity, name)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Benchmark mmspd corruptions against imagecorruptions')
    parser.add_argument(
        '--corruptions', nargs='+', default=list(DEFAULT_CORRUPTIONS),
        help='corruptions or groups (default: the four defaults)')
    parser.add_argument(
        '--size', type=int, default=512, help='image side (default: 512)')
    parser.add_argument(
        '--repeats', type=int, default=5,
        help='timed calls per corruption, severity and implementation '
        '(default: 5)')
    args = parser.parse_args(argv)
    # imagecorruptions' definitions need images of at least 32 px.
    if args.size < 32 or args.repeats < 1:
        parser.error(f'--size must be >= 32 and --repeats >= 1, got '
                     f'{args.size} and {args.repeats}')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        names = resolve_corruptions(args.corruptions)
    except ValueError as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    image = test_image(args.size)
    print(f'{args.size}x{args.size} RGB image, severities 1-5, '
          f'{args.repeats} calls each, median per call\n')
    header = (f'{"corruption":<16}{"mmspd img/s":>13}'
              f'{"imagecorr. img/s":>18}{"speed-up":>10}'
              f'{"max |diff|":>12}{"<=1 level":>11}{"equal":>9}')
    print(header)
    print('-' * len(header))
    ratios = []
    total_fast = total_ref = 0.
    for name in names:
        fast_times, ref_times = [], []
        within, equal, max_diff = [], [], 0
        for severity in SEVERITIES:
            seed = 1000 + severity
            # Warm-up, and the parity check: same seed for both.
            ours = corrupt(image, name, severity,
                           np.random.RandomState(seed))
            theirs = reference(image, name, severity, seed)
            diff = np.abs(ours.astype(np.int16) - theirs)
            max_diff = max(max_diff, int(diff.max()))
            within.append(float((diff <= 1).mean()))
            equal.append(float((diff == 0).mean()))
            per_fast, per_ref = [], []
            for _ in range(args.repeats):
                start = time.perf_counter()
                corrupt(image, name, severity, np.random.RandomState(seed))
                per_fast.append(time.perf_counter() - start)
                start = time.perf_counter()
                reference(image, name, severity, seed)
                per_ref.append(time.perf_counter() - start)
            fast_times.append(statistics.median(per_fast))
            ref_times.append(statistics.median(per_ref))
        fast_time = sum(fast_times) / len(fast_times)
        ref_time = sum(ref_times) / len(ref_times)
        total_fast += fast_time
        total_ref += ref_time
        ratios.append(ref_time / fast_time)
        print(f'{name:<16}{1 / fast_time:>13.1f}{1 / ref_time:>18.1f}'
              f'{ratios[-1]:>9.1f}x{max_diff:>12d}'
              f'{100 * min(within):>10.3f}%{100 * min(equal):>8.2f}%')
    print('-' * len(header))
    print(f'mean speed-up over {len(names)} corruptions: '
          f'{statistics.mean(ratios):.1f}x')
    print(f'speed-up of the total time for one image each: '
          f'{total_ref / total_fast:.1f}x')
    print('(<=1 level / equal: worst severity\'s share of pixels within 1 '
          'grey level of / equal to imagecorruptions)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
