"""Deterministic synthetic segmentation data in the PASCAL-Context layout.

The demo asks the paper's question on data a laptop CPU trains on in
minutes, with no download: does a model pre-trained on *broad* data keep
more of its robustness when fine-tuned on a *narrow* target with SPD than
with AdamW? :func:`generate_demo_dataset` draws outdoor-like scenes (sky,
ground, buildings, trees, cars, people) and renders each with an
:class:`Appearance` (class colours, texture scale, lighting, blur, sensor
noise). Three data sets differ only in how appearances are drawn:

- ``'broad'`` (pre-training): every image has its own random appearance:
  random class colours, texture scales, lighting, contrast, colour casts,
  blur and noise levels. Colour says nothing about the class; texture,
  shape and position do.
- ``'target'`` (fine-tuning and in-distribution test): one fixed
  appearance, :data:`TARGET_APPEARANCE`: sharp, evenly lit, low noise, and
  a fixed palette in which colour alone identifies every class.
- ``'ood'`` (out-of-distribution test): new scenes, each with its own
  appearance drawn as for ``'broad'`` (from a separate random stream), so
  none is the target's.

Files are written as mmseg's ``PascalContextDataset59`` reads them::

    ROOT/JPEGImages/<name>.jpg
    ROOT/SegmentationClassContext/<name>.png
    ROOT/ImageSets/SegmentationContext/{train,val,test}.txt

Label maps are single-channel uint8 with the PASCAL-Context 60-class ids:
0 is "background" (ignored by ``reduce_zero_label=True``) and 1..59 are the
59 classes, of which the demo uses the eight in :data:`DEMO_CLASSES`.

Every sample is drawn from its own generators seeded by
``(seed, domain, split, index)``, so the same arguments give the same
bytes, and a sample does not depend on how many others are drawn.
"""
from __future__ import annotations

import colorsys
import os
import os.path as osp
from dataclasses import dataclass

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

#: The data sets: broad pre-training mixture, narrow target, held-out
#: appearances.
DOMAINS: tuple[str, ...] = ('broad', 'target', 'ood')
SPLITS: tuple[str, ...] = ('train', 'val', 'test')

#: Samples per split of each set in the full demo (demo/run_demo.py).
DEMO_SIZES: dict[str, dict[str, int]] = {
    'broad': {'train': 1024, 'val': 64},
    'target': {'train': 16, 'val': 32, 'test': 32},
    'ood': {'test': 32},
}

IMG_DIR = 'JPEGImages'
ANN_DIR = 'SegmentationClassContext'
SPLIT_DIR = osp.join('ImageSets', 'SegmentationContext')

RGB = tuple[float, float, float]


@dataclass(frozen=True)
class Appearance:
    """How a scene is rendered.

    Args:
        palette (dict[str, tuple]): Base RGB colour in [0, 1] per class of
            :data:`DEMO_CLASSES`.
        scale (float): Texture period multiplier (> 1: coarser).
        gradient (float): Strength of a linear illumination gradient.
        angle (float): Direction of the gradient, radians.
        brightness (float): Overall illumination factor.
        contrast (float): Contrast around mid-grey (1: unchanged).
        cast (tuple): Per-channel RGB colour cast factors.
        blur (float): Gaussian blur sigma in pixels (0: sharp).
        noise (float): Standard deviation of Gaussian sensor noise, on the
            [0, 1] intensity scale.
    """
    palette: dict[str, RGB]
    scale: float = 1.0
    gradient: float = 0.0
    angle: float = 0.0
    brightness: float = 1.0
    contrast: float = 1.0
    cast: RGB = (1.0, 1.0, 1.0)
    blur: float = 0.0
    noise: float = 0.0


#: The narrow fine-tuning domain: one palette of well separated colours,
#: mild fixed lighting, no blur, little noise.
TARGET_APPEARANCE = Appearance(
    palette={
        'sky': (0.95, 0.60, 0.35),
        'grass': (0.70, 0.65, 0.30),
        'road': (0.35, 0.22, 0.20),
        'water': (0.25, 0.55, 0.50),
        'building': (0.55, 0.58, 0.70),
        'tree': (0.45, 0.40, 0.15),
        'car': (0.20, 0.25, 0.85),
        'person': (0.55, 0.35, 0.60),
    },
    scale=1.0,
    gradient=0.15,
    angle=0.5,
    noise=0.02)

_STUFF_GROUND = ('grass', 'road', 'water')
_THINGS = ('building', 'tree', 'car', 'person')


