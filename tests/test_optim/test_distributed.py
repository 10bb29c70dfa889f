import json
import os
import subprocess
import sys
from pathlib import Path

WORKER = Path(__file__).with_name('ddp_worker.py')
REPO = Path(__file__).resolve().parents[2]


def test_two_gloo_processes_keep_identical_weights_and_anchors(tmp_path):
    out = tmp_path / 'result.json'
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        filter(None, [str(REPO), env.get('PYTHONPATH')]))
    subprocess.run(
        [sys.executable, str(WORKER), str(out), str(tmp_path / 'store')],
        check=True, timeout=180, env=env)
    results = json.loads(out.read_text())
    for name in ('wrapper', 'adam_spd'):
        result = results[name]
        assert result['weights'] == 0.0, name
        assert result['anchors'] == 0.0, name
        # The run moved away from the anchors and SPD acted on it.
        assert result['moved'] > 1e-3, name
        assert result['selected'] > 0, name
