"""Convert the official PASCAL-Context release into the layout mmseg reads.

Output, under ``--out`` (defaults to ``VOC_ROOT``, which is
``VOCdevkit/VOC2010`` of the PASCAL VOC 2010 trainval release):

- ``SegmentationClassContext/<id>.png``: 0 for background, 1..59 for the
  59 classes numbered as mmseg's own converter
  (``tools/dataset_converters/pascal_context.py``) numbers them: by
  ascending PASCAL-Context vocabulary id, which is the alphabetical order
  of the names and the order of mmseg's class names (:data:`CONTEXT59`).
  ``PascalContextDataset59`` reads these files with
  ``reduce_zero_label=True`` (59 classes, background ignored) and
  ``PascalContextDataset`` as they are (60 classes).
- ``ImageSets/SegmentationContext/{train,val}.txt``.

Two routes write it:

``--json trainval_merged.json`` (mmseg's labels)
    The file mmseg's converter reads with the Detail API, read here without
    that API (it is not on PyPI); its run-length encoded masks are decoded
    with ``pycocotools`` (``pip install pycocotools``, or mmspd's ``data``
    extra), the COCO mask code Detail's is a copy of. Each image is painted
    as Detail's ``getMask`` paints it: zeros, then every segmentation
    annotation of the image, in the file's order, sets its pixels to its
    category id (later ones on top). The splits are the images the file
    marks ``phase`` train and val, sorted. A category id outside mmseg's 60
    left visible in an image is an error, as it is for mmseg's converter.
    The labels and splits are those mmseg's converter writes.

``--annotations DIR --labels labels.txt`` (fallback)
    The per-image ``.mat`` ``LabelMap`` files of the PASCAL-Context release
    (``trainval.tar.gz``) and its ``labels.txt``, classes found by name.
    These masks are not the ones mmseg's converter paints: the maps differ
    from those painted from ``trainval_merged.json`` (found in mmseg's
    pull request #474, which proposed this route and was closed for it),
    and the splits come from VOC 2010 ``ImageSets/Main/{train,val}.txt``
    (the images with an annotation). The tool says so when it runs.

Afterwards every listed image is checked for its JPEG and its label map,
and what is missing or could not be converted is reported (exit status 1).
The 21-class split (background + the 20 VOC classes) of multi-task dense
prediction comes from ``tools/prepare_pascal_mt.py``.

Examples::

    python tools/prepare_pascal_context.py data/VOCdevkit/VOC2010 \\
        --json data/VOCdevkit/VOC2010/trainval_merged.json
    python tools/prepare_pascal_context.py data/VOCdevkit/VOC2010 \\
        --annotations data/pascal_context/trainval \\
        --labels data/pascal_context/labels.txt      # not mmseg's labels
"""
import argparse
import json
import os
import os.path as osp
import sys
from functools import partial
from multiprocessing import Pool

import numpy as np
from PIL import Image

# PASCAL-Context vocabulary ids (labels.txt, Detail's category_id) of
# the 59 classes, ascending: the order in which mmseg's converter numbers
# them 1..59, and in which PascalContextDataset59 names them.
CONTEXT59 = (
    (2, 'aeroplane'), (9, 'bag'), (18, 'bed'), (19, 'bedclothes'),
    (22, 'bench'), (23, 'bicycle'), (25, 'bird'), (31, 'boat'),
    (33, 'book'), (34, 'bottle'), (44, 'building'), (45, 'bus'),
    (46, 'cabinet'), (59, 'car'), (65, 'cat'), (68, 'ceiling'),
    (72, 'chair'), (80, 'cloth'), (85, 'computer'), (98, 'cow'),
    (104, 'cup'), (105, 'curtain'), (113, 'dog'), (115, 'door'),
    (144, 'fence'), (158, 'floor'), (159, 'flower'), (162, 'food'),
    (187, 'grass'), (189, 'ground'), (207, 'horse'), (220, 'keyboard'),
    (232, 'light'), (258, 'motorbike'), (259, 'mountain'), (260, 'mouse'),
    (284, 'person'), (295, 'plate'), (296, 'platform'),
    (308, 'pottedplant'), (324, 'road'), (326, 'rock'), (347, 'sheep'),
    (349, 'shelves'), (354, 'sidewalk'), (355, 'sign'), (360, 'sky'),
    (366, 'snow'), (368, 'sofa'), (397, 'table'), (415, 'track'),
    (416, 'train'), (420, 'tree'), (424, 'truck'), (427, 'tvmonitor'),
    (440, 'wall'), (445, 'water'), (454, 'window'), (458, 'wood'))
