"""Fixtures for the end-to-end tests of the train and test tools."""
from __future__ import annotations

import importlib
import os
import os.path as osp
import subprocess
import sys

import pytest

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TEST_DIR = osp.dirname(osp.abspath(__file__))
TINY_CONFIG = osp.join(TEST_DIR, 'configs', 'tiny_adamspd.py')
# The same without SafeLoadHook, as configs of mmseg's model zoo are.
ZOO_STYLE_CONFIG = osp.join(TEST_DIR, 'configs', 'tiny_zoo_style.py')


def _mmcv_ops_missing() -> str | None:
    try:
        importlib.import_module('mmcv.ops')
    except (ImportError, OSError) as error:  # OSError: a broken build
        return f'{type(error).__name__}: {error}'
    return None


@pytest.fixture(scope='session')
def mmcv_ops() -> None:
    """Skip a test that builds mmseg models or datasets without mmcv ops."""
    missing = _mmcv_ops_missing()
    if missing is not None:
        pytest.skip('mmseg models and datasets need mmcv with compiled ops '
                    f'({missing})')


def tool_env(cuda: bool = False) -> dict:
    """Environment for a tool subprocess: CPU only unless ``cuda``, test
    hook importable."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in (REPO_ROOT, TEST_DIR, env.get('PYTHONPATH')) if p)
    # The runs compare checkpoints bit for bit; one device keeps them so.
    if not cuda:
        env['CUDA_VISIBLE_DEVICES'] = ''
    return env


def run_tool(args: list[str],
             timeout: float = 300,
             expect_failure: bool = False) -> str:
    """Run a command from the repository root and return its output.

    Fails the test, showing the output, when the exit status is not what
    ``expect_failure`` says.
    """
    proc = subprocess.run(
        args,
        check=False,
        cwd=REPO_ROOT,
        env=tool_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout)
    if (proc.returncode != 0) != expect_failure:
        pytest.fail(f'{" ".join(args)} exited with {proc.returncode}:\n'
                    f'{proc.stdout[-6000:]}')
    return proc.stdout


def tool_cmd(tool: str, positional: list[str], work_dir: str,
             data_root: str, *extra: str) -> list[str]:
    """mmspd's ``tool`` (``'tools/test.py'``, ...) with ``positional``
    arguments, reading the demo data at ``data_root``; ``extra`` follows
    ``--cfg-options``."""
    return [
        sys.executable, tool, *positional, '--work-dir', work_dir,
        '--cfg-options',
        f'train_dataloader.dataset.data_root={data_root}',
        f'val_dataloader.dataset.data_root={data_root}',
        f'test_dataloader.dataset.data_root={data_root}', *extra
    ]


def train_cmd(work_dir: str,
              data_root: str,
              *extra: str,
              config: str = TINY_CONFIG) -> list[str]:
    """mmspd's tools/train.py on ``config`` (the tiny one), reading the
    demo data at ``data_root``."""
    return tool_cmd('tools/train.py', [config], work_dir, data_root, *extra)


class Tools:
    """The helpers above, handed to tests by the ``tools`` fixture."""
    repo_root = REPO_ROOT
    test_dir = TEST_DIR
    tiny_config = TINY_CONFIG
    zoo_style_config = ZOO_STYLE_CONFIG
    tool_env = staticmethod(tool_env)
    run_tool = staticmethod(run_tool)
    train_cmd = staticmethod(train_cmd)
    tool_cmd = staticmethod(tool_cmd)


@pytest.fixture(scope='session')
def tools() -> type[Tools]:
    return Tools


@pytest.fixture(scope='session')
def demo_root(tmp_path_factory) -> str:
    """A small synthetic PASCAL-Context-layout dataset (64x64 images)."""
    from demo.data import generate_demo_dataset
    root = str(tmp_path_factory.mktemp('demo_data'))
    generate_demo_dataset(root, num_train=16, num_val=4, size=64)
    return root
