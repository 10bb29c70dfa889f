"""Deterministic synthetic segmentation data in the PASCAL-Context layout.

The demo needs data that is small enough to train on a laptop CPU in
minutes, needs no download, and has two visual *domains*, so that
fine-tuning on the second from a model pre-trained on the first is a real
transfer problem. :func:`generate_demo_dataset` draws outdoor-like scenes
(sky, ground, buildings, trees, cars, people) and writes them as mmseg's
``PascalContextDataset59`` reads them::

    ROOT/JPEGImages/<name>.jpg
    ROOT/SegmentationClassContext/<name>.png
    ROOT/ImageSets/SegmentationContext/train.txt
    ROOT/ImageSets/SegmentationContext/val.txt

Label maps are single-channel uint8 with the PASCAL-Context 60-class ids:
0 is "background" (ignored by ``reduce_zero_label=True``) and 1..59 are the
59 classes, of which the demo uses the eight in :data:`DEMO_CLASSES`.

Both domains share the scene layouts' distribution and the class textures'
kinds (stripes, window grids, waves, ...) but differ in colour palette,
texture scale, lighting (domain B has a strong illumination gradient, a
colour cast and lower contrast) and sensor noise. Colour alone therefore
does not carry over from A to B; shape and texture partly do.

Every sample is drawn from its own generator seeded by
``(seed, domain, split, index)``, so the same arguments give the same bytes,
and a sample does not depend on how many others are drawn.
"""
from __future__ import annotations

import os
import os.path as osp

import cv2
import numpy as np

# PASCAL-Context label ids (1-based index into PascalContextDataset59's
# classes; 0 is the ignored background).
DEMO_CLASSES: dict[str, int] = {
    'building': 11,
    'car': 14,
    'grass': 29,
    'person': 37,
    'road': 41,
    'sky': 47,
    'tree': 53,
    'water': 57,
}

DOMAINS: tuple[str, ...] = ('A', 'B')
SPLITS: tuple[str, ...] = ('train', 'val')

IMG_DIR = 'JPEGImages'
ANN_DIR = 'SegmentationClassContext'
SPLIT_DIR = osp.join('ImageSets', 'SegmentationContext')

# Base RGB colours per domain, in [0, 1]. Domain B is a different palette,
# not a shifted copy of A, so a colour classifier trained on A is wrong on B.
_PALETTES: dict[str, dict[str, tuple[float, float, float]]] = {
    'A': {
        'sky': (0.45, 0.65, 0.95),
        'grass': (0.25, 0.60, 0.20),
        'road': (0.42, 0.42, 0.45),
        'water': (0.10, 0.30, 0.65),
        'building': (0.70, 0.55, 0.45),
        'tree': (0.10, 0.38, 0.12),
        'car': (0.80, 0.12, 0.10),
        'person': (0.90, 0.75, 0.55),
    },
    'B': {
        'sky': (0.95, 0.60, 0.35),
        'grass': (0.70, 0.65, 0.30),
        'road': (0.35, 0.22, 0.20),
        'water': (0.25, 0.55, 0.50),
        'building': (0.55, 0.58, 0.70),
        'tree': (0.45, 0.40, 0.15),
        'car': (0.20, 0.25, 0.85),
        'person': (0.55, 0.35, 0.60),
    },
}

# Per-domain appearance settings: texture scale (period multiplier),
# sensor noise std, and lighting (gradient strength, contrast, colour cast).
_STYLE = {
    'A': {'scale': 1.0, 'noise': 0.02, 'gradient': 0.0, 'contrast': 1.0,
          'cast': (1.0, 1.0, 1.0)},
    'B': {'scale': 1.6, 'noise': 0.06, 'gradient': 0.45, 'contrast': 0.7,
          'cast': (1.05, 0.95, 0.85)},
}

