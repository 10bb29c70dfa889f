"""Datasets and transforms: the demo data generator, the corruption
transform (registered in mmseg's ``TRANSFORMS``)."""
from .demo_data import (
    DEMO_CLASSES,
    DOMAINS,
    demo_sample,
    generate_demo_dataset,
)
from .transforms import ImageCorruption

__all__ = [
    'DEMO_CLASSES',
    'DOMAINS',
    'ImageCorruption',
    'demo_sample',
    'generate_demo_dataset',
]
