"""Speed of mmspd's corruptions against imagecorruptions 1.1.2.

Times each corruption at every severity on the same RGB photograph with
both implementations, interleaved call by call in one run so machine load
affects both alike, keeps the fastest of ``--repeats`` calls of each, and
prints ms per image, the speed-up per corruption (time of its five
severities) and for all of them together, at each ``--sizes``. It also
checks the pixels: deterministic corruptions must be within one grey level
of imagecorruptions on 99.9% of the pixels; random ones draw other numbers,
so their mean change from the clean image is compared. ::

    python tools/benchmark_corruptions.py
    python tools/benchmark_corruptions.py --corruptions fog --repeats 20 \\
        --sizes 512x512
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys
import time

# Run from a checkout without installing the package.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import numpy as np  # noqa: E402

from mmspd.corruptions import (  # noqa: E402
    DEFAULT_CORRUPTIONS,
    SEVERITIES,
    compatible_imagecorruptions,
    corrupt,
    resolve_corruptions,
)

RANDOM = ('gaussian_noise', 'shot_noise', 'impulse_noise', 'speckle_noise',
          'fog', 'frost', 'snow', 'spatter', 'motion_blur',
          'elastic_transform', 'glass_blur')


def test_image(height: int, width: int) -> np.ndarray:
    """scikit-image's astronaut photograph, resized."""
    import cv2
    from skimage import data
    image = cv2.resize(data.astronaut(), (width, height),
                       interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(image)


def reference(image: np.ndarray, name: str, severity: int,
              seed: int) -> np.ndarray:
    """imagecorruptions.corrupt with NumPy's global state seeded."""
    with compatible_imagecorruptions():
        import imagecorruptions
        np.random.seed(seed)
        return imagecorruptions.corrupt(image, severity, name)


def _size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'invalid size {text!r}; expected HEIGHTxWIDTH, e.g. 480x640')
    if min(height, width) < 32:
        raise argparse.ArgumentTypeError(
            f'size {text!r} is below 32 pixels, the least imagecorruptions '
            'accepts')
    return height, width


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Benchmark mmspd corruptions against imagecorruptions')
    parser.add_argument(
        '--corruptions', nargs='+', default=list(DEFAULT_CORRUPTIONS),
        help='corruptions or groups (default: the four defaults)')
    parser.add_argument(
        '--sizes', nargs='+', type=_size, default=[(512, 512), (480, 640)],
        metavar='HxW', help='image sizes (default: 512x512 480x640)')
    parser.add_argument(
        '--repeats', type=int, default=7,
        help='timed calls per corruption, severity and implementation; the '
        'fastest counts (default: 7)')
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f'--repeats must be >= 1, got {args.repeats}')
    return args


def _timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def measure(image: np.ndarray, name: str, repeats: int) -> dict:
    """Fastest time of each implementation per severity, and parity."""
    ours_times, ref_times, agreement = [], [], []
    for severity in SEVERITIES:
        seed = 1000 + severity
        ours = corrupt(image, name, severity, np.random.RandomState(seed))
        theirs = reference(image, name, severity, seed)
        if name in RANDOM:
            change = [np.abs(x.astype(np.float64) - image).mean()
                      for x in (ours, theirs)]
            agreement.append(change[0] / change[1])
        else:
            diff = np.abs(ours.astype(np.int16) - theirs)
            agreement.append(float((diff <= 1).mean()))
        best_ours = best_ref = float('inf')
        for _ in range(repeats):
            best_ours = min(best_ours, _timed(lambda: corrupt(
                image, name, severity, np.random.RandomState(seed))))
            best_ref = min(best_ref, _timed(
                lambda: reference(image, name, severity, seed)))
        ours_times.append(best_ours)
        ref_times.append(best_ref)
    return {'ours': ours_times, 'ref': ref_times, 'agreement': agreement}


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        names = resolve_corruptions(args.corruptions)
    except ValueError as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    print(f'severities 1-5, fastest of {args.repeats} interleaved calls; '
          'ms per image averaged over the severities\n'
          'parity: deterministic: worst severity\'s share of pixels within '
          '1 grey level;\n        random: mean |change from clean| over '
          'imagecorruptions\', worst severity')
    for height, width in args.sizes:
        image = test_image(height, width)
        header = (f'{"corruption":<18}{"mmspd ms":>10}{"imagecorr. ms":>15}'
                  f'{"speed-up":>10}  parity')
        print(f'\n{height}x{width}\n{header}\n{"-" * len(header)}')
        total_ours = total_ref = 0.
        for name in names:
            result = measure(image, name, args.repeats)
            ours, ref = sum(result['ours']), sum(result['ref'])
            total_ours += ours
            total_ref += ref
            worst = (min(result['agreement']) if name not in RANDOM else
                     max(result['agreement'], key=lambda r: abs(r - 1)))
            parity = (f'change ratio {worst:.3f}' if name in RANDOM else
                      f'{100 * worst:.2f}% within 1 level')
            print(f'{name:<18}{1e3 * ours / 5:>10.2f}{1e3 * ref / 5:>15.2f}'
                  f'{ref / ours:>9.1f}x  {parity}')
        print(f'{"all together":<18}{1e3 * total_ours / 5:>10.2f}'
              f'{1e3 * total_ref / 5:>15.2f}'
              f'{total_ref / total_ours:>9.1f}x')
    return 0


if __name__ == '__main__':
    sys.exit(main())