# Category id -> label: 0 (unlabelled) and the 59 ids, ascending.
CONTEXT60_IDS = np.array([0] + [i for i, _ in CONTEXT59])
# Names the release may use for a class (the VOC calls 'table'
# 'diningtable').
ALIASES = {
    'table': ('table', 'diningtable'),
    'diningtable': ('diningtable', 'table'),
}
SPLITS = ('train', 'val')
LABEL_DIR = 'SegmentationClassContext'
SPLIT_DIR = osp.join('ImageSets', 'SegmentationContext')
MAT_ROUTE_NOTE = (
    'note: these labels come from the .mat route, not from mmseg\'s '
    'converter: the .mat maps differ from the masks mmseg paints from '
    'trainval_merged.json, and the splits are VOC 2010 ImageSets/Main\'s. '
    'Scores on them are not comparable to the digit with results on '
    "mmseg's labels; for those, run with --json trainval_merged.json.")


def read_vocabulary(path: str) -> dict:
    """Read ``labels.txt`` into ``{name: index}``."""
    vocabulary = {}
    with open(path) as f:
        for line_no, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            index, sep, name = line.partition(':')
            if not sep:
                index, _, name = line.partition(' ')
            try:
                vocabulary[name.strip()] = int(index)
            except ValueError:
                raise ValueError(
                    f'{path}:{line_no}: expected "index: name", got '
                    f'{line!r}') from None
    return vocabulary


def build_lookup(vocabulary: dict, classes: tuple) -> np.ndarray:
    """Map each vocabulary index to 0 (background) or 1..len(classes)."""
    lookup = np.zeros(max(vocabulary.values()) + 1, dtype=np.uint8)
    missing = []
    for label, name in enumerate(classes, 1):
        found = [vocabulary[n] for n in ALIASES.get(name, (name, ))
                 if n in vocabulary]
        if not found:
            missing.append(name)
        lookup[found] = label
    if missing:
        raise ValueError(
            f'classes {missing} are not in the labels file; it must be the '
            'PASCAL-Context release\'s labels.txt (459 classes)')
    return lookup


def read_ids(path: str) -> list:
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'split file {path} not found; VOC_ROOT must be VOCdevkit/VOC2010 '
            'of the PASCAL VOC 2010 trainval release')
    with open(path) as f:
        return [line.split()[0] for line in f if line.strip()]


def write_split(out_dir: str, split_dir: str, split: str,
                ids: list) -> None:
    with open(osp.join(out_dir, split_dir, f'{split}.txt'), 'w') as f:
        f.writelines(f'{i}\n' for i in ids)


def run_all(convert, items: list, nproc: int) -> list:
    """``convert`` every item (in ``nproc`` processes); return the
    non-empty results, the descriptions of what went wrong."""
    if nproc > 1:
        with Pool(nproc) as pool:
            return [e for e in pool.imap(convert, items, chunksize=16) if e]
    return [e for e in map(convert, items) if e]  # no processes to start


# The trainval_merged.json route.


def import_rle_decode():
    """Return ``pycocotools.mask.decode``; exit naming the package if it is
    not installed."""
    try:
        from pycocotools import mask
    except ImportError:
        sys.exit('--json needs pycocotools to decode the masks of '
                 'trainval_merged.json: pip install pycocotools (or mmspd\'s '
                 '"data" extra); or convert the .mat files with --annotations '
                 'and --labels, whose labels are not mmseg\'s')
    return mask.decode


