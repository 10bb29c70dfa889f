"""Compatibility fixes in mmspd.utils.compat."""
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub

import mmspd  # noqa: F401  applies allow_mmengine_checkpoints()


def test_message_hub_state_loads_with_weights_only(tmp_path):
    hub = MessageHub.get_instance('compat-test')
    hub.update_scalar('train/loss', np.float64(0.5))
    hub.update_info('seed', np.int64(3))
    path = tmp_path / 'ckpt.pth'
    torch.save(dict(message_hub=hub.state_dict(), meta=dict(
        history=np.arange(3.0))), path)

    loaded = torch.load(path, weights_only=True)
    buffer = loaded['message_hub']['log_scalars']['train/loss']
    assert isinstance(buffer, HistoryBuffer)
    assert buffer.current() == 0.5
    np.testing.assert_array_equal(loaded['meta']['history'], np.arange(3.0))


class _Exploit:

    def __reduce__(self):
        return (os.system, ('true', ))


def test_arbitrary_globals_are_still_refused(tmp_path):
    path = tmp_path / 'evil.pth'
    with open(path, 'wb') as f:
        pickle.dump(_Exploit(), f)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)


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
