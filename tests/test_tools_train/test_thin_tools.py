"""mmspd's tools/train.py and tools/test.py are mmseg's, run after mmspd.

They add no flags and no checks of their own: what a user types is what
mmseg's scripts accept, and what they print on a bad call is mmseg's. They
add one hook, ``SafeLoadHook``, to a config that lacks it (the runs that
need it are in test_train_e2e.py).
"""
from __future__ import annotations

import argparse
import importlib.util
import os.path as osp
import sys

import pytest

from mmspd.utils import check_pkg_resources, mmseg_tool_path, mmseg_tools
from mmspd.utils.mmseg_tools import (
    SAFE_LOAD_OPTION,
    add_safe_load_hook,
    lacks_safe_load_hook,
    safe_load_arguments,
    safe_load_options,
)


@pytest.mark.parametrize('name', ['train.py', 'test.py'])
def test_mmseg_tool_is_the_installed_mmseg_script(name):
    import mmseg
    path = mmseg_tool_path(name)
    assert osp.basename(path) == name
    # Shipped with the mmseg that is imported, not found on some path.
    package = osp.dirname(mmseg.__file__)
    assert path in (osp.join(package, '.mim', 'tools', name),
                    osp.join(osp.dirname(package), 'tools', name))


def test_missing_mmseg_tool_names_the_paths_searched():
    with pytest.raises(FileNotFoundError) as info:
        mmseg_tool_path('no_such_tool.py')
    assert osp.join('.mim', 'tools', 'no_such_tool.py') in str(info.value)


def test_missing_pkg_resources_says_which_setuptools(monkeypatch):
    find_spec = importlib.util.find_spec

    def without_pkg_resources(name, *args, **kwargs):
        if name == 'pkg_resources':
            return None
        return find_spec(name, *args, **kwargs)

    monkeypatch.setattr(mmseg_tools.importlib.util, 'find_spec',
                        without_pkg_resources)
    with pytest.raises(ModuleNotFoundError) as info:
        check_pkg_resources()
    assert "setuptools<82" in str(info.value)


@pytest.mark.parametrize('tool, mmseg_flag', [
    ('train.py', '--amp'),
    ('test.py', '--tta'),
])
def test_tool_takes_mmseg_command_line(tools, tool, mmseg_flag):
    out = tools.run_tool([sys.executable, f'tools/{tool}', '--help'])
    # mmseg's parser, with the flags users know from mmseg.
    assert mmseg_flag in out
    assert '--cfg-options' in out
    assert '--launcher' in out



def _safe_load_hooks(cfg) -> int:
    hooks = [*(cfg.get('default_hooks') or {}).values(),
             *(cfg.get('custom_hooks') or [])]
    return sum(hook is not None and hook['type'].endswith('SafeLoadHook')
               for hook in hooks)


@pytest.mark.parametrize('hooks, lacks', [
    (dict(default_hooks=dict(logger=dict(type='LoggerHook'))), True),
    ({}, True),
    (dict(default_hooks=dict(logger=None),
          custom_hooks=[dict(type='EMAHook')]), True),
    (dict(default_hooks=dict(safe_load=dict(type='SafeLoadHook'))), False),
    (dict(custom_hooks=[dict(type='mmspd.SafeLoadHook')]), False),
    (dict(default_hooks=dict(load=dict(type='SafeLoadHook'))), False),
], ids=['zoo', 'no_hooks', 'ema', 'mmspd', 'custom', 'other_key'])
def test_config_without_safe_load_hook_gets_exactly_one(hooks, lacks):
    from mmengine.config import Config
    cfg = Config(hooks)
    assert lacks_safe_load_hook(cfg) == lacks
    assert add_safe_load_hook(cfg) == lacks
    # Never two: their allow-lists would close out of order and one
    # would stay open.
    assert _safe_load_hooks(cfg) == 1
    assert not lacks_safe_load_hook(cfg)
    if lacks:  # where mmspd's configs have it
        assert cfg.default_hooks.safe_load == dict(type='SafeLoadHook')


def test_config_that_turns_the_hook_off_keeps_it_off():
    from mmengine.config import Config
    cfg = Config(dict(default_hooks=dict(safe_load=None)))
    assert not add_safe_load_hook(cfg)
    assert cfg.default_hooks.safe_load is None


@pytest.mark.parametrize('config, options, added', [
    ('zoo_style_config', [], True),
    ('tiny_config', [], False),
    ('zoo_style_config', ['default_hooks.safe_load=None'], False),
])
def test_tools_add_the_hook_to_the_command_line(tools, monkeypatch, config,
                                                options, added):
    from mmengine.config import Config
    monkeypatch.syspath_prepend(tools.test_dir)  # its custom_imports
    monkeypatch.setenv('LOCAL_RANK', '0')  # else mmseg's parse_args sets it
    Config.fromfile(getattr(tools, config))  # loads: [] is not an error
    # As mmseg's script reads the command line, --cfg-options included.
    monkeypatch.setattr(sys, 'argv', [
        'tools/test.py', getattr(tools, config), 'model.pth',
        *(['--cfg-options', *options] if options else [])])
    arguments = safe_load_arguments(mmseg_tool_path('test.py'))
    assert arguments == (['--cfg-options', *(
        f'{k}={v}' for k, v in SAFE_LOAD_OPTION.items())] if added else [])


@pytest.mark.parametrize('imports, expected', [
    (None, ['mmspd']),
    ('mmpretrain.models', ['mmpretrain.models', 'mmspd']),
    (['a', 'b'], ['a', 'b', 'mmspd']),
    (['mmspd'], None),
])
def test_added_hook_comes_with_the_import_that_registers_it(imports,
                                                            expected):
    # The runner dumps the config into the work dir; mmseg's own tools
    # build its SafeLoadHook only if the config imports mmspd.
    from mmengine.config import Config, DictAction
    cfg = Config(dict(custom_imports=dict(imports=imports))
                 if imports is not None else {})
    options = safe_load_options(cfg)
    assert options.get('custom_imports.imports') == expected
    # As --cfg-options on mmseg's command line, the same options.
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    words = [f'{k}=[{",".join(v)}]' if isinstance(v, list)
                     else f'{k}={v}' for k, v in options.items()]
    parsed = parser.parse_args(['--cfg-options', *words])
    assert parsed.cfg_options == options
    add_safe_load_hook(cfg)
    assert cfg.custom_imports['imports'] == (expected or ['mmspd'])
    assert cfg.default_hooks.safe_load == dict(type='SafeLoadHook')
