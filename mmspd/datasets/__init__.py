"""Datasets and transforms: the demo data generator, the corruption
transform (registered in mmseg's ``TRANSFORMS``) and the 21-class
PASCAL-Context dataset (registered in mmseg's ``DATASETS``)."""
from .demo_data import (
    DEMO_CLASSES,
    DOMAINS,
    demo_sample,
    generate_demo_dataset,
)
from .pascal_context_21 import SEG_MAP_DIRS, PascalContext21Dataset
from .transforms import ImageCorruption

__all__ = [
    'DEMO_CLASSES',
    'DOMAINS',
    'ImageCorruption',
    'PascalContext21Dataset',
    'SEG_MAP_DIRS',
    'demo_sample',
    'generate_demo_dataset',
]
