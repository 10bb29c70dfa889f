"""Compatibility fixes in mmspd.utils.compat, and what `import mmspd` does
to the process (registers modules, nothing else)."""
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub

from mmspd.utils import mmengine_safe_globals

needs_weights_only_default = pytest.mark.skipif(
    torch.__version__ < (2, 6),
    reason='torch < 2.6 loads every global by default: nothing to allow')


def _safe_globals() -> set:
    return set(torch.serialization.get_safe_globals())


@pytest.fixture
def hub_checkpoint(tmp_path):
    """A file holding what MMEngine checkpoints hold besides tensors."""
    hub = MessageHub.get_instance('compat-test')
    hub.update_scalar('train/loss', np.float64(0.5))
    hub.update_info('seed', np.int64(3))
    path = tmp_path / 'ckpt.pth'
    torch.save(dict(message_hub=hub.state_dict(), meta=dict(
        history=np.arange(3.0), iter=np.int64(7))), path)
    return path


def test_message_hub_state_loads_inside_the_block(hub_checkpoint):
    # As MMEngine loads: torch.load without weights_only.
    with mmengine_safe_globals():
        loaded = torch.load(hub_checkpoint)
    buffer = loaded['message_hub']['log_scalars']['train/loss']
    assert isinstance(buffer, HistoryBuffer)
    assert buffer.current() == 0.5
    assert buffer.statistics('mean') == 0.5
    assert loaded['message_hub']['runtime_info']['seed'] == 3
    np.testing.assert_array_equal(loaded['meta']['history'], np.arange(3.0))


@needs_weights_only_default
def test_allow_list_lasts_only_for_the_block(hub_checkpoint):
    before = _safe_globals()
    with mmengine_safe_globals():
        assert HistoryBuffer in _safe_globals()
    assert _safe_globals() == before
    with pytest.raises(RuntimeError, match='stop'), mmengine_safe_globals():
        raise RuntimeError('stop')
    assert _safe_globals() == before
    # Outside the block, a weights-only load refuses it again.
    with pytest.raises(pickle.UnpicklingError, match='HistoryBuffer'):
        torch.load(hub_checkpoint, weights_only=True)


class _Exploit:

    def __reduce__(self):
        return (os.system, ('true', ))


class _Attribute:
    """Pickles as getattr(owner, name), as methods are pickled."""

    def __init__(self, owner, name):
        self.owner, self.name = owner, name

    def __reduce__(self):
        return (getattr, (self.owner, self.name))


@needs_weights_only_default
@pytest.mark.parametrize('payload', [
    _Exploit(),
    _Attribute(HistoryBuffer, '__init__'),
    _Attribute(np.ndarray, 'tofile'),
], ids=['os.system', 'HistoryBuffer.__init__', 'ndarray.tofile'])
def test_other_globals_are_refused_inside_the_block(tmp_path, payload):
    path = tmp_path / 'evil.pth'
    with open(path, 'wb') as f:
        pickle.dump(payload, f, protocol=2)
    with mmengine_safe_globals():
        assert getattr not in _safe_globals()
        with pytest.raises(pickle.UnpicklingError):
            torch.load(path)


def test_import_mmspd_changes_nothing_but_registries():
    # A fresh process: what importing mmspd does to torch's allow-list and
    # to MMEngine's table of config packages.
    code = (
        'import builtins, torch\n'
        'from mmengine.config import utils\n'
        'get = getattr(torch.serialization, "get_safe_globals", list)\n'
        'before, table = list(get()), dict(utils.MODULE2PACKAGE)\n'
        'import mmspd\n'
        'from mmengine.registry import HOOKS, OPTIMIZERS\n'
        'assert OPTIMIZERS.get("AdamSPD") is not None\n'
        'assert HOOKS.get("SafeLoadHook") is not None\n'
        'assert dict(utils.MODULE2PACKAGE) == table\n'
        '# torch allow-lists its own types as its modules get imported\n'
        '# (DTensor, nested tensors); nothing else may appear.\n'
        'added = [g for g in get() if g not in before]\n'
        'names = [getattr(g[0] if isinstance(g, tuple) else g,\n'
        '                 "__module__", "") for g in added]\n'
        'assert all(n.startswith("torch.") for n in names), added\n'
        'assert builtins.getattr not in get()\n')
    result = subprocess.run([sys.executable, '-c', code],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_imagecorruptions_imports_without_pkg_resources():
    # A setuptools without pkg_resources is simulated by blocking the module.
    code = (
        'import sys\n'
        "sys.modules['pkg_resources'] = None\n"
        'try:\n'
        '    import imagecorruptions\n'
        'except ImportError:\n'
        '    pass\n'
        'else:\n'
        "    raise SystemExit('imagecorruptions imported without the fix')\n"
        "sys.modules.pop('imagecorruptions', None)\n"
        "sys.modules.pop('imagecorruptions.corruptions', None)\n"
        'import numpy as np\n'
        'from mmspd.utils.compat import import_imagecorruptions\n'
        'ic = import_imagecorruptions()\n'
        'np.random.seed(0)\n'
        'img = np.full((64, 64, 3), 128, np.uint8)\n'
        "out = ic.corrupt(img, corruption_name='frost', severity=1)\n"
        'assert out.shape == img.shape, out.shape\n'
        'assert not np.array_equal(out, img)\n'
        '# The stand-in is gone again: nothing else can mistake it.\n'
        "assert sys.modules['pkg_resources'] is None\n")
    result = subprocess.run([sys.executable, '-c', code],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
