"""Small fixes that let the pinned OpenMMLab stack run on current releases.

Nothing here changes the process when imported: each fix applies only
where it is called. Covered by ``tests/test_utils/test_compat.py``.
"""
import contextlib
import importlib
import os
import pickle
import sys
import types
from typing import Iterator

import numpy as np
import torch

# HistoryBuffer's statistics methods (its _set_default_statistics).
_STATISTICS = ('min', 'max', 'current', 'mean')


def _history_buffer_method(owner: type, name: str) -> object:
    """``getattr(owner, name)`` for HistoryBuffer's statistics methods only.

    A ``HistoryBuffer`` pickles its statistics methods by reference, as
    ``getattr(HistoryBuffer, 'mean')``. Loading that needs ``getattr`` by
    name; this stands in for it and answers nothing else, so the rest of
    Python stays out of reach of a checkpoint.
    """
    from mmengine.logging import HistoryBuffer
    if owner is not HistoryBuffer or name not in _STATISTICS:
        raise pickle.UnpicklingError(
            f'Refused getattr({owner!r}, {name!r}) while loading an MMEngine '
            "checkpoint: only HistoryBuffer's statistics methods "
            f'{list(_STATISTICS)} are accepted')
    return vars(HistoryBuffer)[name]


def _mmengine_checkpoint_globals() -> list:
    """What an MMEngine checkpoint pickles besides tensors and containers.

    The message hub's ``HistoryBuffer`` objects (NumPy arrays, and their
    statistics methods by reference), and NumPy scalars in the runtime
    information.
    """
    from mmengine.logging import HistoryBuffer
    multiarray = np._core.multiarray if hasattr(
        np, '_core') else np.core.multiarray
    # A NumPy 2 dtype is rebuilt through its class (np.dtypes.Float64DType).
    dtype_classes = [getattr(np.dtypes, name) for name in np.dtypes.__all__
                     ] if hasattr(np, 'dtypes') else []
    return [
        HistoryBuffer, (_history_buffer_method, 'builtins.getattr'),
        np.ndarray, np.dtype, multiarray._reconstruct, multiarray.scalar,
        *dtype_classes
    ]


@contextlib.contextmanager
def mmengine_safe_globals() -> Iterator[None]:
    """Within the block, ``torch.load`` reads MMEngine checkpoints safely.

    Torch >= 2.6 loads with ``weights_only=True`` by default, and mmengine
    0.10.x calls ``torch.load`` without the argument, so loading one of its
    own checkpoints (``load_from``, ``resume``) fails on the message hub's
    ``HistoryBuffer`` and NumPy values. This allow-lists those types, and
    no others, for the duration of the block (torch's ``safe_globals``);
    ``getattr`` itself is not among them (a stand-in answers only
    ``HistoryBuffer``'s methods). The unpickler still refuses every other
    global. Torch < 2.6 loads every global by default, so the block
    changes nothing there.

    Example:
        >>> with mmengine_safe_globals():
        ...     checkpoint = torch.load('iter_1000.pth')
    """
    if torch.__version__ < (2, 6):
        yield
        return
    with torch.serialization.safe_globals(_mmengine_checkpoint_globals()):
        yield


def _pkg_resources_shim() -> types.ModuleType:
    def resource_filename(module: str, name: str) -> str:
        # pkg_resources resolves names beside the module's file, packages or
        # not; importlib.resources.files only takes packages on Python 3.11.
        module_file = importlib.import_module(module).__file__
        return os.path.join(os.path.dirname(module_file), name)

    shim = types.ModuleType('pkg_resources')
    shim.resource_filename = resource_filename
    return shim


def import_imagecorruptions() -> types.ModuleType:
    """Import imagecorruptions whatever the installed setuptools.

    imagecorruptions 1.1.2 imports ``pkg_resources`` only for
    ``resource_filename`` (to find its frost images); setuptools >= 82 no
    longer ships that module. When it is missing, a stand-in providing that
    one function is visible only while imagecorruptions is imported, so no
    other code mistakes it for the real module.
    """
    if 'imagecorruptions' in sys.modules:
        return sys.modules['imagecorruptions']
    try:
        importlib.import_module('pkg_resources')
    except ImportError:
        pass
    else:
        return importlib.import_module('imagecorruptions')
    missing = object()
    previous = sys.modules.get('pkg_resources', missing)
    sys.modules['pkg_resources'] = _pkg_resources_shim()
    try:
        return importlib.import_module('imagecorruptions')
    finally:
        if previous is missing:
            del sys.modules['pkg_resources']
        else:
            sys.modules['pkg_resources'] = previous
