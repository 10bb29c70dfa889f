"""Helpers at the bottom of mmspd: they import no other mmspd module."""
import importlib.util

from .compat import import_imagecorruptions, mmengine_safe_globals
from .mmseg_tools import check_pkg_resources, mmseg_tool_path, run_mmseg_tool

__all__ = [
    'check_pkg_resources',
    'import_imagecorruptions',
    'mmengine_safe_globals',
    'mmseg_tool_path',
    'run_mmseg_tool',
]


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


if _importable('mmengine'):
    from .safe_load_hook import SafeLoadHook
    __all__ += ['SafeLoadHook']
