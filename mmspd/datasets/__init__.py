"""Datasets and transforms: the corruption transform (registered in mmseg's
``TRANSFORMS``) and the 21-class PASCAL-Context dataset (registered in
mmseg's ``DATASETS``). The demo's synthetic data lives in ``demo/data.py``,
outside the package."""
from .pascal_context_21 import SEG_MAP_DIRS, PascalContext21Dataset
from .transforms import ImageCorruption

__all__ = [
    'SEG_MAP_DIRS',
    'ImageCorruption',
    'PascalContext21Dataset',
]