_STUFF_GROUND = ('grass', 'road', 'water')
_THINGS = ('building', 'tree', 'car', 'person')


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates normalised to [0, 1), rows then columns."""
    coords = (np.arange(size, dtype=np.float64) + 0.5) / size
    return np.meshgrid(coords, coords, indexing='ij')


def _smooth_noise(rng: np.random.Generator, size: int,
                  cells: int) -> np.ndarray:
    """Value noise in [0, 1]: a random ``cells`` grid upsampled bilinearly."""
    cells = max(2, int(cells))
    coarse = rng.random((cells, cells)).astype(np.float32)
    return cv2.resize(coarse, (size, size),
                      interpolation=cv2.INTER_LINEAR).astype(np.float64)


def _texture(name: str, rng: np.random.Generator, size: int,
             domain: str) -> np.ndarray:
    """The class's full-image appearance, HxWx3 float RGB in [0, 1]."""
    yy, xx = _grid(size)
    style = _STYLE[domain]
    scale = style['scale']
    base = np.asarray(_PALETTES[domain][name], dtype=np.float64)
    # Instance-level jitter keeps classes from being single flat colours.
    base = np.clip(base + rng.normal(0.0, 0.04, 3), 0.0, 1.0)
    phase = rng.random()
    if name == 'sky':
        shade = 0.85 + 0.25 * yy + 0.08 * _smooth_noise(rng, size, 3)
    elif name == 'grass':
        shade = 0.75 + 0.5 * rng.random((size, size))
    elif name == 'road':
        stripes = np.sin(2 * np.pi * (xx * 6 / scale + phase)) > 0.6
        shade = 0.9 + 0.3 * stripes + 0.1 * rng.random((size, size))
    elif name == 'water':
        shade = 0.8 + 0.3 * np.sin(
            2 * np.pi * (yy * 10 / scale + 0.3 * np.sin(6 * xx) + phase))
    elif name == 'building':
        period = 8 / scale
        windows = ((np.sin(2 * np.pi * yy * period) > 0.3)
                   & (np.sin(2 * np.pi * (xx * period + phase)) > 0.3))
        shade = 1.0 - 0.5 * windows
    elif name == 'tree':
        shade = 0.6 + 0.8 * _smooth_noise(rng, size, int(10 / scale))
    elif name == 'car':
        shade = 0.8 + 0.4 * (yy % (0.25 * scale) < 0.06 * scale)
    elif name == 'person':
        shade = 0.9 + 0.2 * np.sin(2 * np.pi * (yy * 5 / scale + phase))
    else:
        raise KeyError(name)
    return np.clip(shade[..., None] * base, 0.0, 1.0)


def _disk(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, ry: float,
          rx: float) -> np.ndarray:
    return ((yy - cy) / ry)**2 + ((xx - cx) / rx)**2 <= 1.0


def _layout(rng: np.random.Generator, size: int) -> np.ndarray:
    """A scene's label map (PASCAL-Context ids), HxW uint8."""
    yy, xx = _grid(size)
    ids = DEMO_CLASSES
    label = np.zeros((size, size), dtype=np.uint8)

    # A wavy horizon splits sky from one or two kinds of ground.
    horizon = (rng.uniform(0.3, 0.55) + rng.uniform(-0.08, 0.08) * xx +
               0.03 * np.sin(2 * np.pi * (xx * rng.uniform(1, 3) +
                                          rng.random())))
    sky = yy < horizon
    label[sky] = ids['sky']
    grounds = rng.choice(len(_STUFF_GROUND), size=2, replace=False)
    split_x = rng.uniform(0.3, 0.7) + 0.3 * (yy - 0.5) * rng.uniform(-1, 1)
    left = xx < split_x
    if rng.random() < 0.5:
        label[~sky] = ids[_STUFF_GROUND[grounds[0]]]
    else:
        label[~sky & left] = ids[_STUFF_GROUND[grounds[0]]]
        label[~sky & ~left] = ids[_STUFF_GROUND[grounds[1]]]

    base_y = float(horizon.mean())
    for _ in range(int(rng.integers(1, 5))):
        name = _THINGS[int(rng.integers(len(_THINGS)))]
        cx = rng.uniform(0.1, 0.9)
        if name == 'building':
            w, h = rng.uniform(0.12, 0.3), rng.uniform(0.2, 0.45)
            mask = ((np.abs(xx - cx) < w / 2) & (yy < base_y + 0.05)
                    & (yy > base_y + 0.05 - h))
        elif name == 'tree':
            r = rng.uniform(0.07, 0.14)
            cy = base_y + rng.uniform(-0.15, 0.05)
            mask = (_disk(yy, xx, cy, cx, r, r * rng.uniform(0.7, 1.1))
                    | ((np.abs(xx - cx) < r * 0.2) & (yy > cy)
                       & (yy < cy + 2 * r)))
        elif name == 'car':
            cy = rng.uniform(base_y + 0.1, 0.9)
            w, h = rng.uniform(0.15, 0.3), rng.uniform(0.06, 0.1)
            mask = ((np.abs(xx - cx) < w / 2) & (np.abs(yy - cy) < h / 2)
                    | _disk(yy, xx, cy - h / 2, cx, h * 0.6, w * 0.3))
        else:  # person
            cy = rng.uniform(base_y + 0.05, 0.85)
            h = rng.uniform(0.15, 0.25)
            mask = (_disk(yy, xx, cy, cx, h / 2, h / 7)
                    | _disk(yy, xx, cy - h / 2 - h / 10, cx, h / 9, h / 9))
        label[mask] = ids[name]

    # Unannotated clutter, as real PASCAL-Context images have: label 0.
    if rng.random() < 0.3:
        cy, cx = rng.uniform(0.2, 0.9), rng.uniform(0.1, 0.9)
        label[_disk(yy, xx, cy, cx, rng.uniform(0.04, 0.1),
                    rng.uniform(0.04, 0.1))] = 0
    return label


