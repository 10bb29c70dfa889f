"""Small generated PASCAL data in the two layouts the 21-class split comes
in: the PASCAL_MT archive, and the official PASCAL-Context release
(VOC 2010 images, per-image ``.mat`` annotations, ``labels.txt``).

Loaded by path from the tests of ``tests/test_datasets`` and
``tests/test_tools_prepare``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# The split's classes, written out here (not read from mmspd) so that the
# tests check the dataset against them.
VOC21_CLASSES = (
    'background', 'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus',
    'car', 'cat', 'chair', 'cow', 'diningtable', 'dog', 'horse',
    'motorbike', 'person', 'pottedplant', 'sheep', 'sofa', 'train',
    'tvmonitor')
# PASCAL-Context's vocabulary calls the VOC 'diningtable' 'table'.
CONTEXT_NAMES = {'diningtable': 'table'}
IMAGE_SIZE = (48, 64)  # height, width


def _image(rng: np.random.Generator, size=IMAGE_SIZE) -> Image.Image:
    return Image.fromarray(
        rng.integers(0, 255, (*size, 3), dtype=np.uint8))


def _label(rng: np.random.Generator, size=IMAGE_SIZE) -> np.ndarray:
    """Blocks of classes 0-20 with a band of 255 (ignored) pixels."""
    blocks = rng.integers(0, len(VOC21_CLASSES), (size[0] // 8,
                                                  size[1] // 8))
    label = np.kron(blocks, np.ones((8, 8), dtype=np.int64)).astype(np.uint8)
    label[:, :3] = 255
    label[0, :] = 0  # every image has background
    return label


def _palette_png(label: np.ndarray, path: Path) -> None:
    """Save as a palette PNG, as VOC's SegmentationClass files are: the
    pixel values are palette indices, not colours."""
    image = Image.fromarray(label, mode='P')
    colours = np.random.default_rng(1).integers(0, 255, 768).tolist()
    image.putpalette(colours)
    image.save(path)


def write_pascal_mt(root: Path, train: list[str], val: list[str],
                    voc12: tuple = (), seed: int = 0) -> dict:
    """Write a PASCAL_MT folder.

    Every id gets ``semseg/pascal-context/<id>.png``; the ids in ``voc12``
    also get a different ``semseg/VOC12/<id>.png``.

    Returns:
        dict: For each id, the label maps written, by folder.
    """
    rng = np.random.default_rng(seed)
    for sub in ('JPEGImages', 'semseg/pascal-context', 'semseg/VOC12',
                'ImageSets/Context'):
        (root / sub).mkdir(parents=True, exist_ok=True)
    labels = {}
    for image_id in train + val:
        _image(rng).save(root / 'JPEGImages' / f'{image_id}.jpg')
        labels[image_id] = {'semseg/pascal-context': _label(rng)}
        Image.fromarray(labels[image_id]['semseg/pascal-context']).save(
            root / 'semseg' / 'pascal-context' / f'{image_id}.png')
        if image_id in voc12:
            labels[image_id]['semseg/VOC12'] = _label(rng)
            _palette_png(labels[image_id]['semseg/VOC12'],
                         root / 'semseg' / 'VOC12' / f'{image_id}.png')
    for split, ids in (('train', train), ('val', val)):
        (root / 'ImageSets' / 'Context' / f'{split}.txt').write_text(
            ''.join(f'{i}\n' for i in ids))
    return labels


def write_release(root: Path, train: list[str], val: list[str],
                  annotated: list[str], skip_jpeg: tuple = (),
                  index_to_name: dict | None = None, seed: int = 0) -> tuple:
    """Write VOC 2010 images and splits, PASCAL-Context ``.mat``
    annotations and ``labels.txt``.

    By default the vocabulary puts the 20 VOC classes (under their
    PASCAL-Context names) at shuffled indices among other names, so a
    conversion must go by name; ``index_to_name`` sets it instead.

    Returns:
        tuple: ``(voc_root, annotations, labels_txt, label_maps,
        index_to_name)``.
    """
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    voc = root / 'VOC2010'
    (voc / 'JPEGImages').mkdir(parents=True)
    (voc / 'ImageSets' / 'Main').mkdir(parents=True)
    annotations = root / 'trainval'
    annotations.mkdir()
    if index_to_name is None:
        names = [CONTEXT_NAMES.get(n, n) for n in VOC21_CLASSES[1:]]
        names += ['wall', 'sky', 'grass', 'building', 'road', 'tree']
        order = rng.permutation(len(names))
        index_to_name = {i + 1: names[j] for i, j in enumerate(order)}
    labels_txt = root / 'labels.txt'
    labels_txt.write_text(''.join(
        f'{i}: {n}\n' for i, n in sorted(index_to_name.items())))
    for split, ids in (('train', train), ('val', val)):
        (voc / 'ImageSets' / 'Main' / f'{split}.txt').write_text(
            ''.join(f'{i}\n' for i in ids))
    label_maps = {}
    for image_id in train + val:
        if image_id not in skip_jpeg:
            _image(rng).save(voc / 'JPEGImages' / f'{image_id}.jpg')
        if image_id in annotated:
            # 0 is PASCAL-Context's "unlabelled".
            label_map = rng.integers(0, max(index_to_name) + 1,
                                     IMAGE_SIZE).astype(np.uint16)
            savemat(annotations / f'{image_id}.mat', {'LabelMap': label_map})
            label_maps[image_id] = label_map
    return voc, annotations, labels_txt, label_maps, index_to_name


def expected_21(label_map: np.ndarray, index_to_name: dict) -> np.ndarray:
    """The 21-class labels of a PASCAL-Context label map, by class name."""
    context_to_voc = {
        CONTEXT_NAMES.get(n, n): k
        for k, n in enumerate(VOC21_CLASSES) if k
    }
    return np.vectorize(
        lambda v: context_to_voc.get(index_to_name.get(int(v)), 0),
        otypes=[np.uint8])(label_map)
