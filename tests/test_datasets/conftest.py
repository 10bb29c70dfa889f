"""Fixtures for the 21-class PASCAL-Context tests: generated data in both
layouts (``pascal_data.py``) and a skip when mmseg cannot run."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def load_pascal_data():
    """Import ``pascal_data.py`` beside this file."""
    spec = importlib.util.spec_from_file_location('mmspd_test_pascal_data',
                                                  HERE / 'pascal_data.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='session')
def pascal_data():
    """Generators of PASCAL_MT folders and PASCAL-Context releases."""
    return load_pascal_data()


@pytest.fixture(scope='session')
def mmseg_ready() -> None:
    """Skip a test that builds mmseg datasets or models when mmcv has no
    compiled ops (mmseg imports them)."""
    pytest.importorskip('mmcv.ops',
                        reason='mmseg imports mmcv\'s compiled ops')
    from mmseg.utils import register_all_modules

    import mmspd  # noqa: F401  registers the dataset
    register_all_modules(init_default_scope=True)


@pytest.fixture(scope='module')
def pascal_mt(pascal_data, tmp_path_factory):
    """A PASCAL_MT folder: 4 train and 2 val images, of which one of each
    also has a VOC12 label map. Returns ``(root, labels)``."""
    root = tmp_path_factory.mktemp('PASCAL_MT')
    train = ['2008_000002', '2008_000003', '2008_000007', '2008_000009']
    val = ['2008_000010', '2008_000012']
    labels = pascal_data.write_pascal_mt(
        root, train, val, voc12=('2008_000003', '2008_000012'))
    return root, labels
