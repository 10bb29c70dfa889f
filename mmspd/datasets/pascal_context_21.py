"""PASCAL-Context, the 21-class split of multi-task dense prediction.

Multi-task dense-prediction code bases (ASTMT, then MTI-Net and MTLoRA) read
PASCAL-Context's semantic segmentation as 21 classes: 0 = background, 1-20 =
the PASCAL VOC classes in VOC order, 255 = ignore, with mIoU over all 21
classes. Their archive (``PASCAL_MT``) is laid out as::

    PASCAL_MT/
        JPEGImages/<id>.jpg
        semseg/VOC12/<id>.png           (looked up first)
        semseg/pascal-context/<id>.png  (used when VOC12 has no file)
        ImageSets/Context/train.txt     (4,998 ids)
        ImageSets/Context/val.txt       (5,105 ids)

Those loaders take a label map from ``semseg/VOC12`` when one exists and from
``semseg/pascal-context`` otherwise; :class:`PascalContext21Dataset` does the
same by default, and ``seg_map_dirs`` changes the order or the folders.
``tools/prepare_pascal_mt.py`` checks such a folder and derives the labels
from the official PASCAL-Context annotations.
"""
from __future__ import annotations

from typing import ClassVar, Sequence

from mmengine import fileio
from mmengine.utils import is_abs
from mmseg.datasets import BaseSegDataset, PascalVOCDataset
from mmseg.registry import DATASETS

#: Where the label maps of the PASCAL_MT archive live, in lookup order.
SEG_MAP_DIRS = ('semseg/VOC12', 'semseg/pascal-context')


@DATASETS.register_module()
class PascalContext21Dataset(BaseSegDataset):
    """PASCAL-Context with 21 classes (background + the 20 VOC classes).

    Labels are read as they are: 0 is background, a class that counts in
    mIoU, and 255 is ignored (``ignore_index``); there is no
    ``reduce_zero_label``. Every image listed in ``ann_file`` must have its
    JPEG and a label map in one of ``seg_map_dirs``; the dataset checks this
    when it loads its list and names what is missing.

    Args:
        ann_file (str): Split file, one image id per line, e.g.
            ``'ImageSets/Context/train.txt'`` (relative to ``data_root``).
        data_prefix (dict, optional): ``img_path``: the image folder.
            Defaults to ``dict(img_path='JPEGImages')``. Label folders are
            ``seg_map_dirs``, not ``seg_map_path``.
        seg_map_dirs (Sequence[str]): Label-map folders relative to
            ``data_root``, tried in order for each image. Defaults to
            :data:`SEG_MAP_DIRS` (``semseg/VOC12`` first, as the public
            loaders of this split do).
        img_suffix (str): Defaults to ``'.jpg'``.
        seg_map_suffix (str): Defaults to ``'.png'``.
        reduce_zero_label (bool): Must be False (the default): background is
            one of the 21 classes.
        **kwargs: Passed to :class:`mmseg.datasets.BaseSegDataset`
            (``data_root``, ``pipeline``, ``test_mode``, ...).
    """
    METAINFO: ClassVar[dict] = dict(
        classes=tuple(PascalVOCDataset.METAINFO['classes']),
        palette=[list(c) for c in PascalVOCDataset.METAINFO['palette']])

    def __init__(self,
                 ann_file: str,
                 data_prefix: dict | None = None,
                 seg_map_dirs: Sequence[str] = SEG_MAP_DIRS,
                 img_suffix: str = '.jpg',
                 seg_map_suffix: str = '.png',
                 reduce_zero_label: bool = False,
                 **kwargs) -> None:
        if reduce_zero_label:
            raise ValueError(
                'PascalContext21Dataset reads labels as they are '
                '(0 = background is a class); reduce_zero_label must be '
                f'False, got {reduce_zero_label!r}')
        if not ann_file:
            raise ValueError(
                'PascalContext21Dataset needs ann_file, the split file '
                "(e.g. 'ImageSets/Context/train.txt'); got "
                f'{ann_file!r}')
        if data_prefix and data_prefix.get('seg_map_path'):
            raise ValueError(
                'PascalContext21Dataset looks label maps up in seg_map_dirs '
                f'(default {list(SEG_MAP_DIRS)}); set those instead of '
                f"data_prefix['seg_map_path'] = "
                f"{data_prefix['seg_map_path']!r}")
        if isinstance(seg_map_dirs, str) or not seg_map_dirs:
            raise ValueError(
                'seg_map_dirs must be a non-empty sequence of folders, e.g. '
                f'{list(SEG_MAP_DIRS)}; got {seg_map_dirs!r}')
        self.seg_map_dirs = tuple(seg_map_dirs)
        super().__init__(
            ann_file=ann_file,
            data_prefix=data_prefix or dict(img_path='JPEGImages'),
            img_suffix=img_suffix,
            seg_map_suffix=seg_map_suffix,
            reduce_zero_label=False,
            **kwargs)

    def _root_join(self, path: str) -> str:
        if not self.data_root or is_abs(path):
            return path
        return fileio.join_path(self.data_root, path)

    def load_data_list(self) -> list[dict]:
        """Read the split file and find each image's label map.

        Returns:
            list[dict]: ``img_path``, ``seg_map_path`` and the label
            settings of every listed image.

        Raises:
            FileNotFoundError: The split file, or images or label maps it
                lists, do not exist.
        """
        args = dict(backend_args=self.backend_args)
        if not fileio.exists(self.ann_file, **args):
            raise FileNotFoundError(
                f'split file {self.ann_file} does not exist; '
                'PascalContext21Dataset expects the PASCAL_MT layout '
                '(check it with tools/prepare_pascal_mt.py check ROOT)')
        ids = [
            line.split()[0]
            for line in fileio.list_from_file(self.ann_file, **args)
            if line.strip()
        ]
        img_dir = self.data_prefix.get('img_path', '')
        seg_dirs = [self._root_join(d) for d in self.seg_map_dirs]
        data_list, missing = [], []
        for image_id in ids:
            img_path = fileio.join_path(img_dir, image_id + self.img_suffix)
            seg_map_path = next(
                (path for path in (
                    fileio.join_path(d, image_id + self.seg_map_suffix)
                    for d in seg_dirs) if fileio.exists(path, **args)),
                None)
            if seg_map_path is None:
                missing.append(f'{image_id} (label map)')
            if not fileio.exists(img_path, **args):
                missing.append(f'{image_id} (image {img_path})')
            data_list.append(
                dict(
                    img_path=img_path,
                    seg_map_path=seg_map_path,
                    label_map=self.label_map,
                    reduce_zero_label=False,
                    seg_fields=[]))
        if missing:
            raise FileNotFoundError(
                f'{len(missing)} files for the {len(ids)} images of '
                f'{self.ann_file} are missing (label maps are looked up in '
                f'{seg_dirs}), e.g. {", ".join(missing[:5])}; check the '
                'folder with tools/prepare_pascal_mt.py check ROOT')
        return data_list
