import pytest

from mmspd.datasets import generate_demo_dataset


@pytest.fixture(scope='session')
def demo_roots(tmp_path_factory):
    """Small generated datasets for both domains: {'A': root, 'B': root}."""
    base = tmp_path_factory.mktemp('demo_data')
    roots = {}
    for seed, domain in enumerate('AB'):
        roots[domain] = str(base / f'domain_{domain}')
        generate_demo_dataset(roots[domain], domain=domain, num_train=4,
                              num_val=2, size=64, seed=seed)
    return roots
