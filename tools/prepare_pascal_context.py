"""Convert the official PASCAL-Context release into the layout mmseg reads.

Inputs (all from the official releases, no Detail API needed):

- ``VOC_ROOT``: ``VOCdevkit/VOC2010`` of the PASCAL VOC 2010 trainval
  release, with ``JPEGImages/`` and ``ImageSets/Main/{train,val}.txt``.
- ``--annotations``: the folder of per-image ``.mat`` files of the
  PASCAL-Context release (``trainval.tar.gz``), each holding a ``LabelMap``
  over the full 459-class vocabulary.
- ``--labels``: that release's ``labels.txt`` (``index: name`` per line).

Output, written under ``--out`` (defaults to ``VOC_ROOT``):

- ``SegmentationClassContext/<id>.png``: 0 for background and every class
  outside the 59, 1..59 in the order of mmseg's ``PascalContextDataset59``.
  The same files serve both datasets: ``PascalContextDataset59`` reads them
  with ``reduce_zero_label=True`` (59 classes, background ignored) and
  ``PascalContextDataset`` as they are (60 classes, 0 = background).
- ``ImageSets/SegmentationContext/{train,val}.txt``: the VOC 2010 train
  (4998) and val (5105) images that have an annotation.

Afterwards every listed image is checked for its JPEG and its label map, and
what is missing is reported (exit status 1).

The 21-class split (background + the 20 VOC classes) of multi-task dense
prediction is derived from the same inputs by ``tools/prepare_pascal_mt.py``.

Example::

    python tools/prepare_pascal_context.py data/VOCdevkit/VOC2010 \\
        --annotations data/pascal_context/trainval \\
        --labels data/pascal_context/labels.txt
"""
import argparse
import os
import os.path as osp
import sys
from functools import partial
from multiprocessing import Pool

import numpy as np
from PIL import Image

# Class names (mmseg's PascalContextDataset59, and the VOC names of the
# 21-class split in tools/prepare_pascal_mt.py) match the release's
# vocabulary except where an alias is listed.
ALIASES = {
    'table': ('table', 'diningtable'),
    'diningtable': ('diningtable', 'table'),
}
SPLITS = ('train', 'val')
LABEL_DIR = 'SegmentationClassContext'
SPLIT_DIR = osp.join('ImageSets', 'SegmentationContext')


def context59_classes() -> tuple:
    from mmseg.datasets import PascalContextDataset59
    return tuple(PascalContextDataset59.METAINFO['classes'])


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


def add_release_args(parser: argparse.ArgumentParser) -> None:
    """Add ``voc_root``, ``--annotations``, ``--labels`` and ``--nproc``."""
    parser.add_argument('voc_root', help='VOCdevkit/VOC2010 folder')
    parser.add_argument(
        '--annotations', required=True,
        help='folder of the PASCAL-Context .mat files (trainval.tar.gz)')
    parser.add_argument(
        '--labels', required=True,
        help='labels.txt of the PASCAL-Context release')
    parser.add_argument('--nproc', type=int, default=4,
                        help='worker processes. Defaults to 4.')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    add_release_args(parser)
    parser.add_argument(
        '--out', help='output root (defaults to VOC_ROOT)')
    return parser.parse_args(argv)


def check_inputs(voc_root: str, annotations: str, labels: str) -> None:
    """Exit with a message naming the first input that does not exist."""
    for path, what in ((voc_root, 'VOC_ROOT'),
                       (annotations, '--annotations')):
        if not osp.isdir(path):
            sys.exit(f'{what} folder {path} does not exist')
    if not osp.isfile(labels):
        sys.exit(f'--labels file {labels} does not exist')


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
        convert = partial(convert_one, annotations=annotations,
                          out_dir=out_dir, lookup=lookup, label_dir=label_dir)
        if nproc > 1:
            with Pool(nproc) as pool:
                errors += [
                    e for e in pool.imap(convert, kept, chunksize=16) if e
                ]
        else:  # no worker processes to start
            errors += [e for e in map(convert, kept) if e]
        with open(osp.join(out_dir, split_dir, f'{split}.txt'), 'w') as f:
            f.writelines(f'{i}\n' for i in kept)
        print(f'{split}: {len(kept)} images')
    return errors


def report(problems: list, limit: int = 20) -> None:
    """Print the number of problems and the first ``limit`` of them."""
    print(f'{len(problems)} problems:', *problems[:limit], sep='\n  ')
    if len(problems) > limit:
        print(f'  ... and {len(problems) - limit} more')


def main(argv=None) -> int:
    args = parse_args(argv)
    out_dir = args.out or args.voc_root
    check_inputs(args.voc_root, args.annotations, args.labels)
    lookup = build_lookup(read_vocabulary(args.labels), context59_classes())
    errors = convert_splits(args.voc_root, args.annotations, lookup, out_dir,
                            LABEL_DIR, SPLIT_DIR, args.nproc)
    problems = errors + check_output(args.voc_root, out_dir)
    if problems:
        report(problems)
        return 1
    print(f'done: labels in {osp.join(out_dir, LABEL_DIR)}, splits in '
          f'{osp.join(out_dir, SPLIT_DIR)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
