"""Check a PASCAL_MT folder, derive one from the official PASCAL-Context
release, or compare two: the 21-class split of multi-task dense prediction
that ``PascalContext21Dataset`` reads (0 = background, 1-20 = the VOC
classes in VOC order, 255 = ignore).

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
    every other class and unlabelled pixels become 0. A labels file that
    puts the 20 classes at other indices than the release's (as ASTMT's
    loader lists them) is refused before anything is written, unless
    ``--force``. Writes ``ROOT/semseg/pascal-context/<id>.png``,
    ``ROOT/ImageSets/Context/{train,val}.txt`` (the VOC 2010 train / val
    images with an annotation) and links ``ROOT/JPEGImages`` to
    ``VOC_ROOT/JPEGImages``; checks ``ROOT`` as ``check`` does, and ends
    by saying how these labels differ from the PASCAL_MT archive's (no
    ``semseg/VOC12``, so no 255 boundary bands).

``compare REFERENCE OTHER [--split val]``
    Per image of the split, the pixels on which two label trees disagree:
    in all, where one says 255 (ignored) and the other a class, and where
    both say a class; then the totals, by the folder REFERENCE's label map
    came from. A tree is a PASCAL_MT-layout folder (label maps looked up as
    the dataset does) or a folder of ``<id>.png``. The ids are those of
    REFERENCE's split file (else OTHER's; else REFERENCE's ``.png`` files).
    Exit status 1 if a label map is missing or the sizes differ.

Examples::

    python tools/prepare_pascal_mt.py check data/PASCAL_MT --values
    python tools/prepare_pascal_mt.py derive data/VOCdevkit/VOC2010 \\
        --annotations data/pascal_context/trainval \\
        --labels data/pascal_context/labels.txt --out data/PASCAL_MT_derived
    python tools/prepare_pascal_mt.py compare data/PASCAL_MT \\
        data/PASCAL_MT_derived --split val
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
# ASTMT's PASCAL-Context loader lists them; derive refuses a labels file
# that numbers them otherwise (unless --force).
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


def print_mapping(lookup: np.ndarray) -> list:
    """Print which vocabulary indices became which class.

    Returns:
        list: Descriptions of the classes whose indices differ from those
        ASTMT's loader lists.
    """
    differ = []
    for label, name in enumerate(CLASSES[1:], 1):
        indices = np.flatnonzero(lookup == label).tolist()
        print(f'  {label:2d} {name:<12} <- vocabulary {indices}')
        if indices != [ASTMT_INDICES[name]]:
            differ.append(f'{name} at {indices} (ASTMT: '
                          f'{ASTMT_INDICES[name]})')
    return differ


ARCHIVE_DIFFERENCES = f"""\
How these labels differ from the PASCAL_MT archive's:
  - Only {LABEL_DIR}/ is written. The archive also has {SEG_MAP_DIRS[0]}/
    (by its name, PASCAL VOC 2012 segmentation masks), which the dataset and
    the multi-task loaders read first where it has a map: other outlines,
    with object boundaries and difficult regions marked 255 (ignored).
    These labels have no 255, so pixels the archive ignores are scored.
  - Pixels PASCAL-Context leaves unlabelled are background (0) here.
  To measure the difference on a copy of the archive:
    python tools/prepare_pascal_mt.py compare ARCHIVE {{out}}"""


def derive(args: argparse.Namespace) -> list:
    check_inputs(args.voc_root, args.annotations, args.labels)
    lookup = build_lookup(read_vocabulary(args.labels), CLASSES[1:])
    print('classes:')
    differ = print_mapping(lookup)
    if differ and not args.force:
        sys.exit(
            f'{args.labels} puts {len(differ)} of the 20 classes at other '
            'vocabulary indices than the release\'s labels.txt as ASTMT\'s '
            f'loader lists them: {"; ".join(differ)}. The .mat files are '
            'indexed by the release\'s file; pass that one, or --force to '
            'derive with this one. Nothing was written.')
    if differ:
        print(f'warning: --force: deriving although {"; ".join(differ)}')
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


def tree_ids(reference: str, other: str, split: str) -> list:
    """The ids to compare: a split file's, else ``reference``'s PNGs."""
    for root in (reference, other):
        split_file = osp.join(root, SPLIT_DIR, f'{split}.txt')
        if osp.isfile(split_file):
            return read_ids(split_file)
    return sorted(osp.splitext(n)[0] for n in os.listdir(reference)
                  if n.endswith('.png'))


def tree_label(root: str, image_id: str) -> tuple:
    """``(folder, path)`` of ``image_id``'s label map in a label tree, as
    the dataset looks it up in a PASCAL_MT folder; ``('', '')`` if none."""
    if any(osp.isdir(osp.join(root, d)) for d in SEG_MAP_DIRS):
        folder = find_label(root, image_id)
        return folder, osp.join(root, folder, f'{image_id}.png')
    path = osp.join(root, f'{image_id}.png')
    return ('.', path) if osp.isfile(path) else ('', '')


def disagreement(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pixel counts: all, differing, 255 in ``a`` only, 255 in ``b``
    only, and both a class but not the same one."""
    ignored_a, ignored_b = a == IGNORE_INDEX, b == IGNORE_INDEX
    differ = a != b
    only_a = int((ignored_a & ~ignored_b).sum())
    only_b = int((ignored_b & ~ignored_a).sum())
    return np.array([a.size, int(differ.sum()), only_a, only_b,
                     int(differ.sum()) - only_a - only_b])


