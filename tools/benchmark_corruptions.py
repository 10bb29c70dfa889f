"""Speed of mmspd's corruptions against imagecorruptions 1.1.2.

For each corruption and severity, times three routes on the same
photograph (scikit-image's astronaut, resized to each ``--sizes``):

- ``imagecorr.``: ``imagecorruptions.corrupt`` on the RGB image;
- ``bare``: ``mmspd.corruptions.corrupt`` on the RGB image, with the
  image's ``RandomState`` (``reseeded_state(seed)``, as the transform);
- ``transform``: the ``ImageCorruption`` pipeline step, built from mmseg's
  ``TRANSFORMS`` and called on the BGR image as ``LoadImageFromFile``
  gives it (its seeding, colour order and checks included).

The three are interleaved call by call, in rotating order, so machine load
affects them alike; the fastest of ``--repeats`` calls of each counts. It
prints ms per image, the speed-up of the transform and of the bare
function over imagecorruptions and what the transform adds to the bare
function, per severity, per corruption (its five severities' times
summed) and for all corruptions together. It also checks the pixels: the
transform must give the bare function's (channels swapped); deterministic
corruptions must be within one grey level of imagecorruptions on 99.9% of
the pixels; random ones draw other numbers, so their mean change from the
clean image is compared. OpenCV runs on ``--threads`` threads (default 1;
set ``OMP_NUM_THREADS`` too for a fair single-thread comparison). ::

    OMP_NUM_THREADS=1 python tools/benchmark_corruptions.py
    python tools/benchmark_corruptions.py --corruptions fog --repeats 30 \\
        --sizes 512x512
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys
import time

# Run from a checkout without installing the package.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import cv2
import numpy as np

from mmspd.corruptions import (
    DEFAULT_CORRUPTIONS,
    SEVERITIES,
    compatible_imagecorruptions,
    corrupt,
    image_seed,
    reseeded_state,
    resolve_corruptions,
)

RANDOM = ('gaussian_noise', 'shot_noise', 'impulse_noise', 'speckle_noise',
          'fog', 'frost', 'snow', 'spatter', 'motion_blur',
          'elastic_transform', 'glass_blur')
ROUTES = ('imagecorr.', 'bare', 'transform')
IMAGE_PATH = 'JPEGImages/astronaut.jpg'


def test_image(height: int, width: int) -> np.ndarray:
    """scikit-image's astronaut photograph (RGB), resized."""
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
        description='Benchmark mmspd corruptions (bare and through the '
        'ImageCorruption transform) against imagecorruptions')
    parser.add_argument(
        '--corruptions', nargs='+', default=list(DEFAULT_CORRUPTIONS),
        help='corruptions or groups (default: the four defaults)')
    parser.add_argument(
        '--sizes', nargs='+', type=_size, default=[(512, 512), (480, 640)],
        metavar='HxW', help='image sizes (default: 512x512 480x640)')
    parser.add_argument(
        '--repeats', type=int, default=15,
        help='timed calls per corruption, severity and route; the fastest '
        'counts (default: 15)')
    parser.add_argument(
        '--threads', type=int, default=1,
        help='OpenCV threads, cv2.setNumThreads (default: 1)')
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f'--repeats must be >= 1, got {args.repeats}')
    if args.threads < 1:
        parser.error(f'--threads must be >= 1, got {args.threads}')
    return args


def _routes(image: np.ndarray, name: str, severity: int) -> dict:
    """The three routes as argument-free callables."""
    from mmseg.registry import TRANSFORMS

    import mmspd  # noqa: F401  (registers ImageCorruption)
    transform = TRANSFORMS.build(dict(
        type='ImageCorruption', corruption=name, severity=severity))
    bgr = np.ascontiguousarray(image[..., ::-1])
    seed = image_seed(0, IMAGE_PATH, name, severity)
    return {
        'imagecorr.': lambda: reference(image, name, severity, seed),
        'bare': lambda: corrupt(image, name, severity,
                                reseeded_state(seed)),
        'transform': lambda: transform({
            'img': bgr,
            'img_path': IMAGE_PATH
        })['img'],
    }


def _parity(name: str, image: np.ndarray, outputs: dict) -> float:
    """Agreement with imagecorruptions (see the module docstring)."""
    ours, theirs = outputs['bare'], outputs['imagecorr.']
    if not np.array_equal(outputs['transform'], ours[..., ::-1]):
        raise RuntimeError(f'{name}: the transform and the bare function '
                           'gave different pixels')
    if name in RANDOM:
        change = [np.abs(x.astype(np.float64) - image).mean()
                  for x in (ours, theirs)]
        return change[0] / change[1]
    return float((np.abs(ours.astype(np.int16) - theirs) <= 1).mean())


def measure(image: np.ndarray, name: str, severity: int,
            repeats: int) -> tuple[dict, float]:
    """Fastest time of each route, and the parity figure."""
    calls = _routes(image, name, severity)
    outputs = {route: call() for route, call in calls.items()}  # warm-up
    parity = _parity(name, image, outputs)
    best = dict.fromkeys(ROUTES, float('inf'))
    for repeat in range(repeats):
        shift = repeat % len(ROUTES)
        for route in ROUTES[shift:] + ROUTES[:shift]:
            start = time.perf_counter()
            calls[route]()
            best[route] = min(best[route], time.perf_counter() - start)
    return best, parity


def _row(label: str, times: dict, note: str = '') -> str:
    ref, bare, trans = (1e3 * times[route] for route in ROUTES)
    return (f'{label:<22}{ref:>10.2f}{bare:>8.2f}{trans:>10.2f}'
            f'{ref / trans:>9.1f}x{ref / bare:>9.1f}x'
            f'{100 * (trans / bare - 1):>+9.1f}%  {note}').rstrip()


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        names = resolve_corruptions(args.corruptions)
    except ValueError as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    cv2.setNumThreads(args.threads)
    print(f'fastest of {args.repeats} interleaved calls per route, ms per '
          f'image; OpenCV threads: {args.threads}\n'
          'speed-ups over imagecorruptions: through the transform (ic/tr) '
          'and of the bare\nfunction (ic/bare); tr-bare: what the '
          'transform adds to the bare function.\nparity: deterministic: '
          'share of pixels within 1 grey level of imagecorruptions;\n'
          '        random: mean |change from clean| over '
          'imagecorruptions\'')
    for height, width in args.sizes:
        image = test_image(height, width)
        header = (f'{"corruption  severity":<22}{"imagecorr.":>10}'
                  f'{"bare":>8}{"transform":>10}{"ic/tr":>10}'
                  f'{"ic/bare":>10}{"tr-bare":>10}  parity')
        print(f'\n{height}x{width}\n{header}\n{"-" * len(header)}')
        total = dict.fromkeys(ROUTES, 0.)
        summary = []
        for name in names:
            summed = dict.fromkeys(ROUTES, 0.)
            for severity in SEVERITIES:
                times, parity = measure(image, name, severity, args.repeats)
                note = (f'change ratio {parity:.3f}' if name in RANDOM else
                        f'{100 * parity:.2f}% within 1 level')
                print(_row(f'{name}  {severity}', times, note))
                for route in ROUTES:
                    summed[route] += times[route]
                    total[route] += times[route]
            summary.append(_row(f'{name}  1-5', summed))
        print('-' * len(header))
        print('\n'.join(summary))
        print(_row('all together', total))
    return 0


if __name__ == '__main__':
    sys.exit(main())