def _field(entry: dict, key: str, what: str, index: int, path: str):
    try:
        return entry[key]
    except (KeyError, TypeError):
        raise ValueError(
            f'{path}: {what} {index} has no {key!r}; expected the Detail '
            'format of PASCAL-Context\'s trainval_merged.json') from None


def read_detail(path: str) -> tuple:
    """Read the images and segmentation annotations of a Detail-format file.

    Indexed as the Detail API indexes them: images by ``image_id`` and
    annotations by ``id`` (a later entry replaces an earlier one with the
    same id, in the earlier one's place), each image's annotations in the
    file's order.

    Returns:
        tuple: ``(images, annotations, categories)``: ``{image_id: image}``,
        ``{image_id: [(category_id, rle), ...]}`` and ``{category_id:
        name}``.
    """
    with open(path) as f:
        data = json.load(f)
    if not isinstance(data, dict) or not {'images', 'annos_segmentation'
                                          } <= data.keys():
        raise ValueError(
            f'{path} has no "images" and "annos_segmentation"; expected the '
            'Detail format of PASCAL-Context\'s trainval_merged.json')
    images = {}
    for n, image in enumerate(data['images']):
        for key in ('file_name', 'height', 'width', 'phase'):
            _field(image, key, 'image', n, path)
        images[_field(image, 'image_id', 'image', n, path)] = image
    segmentations = {}
    for n, ann in enumerate(data['annos_segmentation']):
        for key in ('image_id', 'category_id', 'segmentation'):
            _field(ann, key, 'annotation', n, path)
        segmentations[_field(ann, 'id', 'annotation', n, path)] = ann
    annotations = {image_id: [] for image_id in images}
    for ann in segmentations.values():
        if ann['image_id'] not in annotations:
            raise ValueError(
                f'{path}: annotation {ann["id"]} is of image '
                f'{ann["image_id"]}, which the file does not list')
        annotations[ann['image_id']].append(
            (ann['category_id'], ann['segmentation']))
    categories = {
        c['category_id']: c.get('name')
        for c in data.get('categories', ()) if 'category_id' in c
    }
    return images, annotations, categories


def check_category_names(categories: dict) -> None:
    """Warn where the file names one of :data:`CONTEXT59`'s ids otherwise.
    """
    def norm(name):
        return str(name).lower().replace(' ', '').replace('_', '')

    differ = [(i, name, categories[i]) for i, name in CONTEXT59
              if i in categories and norm(categories[i]) not in map(
                  norm, ALIASES.get(name, (name, )))]
    if differ:
        print('warning: the file names these category ids otherwise than '
              'the PASCAL-Context vocabulary mmseg\'s converter assumes '
              '(id, expected, found): ' + ', '.join(map(str, differ)))


def paint(height: int, width: int, annotations: list,
          decode) -> np.ndarray:
    """Category ids of an image's pixels, painted as Detail's ``getMask``
    paints them (later annotations on top)."""
    mask = np.zeros((height, width), dtype=np.int64)
    for category_id, rle in annotations:
        binary = decode(rle)
        if binary.shape != mask.shape:
            raise ValueError(f'a mask of category {category_id} is '
                             f'{binary.shape[0]}x{binary.shape[1]}, the '
                             f'image {height}x{width}')
        mask[binary != 0] = category_id
    return mask


def to_labels(category_ids: np.ndarray) -> np.ndarray:
    """Map category ids to mmseg's labels 0..59 (position in
    :data:`CONTEXT60_IDS`); raise on an id not there."""
    labels = np.searchsorted(CONTEXT60_IDS, category_ids)
    known = CONTEXT60_IDS[labels.clip(max=len(CONTEXT60_IDS) - 1)]
    unknown = np.unique(category_ids[known != category_ids])
    if unknown.size:
        raise ValueError(f'category ids {unknown.tolist()} are not among '
                         "mmseg's 59 PASCAL-Context classes")
    return labels.astype(np.uint8)


