import pytest

from demo.data import generate_demo_dataset


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
