"""Ship ``configs/``, ``tools/`` and ``model-index.yml`` in the wheel.

OpenMMLab packages carry their configs and tools in ``<package>/.mim/``:
``mim train mmspd CONFIG`` runs ``mmspd/.mim/tools/train.py`` on a config
found under ``mmspd/.mim/configs``, and a user's config inherits one by its
path there. The demo (``demo/``) is not shipped. Everything else is in
``pyproject.toml``.

The copies are made in the build directory only, so the source tree keeps
one copy of each file; an editable install has no ``.mim`` and is used
with the checkout's ``configs/`` and ``tools/``.
"""
import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = os.path.dirname(os.path.abspath(__file__))
MIM_ITEMS = ('configs', 'tools', 'model-index.yml')


class BuildPyWithMim(build_py):
    """``build_py`` that also copies :data:`MIM_ITEMS` into ``mmspd/.mim``."""

    def run(self) -> None:
        super().run()
        if getattr(self, 'editable_mode', False):
            return
        mim = os.path.join(self.build_lib, 'mmspd', '.mim')
        for item in MIM_ITEMS:
            src = os.path.join(ROOT, item)
            dst = os.path.join(mim, item)
            if not os.path.exists(src):
                raise FileNotFoundError(
                    f'{src} is missing; an sdist must include it '
                    '(see MANIFEST.in)')
            if os.path.isdir(dst):
                shutil.rmtree(dst)
            if os.path.isdir(src):
                shutil.copytree(
                    src, dst,
                    ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
            else:
                os.makedirs(mim, exist_ok=True)
                shutil.copy2(src, dst)


setup(cmdclass={'build_py': BuildPyWithMim})