def broad_appearance(rng: np.random.Generator) -> Appearance:
    """Draw one appearance of the broad pre-training mixture.

    The ranges cover the target's appearance and the four default
    corruptions' kinds of change (contrast, brightness, blur, noise) at
    mild levels.

    Args:
        rng (np.random.Generator): Source of randomness.

    Returns:
        Appearance: Random class colours (any hue), texture scale in
        [0.7, 1.5], lighting, contrast, colour cast, blur (none in 40% of
        the draws) and noise.
    """
    palette = {}
    for name in DEMO_CLASSES:
        hue, sat, val = rng.random(), rng.uniform(0.3, 0.9), rng.uniform(
            0.35, 0.95)
        palette[name] = colorsys.hsv_to_rgb(hue, sat, val)
    blur = 0.0 if rng.random() < 0.4 else rng.uniform(0.4, 1.2)
    return Appearance(
        palette=palette,
        scale=float(np.exp(rng.uniform(np.log(0.7), np.log(1.5)))),
        gradient=rng.uniform(0.0, 0.4),
        angle=rng.uniform(0.0, 2 * np.pi),
        brightness=rng.uniform(0.7, 1.25),
        contrast=rng.uniform(0.6, 1.2),
        cast=tuple(rng.uniform(0.85, 1.15, 3)),
        blur=float(blur),
        noise=rng.uniform(0.0, 0.06))


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


def _shade(name: str, rng: np.random.Generator, size: int,
           scale: float) -> np.ndarray:
    """The class's texture: an HxW intensity pattern around 1.

    Each class has its own kind of pattern (stripes, window grids, waves,
    blobs, ...), which identifies it whatever its colour.
    """
    yy, xx = _grid(size)
    phase = rng.random()
    if name == 'sky':
        return 0.85 + 0.25 * yy + 0.08 * _smooth_noise(rng, size, 3)
    if name == 'grass':
        return 0.75 + 0.5 * rng.random((size, size))
    if name == 'road':
        stripes = np.sin(2 * np.pi * (xx * 6 / scale + phase)) > 0.6
        return 0.9 + 0.3 * stripes + 0.1 * rng.random((size, size))
    if name == 'water':
        return 0.8 + 0.3 * np.sin(
            2 * np.pi * (yy * 10 / scale + 0.3 * np.sin(6 * xx) + phase))
    if name == 'building':
        period = 8 / scale
        windows = ((np.sin(2 * np.pi * yy * period) > 0.3)
                   & (np.sin(2 * np.pi * (xx * period + phase)) > 0.3))
        return 1.0 - 0.5 * windows
    if name == 'tree':
        return 0.6 + 0.8 * _smooth_noise(rng, size, int(10 / scale))
    if name == 'car':
        return 0.8 + 0.4 * (yy % (0.25 * scale) < 0.06 * scale)
    if name == 'person':
        return 0.9 + 0.2 * np.sin(2 * np.pi * (yy * 5 / scale + phase))
    raise KeyError(name)


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
        # Things are a few pixels wide at 64x64: large enough to carry
        # their texture.
        if name == 'building':
            w, h = rng.uniform(0.15, 0.3), rng.uniform(0.25, 0.45)
            mask = ((np.abs(xx - cx) < w / 2) & (yy < base_y + 0.05)
                    & (yy > base_y + 0.05 - h))
        elif name == 'tree':
            r = rng.uniform(0.09, 0.16)
            cy = base_y + rng.uniform(-0.15, 0.05)
            mask = (_disk(yy, xx, cy, cx, r, r * rng.uniform(0.7, 1.1))
                    | ((np.abs(xx - cx) < r * 0.2) & (yy > cy)
                       & (yy < cy + 2 * r)))
        elif name == 'car':
            cy = rng.uniform(base_y + 0.1, 0.88)
            w, h = rng.uniform(0.2, 0.35), rng.uniform(0.09, 0.14)
            mask = ((np.abs(xx - cx) < w / 2) & (np.abs(yy - cy) < h / 2)
                    | _disk(yy, xx, cy - h / 2, cx, h * 0.6, w * 0.3))
        else:  # person
            cy = rng.uniform(base_y + 0.05, 0.82)
            h = rng.uniform(0.2, 0.32)
            mask = (_disk(yy, xx, cy, cx, h / 2, h / 5)
                    | _disk(yy, xx, cy - h / 2 - h / 10, cx, h / 9, h / 9))
        label[mask] = ids[name]

    # Unannotated clutter, as real PASCAL-Context images have: label 0.
    if rng.random() < 0.3:
        cy, cx = rng.uniform(0.2, 0.9), rng.uniform(0.1, 0.9)
        label[_disk(yy, xx, cy, cx, rng.uniform(0.04, 0.1),
                    rng.uniform(0.04, 0.1))] = 0
    return label


def render(label: np.ndarray, look: Appearance,
           rng: np.random.Generator) -> np.ndarray:
    """The image of a label map in an appearance.

    Args:
        label (np.ndarray): HxW label map (PASCAL-Context ids).
        look (Appearance): How to render it.
        rng (np.random.Generator): Texture phases, colour jitter, noise.

    Returns:
        np.ndarray: HxWx3 uint8 RGB image.
    """
    size = label.shape[0]
    image = rng.random((size, size, 3))  # clutter under label 0
    for name, class_id in DEMO_CLASSES.items():
        mask = label == class_id
        if mask.any():
            # Instance-level jitter keeps classes from being flat colours.
            base = np.clip(
                np.asarray(look.palette[name]) + rng.normal(0.0, 0.04, 3),
                0.0, 1.0)
            texture = _shade(name, rng, size, look.scale)
            image[mask] = np.clip(texture[mask][:, None] * base, 0.0, 1.0)

    yy, xx = _grid(size)
    ramp = np.cos(look.angle) * (xx - 0.5) + np.sin(look.angle) * (yy - 0.5)
    light = look.brightness * (1.0 + look.gradient * ramp * 2.0)
    image = image * light[..., None] * np.asarray(look.cast)
    image = 0.5 + look.contrast * (image - 0.5)
    if look.blur > 0:
        image = cv2.GaussianBlur(image, (0, 0), look.blur)
    image = image + rng.normal(0.0, look.noise, image.shape)
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _check_int(name: str, value: int, minimum: int, unit: str = '') -> None:
    if not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f'Invalid {name}: {value!r}; expected an integer '
                         f'>= {minimum}{unit}')


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f'Invalid {name}: {value!r}; expected one of '
                         f'{list(choices)}')


