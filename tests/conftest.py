"""Settings shared by the whole test suite.

- ``device``: where tensor tests run. CUDA when a GPU is present, else CPU;
  ``MMSPD_TEST_DEVICE=cpu`` (or ``cuda``) picks one explicitly. Tests that
  make sense on one device only say so with a ``skipif`` and a reason.
- Deterministic mode and the cuDNN flags never leak out of a test: they are
  restored after every test, and ``deterministic`` turns the mode on for
  one test only.
- MMEngine instances named per run (loggers, message hubs, visualizers)
  do not outlive the test that made them.
- ``close_tol``: the tolerance for comparing results computed on different
  devices or by differently ordered reductions (see its docstring).
"""
from __future__ import annotations

import os

import pytest
import torch


def _pick_device() -> torch.device:
    wanted = os.environ.get('MMSPD_TEST_DEVICE')
    if wanted:
        if wanted not in ('cpu', 'cuda'):
            raise ValueError(f'Invalid MMSPD_TEST_DEVICE: {wanted!r} '
                             "(expected 'cpu' or 'cuda')")
        if wanted == 'cuda' and not torch.cuda.is_available():
            raise RuntimeError('MMSPD_TEST_DEVICE=cuda but no CUDA device '
                               'is available')
        return torch.device(wanted)
    return torch.device('cuda' if torch.cuda.is_available() else 'cpu')


@pytest.fixture(scope='session')
def device() -> torch.device:
    """The device tensor tests run on: CUDA when available, else CPU."""
    return _pick_device()


@pytest.fixture(autouse=True)
def _restore_determinism():
    """Undo any change a test makes to the determinism settings."""
    mode = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    cudnn = (torch.backends.cudnn.deterministic,
             torch.backends.cudnn.benchmark)
    yield
    torch.use_deterministic_algorithms(mode, warn_only=warn_only)
    (torch.backends.cudnn.deterministic,
     torch.backends.cudnn.benchmark) = cudnn


def _managed_classes() -> list[type]:
    """MMEngine's globally named classes (loggers, message hubs,
    visualizers, ...), each with its own table of instances."""
    try:
        from mmengine.utils import ManagerMixin
    except ImportError:  # torch-only environment
        return []
    found, todo = [], [ManagerMixin]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if '_instance_dict' in vars(cls):
            found.append(cls)
    return found


@pytest.fixture(autouse=True)
def _forget_mmengine_instances():
    """Forget the MMEngine loggers, message hubs and visualizers a test made.

    A runner names them after its start time, to the second, so two runs
    in one second would share them, and a logger would write to the
    captured output of a test that has ended (a closed file).
    """
    before = {cls: set(vars(cls)['_instance_dict'])
              for cls in _managed_classes()}
    yield
    for cls in _managed_classes():
        table = vars(cls)['_instance_dict']
        for name in [n for n in table if n not in before.get(cls, ())]:
            del table[name]


@pytest.fixture
def deterministic():
    """Deterministic algorithms for one test, warning where CUDA has none.

    Some CUDA backward kernels (``adaptive_avg_pool2d``, ``histc``) have no
    deterministic version; ``warn_only`` keeps such tests running.
    """
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    yield


@pytest.fixture(scope='session')
def close_tol(device):
    """Tolerances for results whose reductions may be ordered differently.

    On CPU the suite compares paths that reduce in the same order, exactly
    or to float64 rounding. CUDA reductions (norms, sums, atomics) group
    terms differently from one kernel to the next, so float32 results are
    compared to a few float32 ulps of accumulated rounding and float64 ones
    to about 1e-10.
    """

    def tol(dtype: torch.dtype) -> dict[str, float]:
        if dtype == torch.float64:
            return ({'rtol': 1e-12, 'atol': 1e-14} if device.type == 'cpu'
                    else {'rtol': 1e-10, 'atol': 1e-12})
        return ({'rtol': 1e-5, 'atol': 1e-6} if device.type == 'cpu' else
                {'rtol': 1e-4, 'atol': 1e-5})

    return tol
