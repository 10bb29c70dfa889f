import importlib.util
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).parent


def _load(name):
    spec = importlib.util.spec_from_file_location(f'mmspd_test_{name}',
                                                  HERE / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='session')
def reference_cls():
    """The plain per-tensor implementation of the authors' algorithm."""
    from mmspd.optim.adam_spd_reference import ReferenceAdamSPD
    return ReferenceAdamSPD


@pytest.fixture(scope='session')
def helpers():
    """Small model, data and comparison helpers (``helpers.py``)."""
    return _load('helpers')


@pytest.fixture(autouse=True)
def single_thread():
    """The models here are tiny; extra threads only contend for the CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