def _streams(domain: str, split: str, index: int,
             seed: int) -> tuple[np.random.Generator, ...]:
    """Independent generators for layout, appearance and rendering."""
    _check_choice('domain', domain, DOMAINS)
    _check_choice('split', split, SPLITS)
    _check_int('index', index, 0)
    _check_int('seed', seed, 0)
    key = [seed, DOMAINS.index(domain), SPLITS.index(split), int(index)]
    return tuple(np.random.default_rng(key + [stream]) for stream in range(3))


def sample_appearance(domain: str = 'target',
                      split: str = 'train',
                      index: int = 0,
                      seed: int = 0) -> Appearance:
    """The appearance sample ``index`` of a split is rendered with.

    Args:
        domain (str): One of :data:`DOMAINS`. Defaults to ``'target'``.
        split (str): One of :data:`SPLITS`. Defaults to ``'train'``.
        index (int): Sample index within the split. Defaults to 0.
        seed (int): Base seed. Defaults to 0.

    Returns:
        Appearance: :data:`TARGET_APPEARANCE` for ``'target'``, else a draw
        of :func:`broad_appearance`.
    """
    _, look_rng, _ = _streams(domain, split, index, seed)
    if domain == 'target':
        return TARGET_APPEARANCE
    return broad_appearance(look_rng)


def demo_sample(domain: str = 'target',
                split: str = 'train',
                index: int = 0,
                size: int = 64,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Draw one sample without writing anything.

    Args:
        domain (str): One of :data:`DOMAINS`. Defaults to ``'target'``.
        split (str): One of :data:`SPLITS`. Defaults to ``'train'``.
        index (int): Sample index within the split. Defaults to 0.
        size (int): Image side in pixels. Defaults to 64.
        seed (int): Base seed. Defaults to 0.

    Returns:
        tuple[np.ndarray, np.ndarray]: The HxWx3 uint8 RGB image and the HxW
        uint8 label map (PASCAL-Context ids, 0 = ignored background).
    """
    _check_int('size', size, 16, ' (pixels per side)')
    layout_rng, _, render_rng = _streams(domain, split, index, seed)
    label = _layout(layout_rng, size)
    look = sample_appearance(domain, split, index, seed)
    return render(label, look, render_rng), label


def generate_demo_dataset(root: str,
                          domain: str = 'target',
                          num_train: int = 64,
                          num_val: int = 16,
                          size: int = 64,
                          seed: int = 0,
                          num_test: int = 0) -> dict[str, list[str]]:
    """Write a synthetic dataset for ``PascalContextDataset59`` to ``root``.

    Existing files of the same names are overwritten; other files under
    ``root`` are left alone, but the split files list only this call's
    samples. A split with no samples gets no split file. Output bytes
    depend only on the arguments (and the installed OpenCV's JPEG/PNG
    encoders).

    Args:
        root (str): Dataset root, created if missing.
        domain (str): ``'broad'``, ``'target'`` or ``'ood'`` (see the
            module's description). Defaults to ``'target'``.
        num_train (int): Number of training samples. Defaults to 64.
        num_val (int): Number of validation samples. Defaults to 16.
        size (int): Image side in pixels (square images). Defaults to 64.
        seed (int): Base seed. Defaults to 0.
        num_test (int): Number of test samples. Defaults to 0.

    Returns:
        dict[str, list[str]]: Sample names per split that has samples, as
        written to the split files.
    """
    _check_choice('domain', domain, DOMAINS)
    _check_int('size', size, 16, ' (pixels per side)')
    _check_int('seed', seed, 0)
    counts = {'train': num_train, 'val': num_val, 'test': num_test}
    for split, count in counts.items():
        _check_int(f'num_{split}', count, 0)
    if not any(counts.values()):
        raise ValueError('Invalid sample counts: num_train, num_val and '
                         'num_test are all 0; expected at least one >= 1')
    if osp.exists(root) and not osp.isdir(root):
        raise NotADirectoryError(f'Demo data root {root!r} exists and is not '
                                 'a directory')
    for sub in (IMG_DIR, ANN_DIR, SPLIT_DIR):
        os.makedirs(osp.join(root, sub), exist_ok=True)

    names: dict[str, list[str]] = {}
    for split in SPLITS:
        if not counts[split]:
            continue
        names[split] = []
        for index in range(counts[split]):
            name = f'demo_{domain}_{split}_{index:05d}'
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