def compare(args: argparse.Namespace) -> list:
    for root in (args.reference, args.other):
        if not osp.isdir(root):
            sys.exit(f'label tree {root} does not exist')
    columns = ('pixels', 'differ', '255 only in REFERENCE',
               '255 only in OTHER', 'class vs class')
    print('id\tREFERENCE map\tOTHER map\t' + '\t'.join(columns))
    problems, totals = [], {}
    for image_id in tree_ids(args.reference, args.other, args.split):
        (folder_a, path_a), (folder_b, path_b) = (
            tree_label(root, image_id) for root in (args.reference,
                                                    args.other))
        if not (folder_a and folder_b):
            problems.append(f'{image_id}: no label map in ' + ' or '.join(
                r for r, f in ((args.reference, folder_a),
                               (args.other, folder_b)) if not f))
            continue
        a, b = (np.array(Image.open(p)) for p in (path_a, path_b))
        if a.shape != b.shape or a.ndim != 2:
            problems.append(f'{image_id}: {path_a} is {a.shape}, {path_b} '
                            f'{b.shape}; expected two equal HxW label maps')
            continue
        counts = disagreement(a, b)
        totals[folder_a] = totals.get(folder_a, 0) + np.append(
            counts, [counts[1] > 0, 1])
        print(f'{image_id}\t{folder_a}\t{folder_b}\t' + '\t'.join(
            f'{n} ({100 * n / counts[0]:.2f}%)' if i else str(n)
            for i, n in enumerate(counts)))
    print(f'totals ({args.reference} against {args.other}, by the folder of '
          "REFERENCE's label map):")
    for folder, counts in sorted(totals.items()) + [
            ('all', sum(totals.values(), np.zeros(7, np.int64)))]:
        if not counts[0]:
            continue
        shares = ', '.join(f'{name} {100 * n / counts[0]:.2f}%'
                           for name, n in zip(columns[1:], counts[1:5]))
        print(f'  {folder}: {counts[5]} of {counts[6]} images differ; of '
              f'{counts[0]} pixels: {shares}')
    return problems


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
    make.add_argument(
        '--force', action='store_true',
        help='derive even if the labels file numbers the 20 classes '
        'otherwise than the release\'s labels.txt')
    diff = commands.add_parser(
        'compare', help='per-image pixel disagreement of two label trees')
    diff.add_argument('reference', help='a PASCAL_MT folder, or a folder '
                      'of <id>.png label maps (e.g. the archive)')
    diff.add_argument('other', help='the same, to compare with it (e.g. '
                      'derived labels)')
    diff.add_argument('--split', choices=SPLITS, default='val',
                      help='the split file whose ids are compared. '
                      'Defaults to val.')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.command == 'check':
        if not osp.isdir(args.root):
            sys.exit(f'PASCAL_MT folder {args.root} does not exist')
        problems = check_root(args.root, args.values)
    elif args.command == 'compare':
        problems = compare(args)
    else:
        problems = derive(args)
    if problems:
        report(problems)
    elif args.command != 'compare':
        print('ok')
    if args.command == 'derive':
        print(ARCHIVE_DIFFERENCES.format(out=args.out))
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