def convert_json_one(item: tuple, out_dir: str, decode) -> str:
    """Write the label map of ``item = (stem, height, width,
    annotations)``; return what went wrong, or ''."""
    stem, height, width, annotations = item
    try:
        labels = to_labels(paint(height, width, annotations, decode))
    except ValueError as error:
        return f'{stem}: {error}; not written'
    Image.fromarray(labels).save(osp.join(out_dir, LABEL_DIR, f'{stem}.png'))
    return ''


def convert_json(json_path: str, out_dir: str, nproc: int) -> list:
    """Write labels and splits from ``trainval_merged.json``.

    Returns:
        list: Descriptions of the images that could not be converted.
    """
    decode = import_rle_decode()
    images, annotations, categories = read_detail(json_path)
    check_category_names(categories)
    os.makedirs(osp.join(out_dir, LABEL_DIR), exist_ok=True)
    os.makedirs(osp.join(out_dir, SPLIT_DIR), exist_ok=True)
    errors = []
    for split in SPLITS:
        items = [(osp.splitext(osp.basename(image['file_name']))[0],
                  image['height'], image['width'], annotations[image_id])
                 for image_id, image in images.items()
                 if image['phase'] == split]
        errors += run_all(
            partial(convert_json_one, out_dir=out_dir, decode=decode), items,
            nproc)
        write_split(out_dir, SPLIT_DIR, split, sorted(i[0] for i in items))
        print(f'{split}: {len(items)} images')
    return errors


# The .mat route.


def convert_one(image_id: str, annotations: str, out_dir: str,
                lookup: np.ndarray, label_dir: str = LABEL_DIR) -> str:
    """Write ``out_dir/label_dir/<id>.png`` from the ``.mat`` annotation;
    return a description of what went wrong, or ''."""
    from scipy.io import loadmat
    label_map = loadmat(osp.join(annotations,
                                 f'{image_id}.mat'))['LabelMap']
    if label_map.max() >= len(lookup):
        return (f'{image_id}: label {int(label_map.max())} is outside the '
                f'vocabulary (0..{len(lookup) - 1})')
    Image.fromarray(lookup[label_map]).save(
        osp.join(out_dir, label_dir, f'{image_id}.png'))
    return ''


def check_vocabulary_ids(lookup: np.ndarray) -> None:
    """Warn where ``labels.txt`` puts a class at another index than the
    release's (:data:`CONTEXT59`): the ``.mat`` files are then probably not
    indexed by this file."""
    differ = [(name, np.flatnonzero(lookup == label).tolist())
              for label, (i, name) in enumerate(CONTEXT59, 1)
              if np.flatnonzero(lookup == label).tolist() != [i]]
    if differ:
        print('warning: the labels file puts these classes at other '
              'indices than the PASCAL-Context release\'s labels.txt: '
              + ', '.join(f'{name} at {found}' for name, found in differ))


def convert_splits(voc_root: str, annotations: str, lookup: np.ndarray,
                   out_dir: str, label_dir: str, split_dir: str,
                   nproc: int) -> list:
    """Convert the annotated images of the VOC 2010 train and val splits.

    Writes ``out_dir/label_dir/<id>.png`` (``lookup`` applied to the
    ``LabelMap``) and ``out_dir/split_dir/{train,val}.txt``, the ids that
    have an annotation.

    Returns:
        list: Descriptions of the annotations that could not be converted.
    """
    annotated = {
        osp.splitext(name)[0]
        for name in os.listdir(annotations) if name.endswith('.mat')
    }
    os.makedirs(osp.join(out_dir, label_dir), exist_ok=True)
    os.makedirs(osp.join(out_dir, split_dir), exist_ok=True)

    errors = []
    for split in SPLITS:
        ids = read_ids(osp.join(voc_root, 'ImageSets', 'Main', f'{split}.txt'))
        kept = [i for i in ids if i in annotated]
        if len(kept) < len(ids):
            print(f'{split}: {len(ids) - len(kept)} of {len(ids)} images '
                  'have no PASCAL-Context annotation and are left out')
        errors += run_all(
            partial(convert_one, annotations=annotations, out_dir=out_dir,
                    lookup=lookup, label_dir=label_dir), kept, nproc)
        write_split(out_dir, split_dir, split, kept)
        print(f'{split}: {len(kept)} images')
    return errors


