import importlib.util
import os.path as osp
import sys

import pytest

from mmspd.datasets import generate_demo_dataset


@pytest.fixture(scope='session')
def demo_roots(tmp_path_factory):
    """Small generated sets: {'broad': root, 'target': root, 'ood': root}.

    broad: 4 train, 2 val; target: 4 train, 2 val, 2 test; ood: 2 test.
    """
    base = tmp_path_factory.mktemp('demo_data')
    counts = {'broad': (4, 2, 0), 'target': (4, 2, 2), 'ood': (0, 0, 2)}
    roots = {}
    for domain, (train, val, test) in counts.items():
        roots[domain] = str(base / domain)
        generate_demo_dataset(roots[domain], domain=domain, num_train=train,
                              num_val=val, num_test=test, size=64)
    return roots


@pytest.fixture
def run_demo():
    """A fresh import of tools/run_demo.py (tests may patch its globals)."""
    path = osp.join(osp.dirname(osp.dirname(osp.dirname(__file__))),
                    'tools', 'run_demo.py')
    spec = importlib.util.spec_from_file_location('run_demo', path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module