def _render(label: np.ndarray, rng: np.random.Generator,
            domain: str) -> np.ndarray:
    """The image for a label map, HxWx3 uint8 RGB."""
    size = label.shape[0]
    image = rng.random((size, size, 3))  # clutter under label 0
    for name, class_id in DEMO_CLASSES.items():
        mask = label == class_id
        if mask.any():
            image[mask] = _texture(name, rng, size, domain)[mask]

    style = _STYLE[domain]
    yy, xx = _grid(size)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * (xx - 0.5) + np.sin(angle) * (yy - 0.5)
    light = 1.0 + style['gradient'] * ramp * 2.0
    image = image * light[..., None] * np.asarray(style['cast'])
    image = 0.5 + style['contrast'] * (image - 0.5)
    image = image + rng.normal(0.0, style['noise'], image.shape)
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _check_args(domain: str, num_train: int, num_val: int, size: int,
                seed: int) -> None:
    if domain not in DOMAINS:
        raise ValueError(f'Invalid domain: {domain!r}; expected one of '
                         f'{list(DOMAINS)}')
    for name, value in (('num_train', num_train), ('num_val', num_val)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f'Invalid {name}: {value!r}; expected an '
                             'integer >= 1')
    if not isinstance(size, (int, np.integer)) or size < 16:
        raise ValueError(f'Invalid size: {size!r}; expected an integer '
                         '>= 16 (pixels per side)')
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f'Invalid seed: {seed!r}; expected an integer >= 0')


def demo_sample(domain: str = 'A',
                split: str = 'train',
                index: int = 0,
                size: int = 64,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Draw one sample without writing anything.

    Args:
        domain (str): ``'A'`` or ``'B'``. Defaults to ``'A'``.
        split (str): ``'train'`` or ``'val'``. Defaults to ``'train'``.
        index (int): Sample index within the split. Defaults to 0.
        size (int): Image side in pixels. Defaults to 64.
        seed (int): Base seed. Defaults to 0.

    Returns:
        tuple[np.ndarray, np.ndarray]: The HxWx3 uint8 RGB image and the HxW
        uint8 label map (PASCAL-Context ids, 0 = ignored background).
    """
    _check_args(domain, 1, 1, size, seed)
    if split not in SPLITS:
        raise ValueError(f'Invalid split: {split!r}; expected one of '
                         f'{list(SPLITS)}')
    if index < 0:
        raise ValueError(f'Invalid index: {index!r}; expected >= 0')
    # The layout ignores the domain, so both domains share one scene
    # distribution; the appearance stream depends on it.
    split_id = SPLITS.index(split)
    layout_rng = np.random.default_rng([seed, split_id, index, 0])
    label = _layout(layout_rng, size)
    look_rng = np.random.default_rng(
        [seed, split_id, index, 1 + DOMAINS.index(domain)])
    return _render(label, look_rng, domain), label


def generate_demo_dataset(root: str,
                          domain: str = 'A',
                          num_train: int = 64,
                          num_val: int = 16,
                          size: int = 64,
                          seed: int = 0) -> dict[str, list[str]]:
    """Write a synthetic dataset for ``PascalContextDataset59`` to ``root``.

    Existing files of the same names are overwritten; other files under
    ``root`` are left alone, but the split files list only this call's
    samples. Output bytes depend only on the arguments (and the installed
    OpenCV's JPEG/PNG encoders).

    Args:
        root (str): Dataset root, created if missing.
        domain (str): Visual domain, ``'A'`` or ``'B'``. Defaults to ``'A'``.
        num_train (int): Number of training samples. Defaults to 64.
        num_val (int): Number of validation samples. Defaults to 16.
        size (int): Image side in pixels (square images). Defaults to 64.
        seed (int): Base seed; layouts for a given seed are shared by both
            domains so that only the appearance differs. Defaults to 0.

    Returns:
        dict[str, list[str]]: Sample names per split (``'train'``,
        ``'val'``), as written to the split files.
    """
    _check_args(domain, num_train, num_val, size, seed)
    if osp.exists(root) and not osp.isdir(root):
        raise NotADirectoryError(f'Demo data root {root!r} exists and is not '
                                 'a directory')
    for sub in (IMG_DIR, ANN_DIR, SPLIT_DIR):
        os.makedirs(osp.join(root, sub), exist_ok=True)

    names: dict[str, list[str]] = {}
    counts = {'train': num_train, 'val': num_val}
    for split in SPLITS:
        names[split] = []
        for index in range(counts[split]):
            name = f'demo{domain}_{split}_{index:05d}'
            image, label = demo_sample(domain, split, index, size, seed)
            img_path = osp.join(root, IMG_DIR, name + '.jpg')
            ann_path = osp.join(root, ANN_DIR, name + '.png')
            if not cv2.imwrite(img_path, image[..., ::-1],
                               [cv2.IMWRITE_JPEG_QUALITY, 95]):
                raise OSError(f'Could not write {img_path!r}')
            if not cv2.imwrite(ann_path, label):
                raise OSError(f'Could not write {ann_path!r}')
            names[split].append(name)
        split_file = osp.join(root, SPLIT_DIR, f'{split}.txt')
        with open(split_file, 'w', encoding='utf-8') as f:
            f.write(''.join(n + '\n' for n in names[split]))
    return names
