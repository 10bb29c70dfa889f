"""The setup refuses mmcv wheels that lack the compiled ops."""
import os.path as osp
import subprocess
import sys
import zipfile

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'check_mmcv_wheel.py')


def _wheel(path, names):
    with zipfile.ZipFile(path, 'w') as archive:
        for name in names:
            archive.writestr(name, b'')
    return path


def _check(wheel):
    return subprocess.run([sys.executable, TOOL, str(wheel)],
                          capture_output=True, text=True, check=False)


def test_accepts_wheel_with_ops(tmp_path):
    wheel = _wheel(tmp_path / 'mmcv-2.1.0-cp311-cp311-linux_x86_64.whl', [
        'mmcv/__init__.py',
        'mmcv/_ext.cpython-311-x86_64-linux-gnu.so',
    ])
    assert _check(wheel).returncode == 0


@pytest.mark.parametrize('content', ['lite', 'not-a-zip'])
def test_rejects_wheel_without_ops(tmp_path, content):
    wheel = tmp_path / 'mmcv-2.1.0-py3-none-any.whl'
    if content == 'lite':
        _wheel(wheel, ['mmcv/__init__.py', 'mmcv/ops/__init__.py'])
        message = 'without compiled ops (no mmcv._ext inside)'
    else:
        wheel.write_text('interrupted download')
        message = 'cannot read mmcv wheel'
    result = _check(wheel)
    assert result.returncode == 1
    assert message in result.stderr and str(wheel) in result.stderr

