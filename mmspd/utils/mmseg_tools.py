"""Run mmseg's own command-line tools with mmspd imported.

mmspd's ``tools/train.py`` and ``tools/test.py`` are mmseg's, run by
:func:`run_mmseg_tool` after ``import mmspd``. mmsegmentation installs its
tools in ``mmseg/.mim/tools/`` (a checkout installed in editable mode keeps
them in ``tools/`` beside the package).
"""
from __future__ import annotations

import importlib.util
import os.path as osp
import runpy


def mmseg_tool_path(name: str) -> str:
    """Path of mmseg's ``tools/<name>`` in the installed mmsegmentation.

    Args:
        name (str): File name in mmseg's ``tools/``, e.g. ``'train.py'``.

    Returns:
        str: ``mmseg/.mim/tools/<name>``, or for an mmseg checkout installed
        in editable mode (which has no ``.mim``), ``<checkout>/tools/<name>``.

    Raises:
        ModuleNotFoundError: If mmsegmentation is not installed.
        FileNotFoundError: If neither file exists.
    """
    spec = importlib.util.find_spec('mmseg')
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(
            'mmsegmentation is not installed; mmspd runs its tools '
            '(pip install mmsegmentation==1.2.2)')
    package = osp.dirname(spec.origin)
    checkout = osp.dirname(package)
    candidates = [osp.join(package, '.mim', 'tools', name)]
    # Only an mmseg checkout, not site-packages, where another project's
    # top-level tools/ may lie.
    if osp.isfile(osp.join(checkout, 'setup.py')):
        candidates.append(osp.join(checkout, 'tools', name))
    for path in candidates:
        if osp.isfile(path):
            return path
    raise FileNotFoundError(
        f"mmseg's tools/{name} was not found (looked for "
        f'{" and ".join(candidates)}). mmsegmentation installed from '
        'PyPI ships it in mmseg/.mim/tools/; reinstall it with '
        'pip install --force-reinstall --no-deps mmsegmentation==1.2.2.')


def check_pkg_resources() -> None:
    """Raise if MMEngine cannot resolve ``mmseg::`` base configs.

    MMEngine (0.10.x) finds the installed package behind ``mmseg::`` with
    ``pkg_resources``, which setuptools 82 removed; without
    it every config that inherits from mmseg fails to load with a bare
    ``No module named 'pkg_resources'``.

    Raises:
        ModuleNotFoundError: Saying which setuptools to install.
    """
    if importlib.util.find_spec('pkg_resources') is None:
        raise ModuleNotFoundError(
            "MMEngine resolves `mmseg::` base configs with pkg_resources, "
            'which this environment lacks (setuptools >= 82 no longer ships '
            "it); install it with pip install 'setuptools<82'.")


def run_mmseg_tool(name: str) -> None:
    """Run mmseg's ``tools/<name>`` as ``__main__`` with ``sys.argv``.

    Called after ``import mmspd``, which registers mmspd's modules.

    Args:
        name (str): File name in mmseg's ``tools/``, e.g. ``'train.py'``.
    """
    check_pkg_resources()
    runpy.run_path(mmseg_tool_path(name), run_name='__main__')
