"""Small fixes that let the pinned OpenMMLab stack run on current releases.

Each fix is applied where a user would hit the problem and is covered by a
test in ``tests/utils/test_compat.py``.
"""
import importlib
import os
import sys
import types

import numpy as np
import torch


def _mmengine_checkpoint_globals() -> list:
    from mmengine.logging import HistoryBuffer
    dtype_classes = [getattr(np.dtypes, name) for name in np.dtypes.__all__]
    multiarray = np._core.multiarray if hasattr(
        np, '_core') else np.core.multiarray
    # ``getattr`` is how HistoryBuffer pickles its bound statistics methods.
    return [
        HistoryBuffer, getattr, np.ndarray, np.dtype, multiarray._reconstruct,
        multiarray.scalar, *dtype_classes
    ]


def allow_mmengine_checkpoints() -> None:
    """Let ``torch.load(weights_only=True)`` read MMEngine checkpoints.

    Torch >= 2.6 loads with ``weights_only=True`` by default, and mmengine
    0.10.7 calls ``torch.load`` without the argument, so ``resume`` fails on
    the message hub's ``HistoryBuffer`` and numpy values. Allow-listing those
    types keeps the safe unpickler (arbitrary globals are still refused);
    load only checkpoints you trust.
    """
    add_safe_globals = getattr(torch.serialization, 'add_safe_globals', None)
    if add_safe_globals is not None:  # torch < 2.4 loads everything anyway
        add_safe_globals(_mmengine_checkpoint_globals())


def register_config_package() -> None:
    """Let MMEngine resolve ``mmspd::`` base configs.

    MMEngine 0.10.x accepts ``pkg::path`` in ``_base_`` only for the
    OpenMMLab packages in its ``MODULE2PACKAGE`` table, and looks the path
    up in ``<pkg>/.mim/configs/`` of the installed (not editable) package.
    Adding mmspd to the table (``import mmspd`` does) lets a config
    inherit ``mmspd::swin/<config>.py`` when mmspd is imported before the
    config is read, as mmspd's ``tools/train.py`` and ``tools/test.py`` do.
    """
    from mmengine.config import utils
    utils.MODULE2PACKAGE.setdefault('mmspd', 'mmspd')


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
