"""Run mmseg's own command-line tools with mmspd imported.

mmspd's ``tools/train.py`` and ``tools/test.py`` are mmseg's, run by
:func:`run_mmseg_tool` after ``import mmspd``. mmsegmentation installs its
tools in ``mmseg/.mim/tools/`` (a checkout installed in editable mode keeps
them in ``tools/`` beside the package). A config without ``SafeLoadHook``
gets it on the way (:func:`add_safe_load_hook`, which
``tools/test_corruption.py`` uses too).
"""
from __future__ import annotations

import importlib.util
import os.path as osp
import runpy
import sys

# The config option that adds SafeLoadHook, as mmspd's configs have it.
SAFE_LOAD_OPTION = {'default_hooks.safe_load.type': 'SafeLoadHook'}


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


def config_type_name(cfg) -> str:
    """The class name a config dict (its ``type``), a registry name (with
    or without scope), a class or an object names."""
    kind = cfg.get('type') if isinstance(cfg, dict) else cfg
    if isinstance(kind, str):
        return kind.rsplit('.', 1)[-1]  # 'mmspd.SafeLoadHook'
    return (kind if isinstance(kind, type) else type(kind)).__name__


def lacks_safe_load_hook(cfg) -> bool:
    """Whether a config has no ``SafeLoadHook`` and says nothing of it.

    Configs of mmseg's model zoo, and a user's own, lack it; on
    torch >= 2.6 their runner then cannot read MMEngine checkpoints
    (``load_from``, ``resume``, ``tools/test.py CONFIG CHECKPOINT``). A
    config that sets ``default_hooks.safe_load`` (``None`` included: the
    hook turned off) has said.

    Args:
        cfg (Config | dict): The config, after any ``--cfg-options``.

    Returns:
        bool: True if neither ``default_hooks`` nor ``custom_hooks`` holds
        a ``SafeLoadHook`` and ``default_hooks`` has no ``safe_load`` key.
    """
    default_hooks = cfg.get('default_hooks') or {}
    hooks = [*default_hooks.values(), *(cfg.get('custom_hooks') or [])]
    return 'safe_load' not in default_hooks and not any(
        hook is not None and config_type_name(hook) == 'SafeLoadHook'
        for hook in hooks)


def safe_load_options(cfg) -> dict:
    """The options (as ``--cfg-options`` keys) that add ``SafeLoadHook``
    to a config that lacks it (see :func:`lacks_safe_load_hook`), where
    mmspd's configs have it, ``default_hooks.safe_load``; and ``mmspd`` to
    its ``custom_imports`` if missing, so that the config the runner dumps
    into the work dir builds the hook under mmseg's own tools too.

    Args:
        cfg (Config | dict): The config, after any ``--cfg-options``.

    Returns:
        dict: The options; empty when the config has the hook.
    """
    if not lacks_safe_load_hook(cfg):
        return {}
    imports = (cfg.get('custom_imports') or {}).get('imports') or []
    imports = [imports] if isinstance(imports, str) else list(imports)
    return {**SAFE_LOAD_OPTION, **({} if 'mmspd' in imports else {
        'custom_imports.imports': [*imports, 'mmspd']})}


def add_safe_load_hook(cfg) -> bool:
    """Add ``SafeLoadHook`` to a config that lacks it, in place (see
    :func:`safe_load_options`).

    Args:
        cfg (Config): The config, after any ``--cfg-options``.

    Returns:
        bool: Whether the hook was added.
    """
    options = safe_load_options(cfg)
    cfg.merge_from_dict(options)
    return bool(options)


def safe_load_arguments(tool: str) -> list[str]:
    """``--cfg-options`` that add ``SafeLoadHook`` to the config of an
    mmseg tool's command line, if it lacks the hook.

    The config is read as mmseg's script reads it: the script's own
    ``parse_args`` on ``sys.argv``, ``Config.fromfile`` and
    ``--cfg-options``. A command line or config that does not parse is
    left as it is: the script then stops on it with its own message.

    Args:
        tool (str): Path of mmseg's ``tools/train.py`` or ``test.py``.

    Returns:
        list[str]: ``['--cfg-options', 'default_hooks.safe_load.type=
        SafeLoadHook', 'custom_imports.imports=[...,mmspd]']`` (the
        latter only if needed), or ``[]`` when the config has the hook.
    """
    from mmengine.config import Config
    parse_args = runpy.run_path(tool, run_name='mmseg_tool')['parse_args']
    args = parse_args()  # --help and bad flags end here, as in the script
    try:
        cfg = Config.fromfile(args.config)
        if args.cfg_options:
            cfg.merge_from_dict(args.cfg_options)
    except Exception:  # noqa: BLE001  the script stops on it, saying why
        return []
    options = [f'{key}=[{",".join(value)}]' if isinstance(value, list)
               else f'{key}={value}'
               for key, value in safe_load_options(cfg).items()]
    return ['--cfg-options', *options] if options else []


def run_mmseg_tool(name: str) -> None:
    """Run mmseg's ``tools/<name>`` as ``__main__`` with ``sys.argv``.

    Called after ``import mmspd``, which registers mmspd's modules. A
    config without ``SafeLoadHook`` (one of mmseg's model zoo, say) gets
    it (see :func:`safe_load_arguments`), so that on torch >= 2.6
    ``load_from``, ``--resume`` and the checkpoint of ``tools/test.py``
    load.

    Args:
        name (str): File name in mmseg's ``tools/``, e.g. ``'train.py'``.
    """
    check_pkg_resources()
    tool = mmseg_tool_path(name)
    sys.argv += safe_load_arguments(tool)
    runpy.run_path(tool, run_name='__main__')
