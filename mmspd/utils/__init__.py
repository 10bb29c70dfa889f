"""Helpers at the bottom of mmspd: they import no other mmspd module."""
from .compat import (
    allow_mmengine_checkpoints,
    import_imagecorruptions,
    register_config_package,
)
from .mmseg_tools import check_pkg_resources, mmseg_tool_path, run_mmseg_tool

__all__ = [
    'allow_mmengine_checkpoints',
    'check_pkg_resources',
    'import_imagecorruptions',
    'mmseg_tool_path',
    'register_config_package',
    'run_mmseg_tool',
]
