"""Check a PASCAL_MT folder, or derive one from the official PASCAL-Context
release: the 21-class split of multi-task dense prediction that
``PascalContext21Dataset`` reads (0 = background, 1-20 = the VOC classes
in VOC order, 255 = ignore).

``check ROOT [--values]``
    Report every image and label map that ``ImageSets/Context/train.txt``
    and ``val.txt`` list but ``ROOT`` lacks, how many label maps come from
    ``semseg/VOC12`` and from ``semseg/pascal-context`` (looked up in that
    order, as the dataset does), and split sizes other than the archive's
    4,998 / 5,105. With ``--values`` also open every label map and report
    values outside 0-20 and 255 and label maps whose size differs from
    their image's. Exit status 1 if anything is missing or wrong.

``derive VOC_ROOT --annotations DIR --labels labels.txt --out ROOT``
    Write the 21-class labels from the PASCAL-Context annotations (the
    per-image ``.mat`` files of ``trainval.tar.gz``, also found in the
    archive as ``PASCAL_MT/pascal-context/trainval``): the 20 VOC classes,
    found by name in the release's 459-class ``labels.txt``, become 1-20;
    every other class and unlabelled pixels become 0. Writes
    ``ROOT/semseg/pascal-context/<id>.png``,
    ``ROOT/ImageSets/Context/{train,val}.txt`` (the VOC 2010 train / val
    images with an annotation) and links ``ROOT/JPEGImages`` to
    ``VOC_ROOT/JPEGImages``; then checks ``ROOT`` as ``check`` does.
    docs/pascal_context_21.md says where these labels can differ from the
    archive's.

Examples::

    python tools/prepare_pascal_mt.py check data/PASCAL_MT --values
    python tools/prepare_pascal_mt.py derive data/VOCdevkit/VOC2010 \\
        --annotations data/pascal_context/trainval \\
        --labels data/pascal_context/labels.txt --out data/PASCAL_MT
"""
import argparse
import os
import os.path as osp
import sys
from collections import Counter

import numpy as np
from PIL import Image
from prepare_pascal_context import (
    SPLITS,
    add_release_args,
    build_lookup,
    check_inputs,
    convert_splits,
    read_ids,
    read_vocabulary,
    report,
)

try:
    from mmspd.datasets.pascal_context_21 import (
        SEG_MAP_DIRS,
        PascalContext21Dataset,
    )
except ImportError:  # run from a source checkout without installing
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
    from mmspd.datasets.pascal_context_21 import (
        SEG_MAP_DIRS,
        PascalContext21Dataset,
    )

CLASSES = PascalContext21Dataset.METAINFO['classes']
IGNORE_INDEX = 255
SPLIT_DIR = osp.join('ImageSets', 'Context')
LABEL_DIR = osp.join('semseg', 'pascal-context')
# Split sizes of the PASCAL_MT archive.
ARCHIVE_SIZES = {'train': 4998, 'val': 5105}
# Vocabulary indices of the 20 VOC classes in the release's labels.txt as
# ASTMT's PASCAL-Context loader lists them; derive warns when the labels
# file it is given numbers them otherwise.
ASTMT_INDICES = dict(
    zip(CLASSES[1:], (2, 23, 25, 31, 34, 45, 59, 65, 72, 98, 397, 113, 207,
                      258, 284, 308, 347, 368, 416, 427)))


def find_label(root: str, image_id: str) -> str:
    """Return the folder (of :data:`SEG_MAP_DIRS`) holding the label map of
    ``image_id``, or '' if none does."""
    return next((d for d in SEG_MAP_DIRS
                 if osp.isfile(osp.join(root, d, f'{image_id}.png'))), '')


def check_values(image: str, label: str) -> str:
    """Describe what is wrong with a label map, or return ''."""
    with Image.open(image) as img:
        image_size = img.size
    with Image.open(label) as seg:
        label_size = seg.size
        values = set(np.unique(np.array(seg)).tolist())
    bad = sorted(values - set(range(len(CLASSES))) - {IGNORE_INDEX})
    if bad:
        return f'{label} has values {bad}, outside 0-20 and 255'
    if label_size != image_size:
        return (f'{label} is {label_size[0]}x{label_size[1]} but its image '
                f'is {image_size[0]}x{image_size[1]}')
    return ''


