"""A small ``trainval_merged.json`` in the Detail API's format, generated.

The Detail API (PASCAL in Detail; the loader mmseg's PASCAL-Context
converter uses) reads ``images`` (``image_id``, ``file_name``, ``height``,
``width``, ``phase``), ``annos_segmentation`` (``id``, ``image_id``,
``category_id``, ``segmentation``: a run-length encoded mask ``{'size':
[h, w], 'counts': str}``), ``categories``, ``parts``, ``annos_occlusion``
and ``annos_boundary``. The masks are encoded here by :func:`encode_rle`,
written from the format's definition (COCO's compressed RLE, which
Detail's ``maskApi.c`` shares), not with the decoder the tool uses.

Loaded by path from ``test_prepare_pascal_context.py``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

# mmseg's converter's vocabulary ids, in the order its source lists them
# (0 is unlabelled); it numbers them by sorting.
MMSEG_MAPPING = (
    0, 2, 259, 260, 415, 324, 9, 258, 144, 18, 19, 22, 23, 397, 25, 284,
    158, 159, 416, 33, 162, 420, 454, 295, 296, 427, 44, 45, 46, 308, 59,
    440, 445, 31, 232, 65, 354, 424, 68, 326, 72, 458, 34, 207, 80, 355,
    85, 347, 220, 349, 360, 98, 187, 104, 105, 366, 189, 368, 113, 115)


def encode_rle(mask: np.ndarray) -> dict:
    """Compressed RLE of a binary mask: runs of 0s and 1s in column-major
    order, starting with 0s; each count from the third on minus the one two
    before, written 5 bits a character (bit 6: more follow) from ``'0'``.
    """
    flat = np.asarray(mask, dtype=bool).ravel(order='F')
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts.insert(0, 0)
    chars = []
    for i, count in enumerate(counts):
        x = count - counts[i - 2] if i > 2 else count
        more = True
        while more:
            c = x & 0x1f
            x >>= 5
            more = x != -1 if c & 0x10 else x != 0
            chars.append(chr((c | 0x20 if more else c) + 48))
    return {'size': [int(mask.shape[0]), int(mask.shape[1])],
            'counts': ''.join(chars)}


def mmseg_label(category_ids: np.ndarray) -> np.ndarray:
    """mmseg's label of each vocabulary id: its rank in the sorted
    mapping."""
    ranks = {v: k for k, v in enumerate(sorted(MMSEG_MAPPING))}
    return np.vectorize(ranks.__getitem__, otypes=[np.uint8])(category_ids)


def _blob(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """A random rectangle, sometimes with holes (several runs a column)."""
    h, w = shape
    top, left = rng.integers(0, h - 1), rng.integers(0, w - 1)
    mask = np.zeros(shape, dtype=bool)
    mask[top:rng.integers(top + 1, h + 1), left:rng.integers(left + 1,
                                                             w + 1)] = True
    if rng.random() < 0.5:
        mask &= rng.random(shape) < 0.7
    mask[top, left] = True
    return mask


def write_detail(path: Path, images: list, names: dict, seed: int = 0,
                 extra_categories: tuple = ()) -> dict:
    """Write a Detail-format file and return what it paints.

    Args:
        path: The ``.json`` to write.
        images: ``(stem, phase, n_annotations)`` per image.
        names: Category names by vocabulary id.
        seed: Seed of the shapes, sizes and classes.
        extra_categories: Vocabulary ids outside mmseg's 59 to draw from
            as well.

    Returns:
        dict: ``{stem: (phase, category_id_map)}``, each image's pixels
        painted in the file's annotation order (later ones on top).
    """
    rng = np.random.default_rng(seed)
    class_ids = [i for i in MMSEG_MAPPING if i] + list(extra_categories)
    entries, annotations, painted = [], [], {}
    for stem, phase, count in images:
        shape = (int(rng.integers(9, 17)), int(rng.integers(9, 17)))
        image_id = int(stem.replace('_', ''))
        entries.append(dict(image_id=image_id, file_name=f'{stem}.jpg',
                            height=shape[0], width=shape[1], phase=phase,
                            date_captured='03-May-2010'))
        ids = np.zeros(shape, dtype=np.int64)
        for _ in range(count):
            mask = _blob(rng, shape)
            category = int(rng.choice(class_ids))
            ids[mask] = category
            annotations.append(dict(
                image_id=image_id, category_id=category,
                segmentation=encode_rle(mask), area=int(mask.sum()),
                bbox=[0, 0, shape[1], shape[0]],
                iscrowd=int(rng.random() < 0.2), parts=[]))
        painted[stem] = (phase, ids)
    # The file interleaves the images' annotations (each image's in its
    # painting order) and numbers them out of order.
    queues = {}
    for ann in annotations:
        queues.setdefault(ann['image_id'], []).append(ann)
    keys = [a['image_id'] for a in annotations]
    rng.shuffle(keys)
    placed = [queues[k].pop(0) for k in keys]
    for ann, ann_id in zip(placed, rng.permutation(len(placed)) + 1):
        ann['id'] = int(ann_id)
    categories = [
        dict(category_id=int(i), name=names.get(i, f'class{i}'),
             supercategory='object', onlysemantic=0, parts=[])
        for i in sorted(set(class_ids))
    ]
    path.write_text(json.dumps(dict(
        info=dict(description='generated in Detail format'),
        images=entries, annos_segmentation=placed, categories=categories,
        parts=[], annos_occlusion=[], annos_boundary=[], annos_joints=[])))
    return painted
