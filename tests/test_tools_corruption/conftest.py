"""Fixtures for the end-to-end tests of tools/test_corruption.py."""
from __future__ import annotations

import importlib
import importlib.util
import os.path as osp
import sys
from types import ModuleType

import pytest

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TEST_DIR = osp.dirname(osp.abspath(__file__))
TINY_CONFIG = osp.join(TEST_DIR, 'configs', 'tiny_robustness.py')


@pytest.fixture(scope='session')
def mmcv_ops() -> None:
    """Skip a test that builds mmseg models without mmcv's compiled ops."""
    try:
        importlib.import_module('mmcv.ops')
    except (ImportError, OSError) as error:
        pytest.skip('mmseg models and datasets need mmcv with compiled ops '
                    f'({type(error).__name__}: {error})')


def load_tool(name: str) -> ModuleType:
    """Import ``tools/<name>.py`` as a module (its name would clash)."""
    path = osp.join(REPO_ROOT, 'tools', f'{name}.py')
    spec = importlib.util.spec_from_file_location(
        f'mmspd_corruption_tool_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def tiny(tmp_path_factory, mmcv_ops) -> dict:
    """Demo data, a checkpoint of a freshly built tiny model, the config."""
    import torch
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS

    import mmspd  # noqa: F401
    from demo.data import DEMO_CLASSES, generate_demo_dataset

    if TEST_DIR not in sys.path:
        sys.path.insert(0, TEST_DIR)  # the config imports recorder_hook
    tmp = tmp_path_factory.mktemp('robustness')
    root = str(tmp / 'data')
    generate_demo_dataset(root, domain='target', num_train=1, num_val=4,
                          size=64)

    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(Config.fromfile(TINY_CONFIG).model)
    model.init_weights()
    # Untrained, the head scores all 59 classes alike and no pixel is right.
    # Favouring the demo's classes makes the random features choose among
    # them: non-zero metrics that still depend on the input.
    with torch.no_grad():
        for class_id in DEMO_CLASSES.values():
            model.decode_head.conv_seg.bias[class_id - 1] += 1.
    checkpoint = str(tmp / 'tiny.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, checkpoint)
    return {'tmp': tmp, 'data_root': root, 'checkpoint': checkpoint,
                'config': TINY_CONFIG}