def check_root(root: str, values: bool = False) -> list:
    """Check ``root`` and print what it holds.

    Returns:
        list: Descriptions of what is missing or wrong.
    """
    problems = []
    for split in SPLITS:
        split_file = osp.join(root, SPLIT_DIR, f'{split}.txt')
        if not osp.isfile(split_file):
            problems.append(f'{split}: split file {split_file} is missing')
            continue
        ids = read_ids(split_file)
        sources = Counter()
        for image_id in ids:
            image = osp.join(root, 'JPEGImages', f'{image_id}.jpg')
            source = find_label(root, image_id)
            sources[source] += 1
            if not osp.isfile(image):
                problems.append(f'{split}: image {image} is missing')
            if not source:
                problems.append(
                    f'{split}: label map {image_id}.png is in none of '
                    f'{", ".join(SEG_MAP_DIRS)}')
            elif values and osp.isfile(image):
                problem = check_values(
                    image, osp.join(root, source, f'{image_id}.png'))
                if problem:
                    problems.append(f'{split}: {problem}')
        found = ', '.join(f'{sources[d]} from {d}' for d in SEG_MAP_DIRS)
        print(f'{split}: {len(ids)} images; label maps: {found}')
        if len(ids) != ARCHIVE_SIZES[split]:
            print(f'  note: the PASCAL_MT archive lists '
                  f'{ARCHIVE_SIZES[split]} {split} images')
    return problems


def print_mapping(lookup: np.ndarray) -> None:
    """Print which vocabulary indices became which class, and warn where
    they differ from ASTMT's list."""
    differ = []
    for label, name in enumerate(CLASSES[1:], 1):
        indices = np.flatnonzero(lookup == label).tolist()
        print(f'  {label:2d} {name:<12} <- vocabulary {indices}')
        if indices != [ASTMT_INDICES[name]]:
            differ.append(name)
    if differ:
        print(f'warning: vocabulary indices of {differ} differ from those '
              "ASTMT's loader lists for the release's labels.txt; check "
              'that --labels is that file')


def derive(args: argparse.Namespace) -> list:
    check_inputs(args.voc_root, args.annotations, args.labels)
    lookup = build_lookup(read_vocabulary(args.labels), CLASSES[1:])
    print('classes:')
    print_mapping(lookup)
    voc_labels = osp.join(args.out, SEG_MAP_DIRS[0])
    if SEG_MAP_DIRS[0] != LABEL_DIR and osp.isdir(voc_labels):
        print(f'warning: {voc_labels} exists; the dataset reads its label '
              'maps before the derived ones')
    errors = convert_splits(args.voc_root, args.annotations, lookup, args.out,
                            LABEL_DIR, SPLIT_DIR, args.nproc)
    images = osp.join(args.out, 'JPEGImages')
    if not osp.lexists(images):
        os.symlink(osp.abspath(osp.join(args.voc_root, 'JPEGImages')),
                   images, target_is_directory=True)
    return errors + check_root(args.out)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest='command', required=True)
    check = commands.add_parser('check', help='check a PASCAL_MT folder')
    check.add_argument('root', help='the PASCAL_MT folder')
    check.add_argument(
        '--values', action='store_true',
        help='also read every label map and check its values and size')
    make = commands.add_parser(
        'derive', help='derive the 21-class labels from the PASCAL-Context '
        'annotations')
    add_release_args(make)
    make.add_argument('--out', required=True,
                      help='the PASCAL_MT-layout folder to write')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.command == 'check':
        if not osp.isdir(args.root):
            sys.exit(f'PASCAL_MT folder {args.root} does not exist')
        problems = check_root(args.root, args.values)
    else:
        problems = derive(args)
    if problems:
        report(problems)
        return 1
    print('ok')
    return 0


if __name__ == '__main__':
    sys.exit(main())
