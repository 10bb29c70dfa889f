"""mmspd's tools/train.py and tools/test.py are mmseg's, run after mmspd.

They add no flags and no checks of their own: what a user types is what
mmseg's scripts accept, and what they print on a bad call is mmseg's.
"""
from __future__ import annotations

import importlib.util
import os.path as osp
import sys

import pytest

from mmspd.utils import check_pkg_resources, mmseg_tool_path, mmseg_tools


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
