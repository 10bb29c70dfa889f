"""SPD under DDP: 2 gloo processes on the CPU, each route once.

Every rank decides SPD on its own from its own copy of the weights, so only
bit-identical steps keep the replicas equal (DDP never re-syncs weights).
``ddp_worker.py`` trains the same model on different per-rank batches along
each route, in one pair of processes.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).with_name('ddp_worker.py')
REPO = Path(__file__).resolve().parents[2]
ROUTES = ('adam_spd', 'wrapper_adamw', 'constructor_adamw', 'hook_adamw',
          'constructor_sgd', 'hook_sgd')


@pytest.fixture(scope='module')
def results(tmp_path_factory):
    """What the worker reports per route (one 2-process run)."""
    tmp_path = tmp_path_factory.mktemp('ddp')
    out = tmp_path / 'result.json'
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        filter(None, [str(REPO), env.get('PYTHONPATH')]))
    subprocess.run(
        [sys.executable, str(WORKER), str(out), str(tmp_path / 'store')],
        check=True, timeout=180, env=env)
    results = json.loads(out.read_text())
    assert sorted(results) == sorted(ROUTES)
    return results


@pytest.mark.parametrize('route', ROUTES)
def test_two_gloo_processes_keep_identical_weights_anchors_and_statistics(
        results, route):
    result = results[route]
    assert result['weights'] == 0.0
    assert result['anchors'] == 0.0
    assert result['statistics'] == 0.0
    # The run moved away from the anchors and SPD acted on it.
    assert result['moved'] > 1e-3
    assert result['selected'] > 0


@pytest.mark.parametrize('hook, other', [
    ('hook_adamw', 'constructor_adamw'),
    ('hook_adamw', 'wrapper_adamw'),
    ('hook_sgd', 'constructor_sgd'),
])
def test_spd_hook_trains_as_the_constructor_and_the_wrapper(
        results, hook, other):
    # One mechanism behind every route: the same weights, bit for bit.
    assert results[hook]['final'] == results[other]['final']
    assert results[hook]['selected'] == results[other]['selected']
