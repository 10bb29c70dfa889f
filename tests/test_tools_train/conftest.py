"""Fixtures for the end-to-end tests of tools/train.py and tools/test.py."""
from __future__ import annotations

import importlib.util
import os
import os.path as osp
import socket
import subprocess
import sys
from types import ModuleType

import pytest

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TEST_DIR = osp.dirname(osp.abspath(__file__))
TINY_CONFIG = osp.join(TEST_DIR, 'configs', 'tiny_adamspd.py')


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


def load_tool(name: str) -> ModuleType:
    """Import ``tools/<name>.py`` as a module."""
    path = osp.join(REPO_ROOT, 'tools', f'{name}.py')
    spec = importlib.util.spec_from_file_location(f'mmspd_tool_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def tool_env() -> dict:
    """Environment for a tool subprocess: CPU only, test hook importable."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in (REPO_ROOT, TEST_DIR, env.get('PYTHONPATH')) if p)
    env['CUDA_VISIBLE_DEVICES'] = ''
    env['PYTHON'] = sys.executable
    env['PORT'] = str(free_port())
    # Two ranks on a small CPU: one thread each avoids oversubscription.
    env['OMP_NUM_THREADS'] = '1'
    return env


def run_tool(args: list[str], timeout: float = 240) -> None:
    """Run a command from the repository root; fail with its output."""
    proc = subprocess.run(
        args,
        check=False,
        cwd=REPO_ROOT,
        env=tool_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout)
    if proc.returncode != 0:
        pytest.fail(f'{" ".join(args)} exited with {proc.returncode}:\n'
                    f'{proc.stdout[-6000:]}')


def train_cmd(work_dir: str, data_root: str, *extra: str,
              gpus: int | None = None) -> list[str]:
    """tools/train.py (or tools/dist_train.sh with ``gpus``) on the tiny
    config, reading the demo data at ``data_root``."""
    options = [
        '--work-dir', work_dir, '--cfg-options',
        f'train_dataloader.dataset.data_root={data_root}',
        f'val_dataloader.dataset.data_root={data_root}',
        f'test_dataloader.dataset.data_root={data_root}', *extra
    ]
    if gpus is None:
        return [sys.executable, 'tools/train.py', TINY_CONFIG, *options]
    return ['bash', 'tools/dist_train.sh', TINY_CONFIG, str(gpus), *options]


class Tools:
    """The helpers above, handed to tests by the ``tools`` fixture."""
    repo_root = REPO_ROOT
    test_dir = TEST_DIR
    tiny_config = TINY_CONFIG
    load_tool = staticmethod(load_tool)
    run_tool = staticmethod(run_tool)
    train_cmd = staticmethod(train_cmd)


@pytest.fixture(scope='session')
def tools() -> type[Tools]:
    return Tools


@pytest.fixture(scope='session')
def demo_root(tmp_path_factory) -> str:
    """A small synthetic PASCAL-Context-layout dataset (64x64 images)."""
    from mmspd.datasets import generate_demo_dataset
    root = str(tmp_path_factory.mktemp('demo_data'))
    generate_demo_dataset(root, domain='A', num_train=16, num_val=4, size=64)
    return root
