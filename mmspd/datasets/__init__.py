from .demo_data import (
    DEMO_CLASSES,
    DOMAINS,
    demo_sample,
    generate_demo_dataset,
)

__all__ = ['DEMO_CLASSES', 'DOMAINS', 'demo_sample', 'generate_demo_dataset']
from .transforms import ImageCorruption  # noqa: F401