def check_output(voc_root: str, out_dir: str) -> list:
    """Return a description of every image or label a split lists but
    which is missing."""
    problems = []
    for split in SPLITS:
        for image_id in read_ids(osp.join(out_dir, SPLIT_DIR,
                                          f'{split}.txt')):
            image = osp.join(voc_root, 'JPEGImages', f'{image_id}.jpg')
            label = osp.join(out_dir, LABEL_DIR, f'{image_id}.png')
            for kind, path in (('image', image), ('label map', label)):
                if not osp.isfile(path):
                    problems.append(f'{split}: {kind} {path} is missing')
    return problems


def add_release_args(parser: argparse.ArgumentParser,
                     required: bool = True, note: str = '') -> None:
    """Add ``voc_root``, ``--annotations`` (its help ending with
    ``note``), ``--labels`` and ``--nproc``."""
    parser.add_argument('voc_root', help='VOCdevkit/VOC2010 folder')
    parser.add_argument(
        '--annotations', required=required,
        help='folder of the PASCAL-Context .mat files (trainval.tar.gz)'
        + note)
    parser.add_argument(
        '--labels', required=required,
        help='labels.txt of the PASCAL-Context release')
    parser.add_argument('--nproc', type=int, default=4,
                        help='worker processes. Defaults to 4.')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        epilog=__doc__.split('\n\n', 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_release_args(parser, required=False,
                     note="; the fallback, whose labels are not mmseg's")
    parser.add_argument(
        '--json', help="PASCAL-Context's trainval_merged.json (Detail "
        "format): mmseg's labels")
    parser.add_argument(
        '--out', help='output root (defaults to VOC_ROOT)')
    args = parser.parse_args(argv)
    mat = (args.annotations, args.labels)
    if args.json and any(mat):
        parser.error('give either --json or --annotations and --labels')
    if not args.json and not all(mat):
        parser.error('give --json trainval_merged.json (mmseg\'s labels), '
                     'or both --annotations and --labels (the .mat route)')
    return args


def check_inputs(voc_root: str, annotations: str, labels: str) -> None:
    """Exit with a message naming the first input that does not exist."""
    for path, what in ((voc_root, 'VOC_ROOT'),
                       (annotations, '--annotations')):
        if not osp.isdir(path):
            sys.exit(f'{what} folder {path} does not exist')
    if not osp.isfile(labels):
        sys.exit(f'--labels file {labels} does not exist')


def report(problems: list, limit: int = 20) -> None:
    """Print the number of problems and the first ``limit`` of them."""
    print(f'{len(problems)} problems:', *problems[:limit], sep='\n  ')
    if len(problems) > limit:
        print(f'  ... and {len(problems) - limit} more')


def main(argv=None) -> int:
    args = parse_args(argv)
    out_dir = args.out or args.voc_root
    if args.json:
        if not osp.isdir(args.voc_root):
            sys.exit(f'VOC_ROOT folder {args.voc_root} does not exist')
        if not osp.isfile(args.json):
            sys.exit(f'--json file {args.json} does not exist')
        errors = convert_json(args.json, out_dir, args.nproc)
    else:
        check_inputs(args.voc_root, args.annotations, args.labels)
        lookup = build_lookup(read_vocabulary(args.labels),
                              tuple(name for _, name in CONTEXT59))
        check_vocabulary_ids(lookup)
        errors = convert_splits(args.voc_root, args.annotations, lookup,
                                out_dir, LABEL_DIR, SPLIT_DIR, args.nproc)
    problems = errors + check_output(args.voc_root, out_dir)
    if problems:
        report(problems)
    else:
        print(f'done: labels in {osp.join(out_dir, LABEL_DIR)}, splits in '
              f'{osp.join(out_dir, SPLIT_DIR)}')
    if not args.json:
        print(MAT_ROUTE_NOTE)
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
