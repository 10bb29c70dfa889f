"""mmspd installs into an existing OpenMMLab environment and ships configs.

- Installing the wheel into an environment that holds a user's stack
  (torch 2.1.2, mmcv 2.1.0, mmengine 0.10.4, mmseg 1.2.2, numpy 1.26.4,
  opencv-python 4.8) changes none of it: pip's ``--dry-run --report`` says
  what it would install. The environment holds only the installed-package
  records (``*.dist-info/METADATA``) of that stack, without their own
  requirements, which a real environment has already satisfied.
- The wheel carries ``configs/``, ``tools/`` and ``model-index.yml`` in
  ``mmspd/.mim/`` and nothing of the demo, and a config loads from an
  installed copy outside the checkout, with its ``mmseg::`` bases and as
  the base of a user's config (by path).
"""
from __future__ import annotations

import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import textwrap
import zipfile

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# The checkout's top level, demo/ included: the build must leave it out.
SOURCES = ('pyproject.toml', 'setup.py', 'MANIFEST.in', 'model-index.yml',
           'README.md', 'mmspd', 'configs', 'tools', 'demo')
ADAMSPD = 'swin/upernet_swin-t_adamspd_8xb2-80k_pascal-context-59-480x480.py'

#: The user's OpenMMLab stack (the newest torch with official mmcv 2.1.0
#: wheels is 2.1); installing mmspd must change none of it.
STACK = {
    'torch': '2.1.2',
    'mmcv': '2.1.0',
    'mmengine': '0.10.4',
    'mmsegmentation': '1.2.2',
    'numpy': '1.26.4',
    'opencv-python': '4.8.1.78',
}
#: mmspd's other requirements at the versions current when that stack was
#: (December 2023), for the check that needs no package index.
OTHERS = {
    'imagecorruptions': '1.1.2',
    'filelock': '3.13.1',
    'Pillow': '10.1.0',
    'matplotlib': '3.8.2',
    'scikit-image': '0.22.0',
    'scipy': '1.11.4',
    'ftfy': '6.1.3',
    'regex': '2023.10.3',
    'setuptools': '68.2.2',
}
#: pip's output when the package index cannot be reached.
OFFLINE_SIGNS = ('Could not fetch URL', 'NewConnectionError',
                 'Max retries exceeded', 'Temporary failure in name',
                 'Network is unreachable', '(from versions: none)')


def canonical(name: str) -> str:
    return name.lower().replace('_', '-').replace('.', '-')


def run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, capture_output=True, text=True, check=False, **kwargs)


@pytest.fixture(scope='module')
def wheel(tmp_path_factory) -> str:
    """mmspd's wheel, built from a copy of the checkout's sources."""
    tmp = tmp_path_factory.mktemp('wheel')
    src = tmp / 'src'
    src.mkdir()
    ignore = shutil.ignore_patterns('__pycache__', '*.pyc', '*.egg-info')
    for name in SOURCES:
        path = osp.join(REPO, name)
        if osp.isdir(path):
            shutil.copytree(path, src / name, ignore=ignore)
        else:
            shutil.copy2(path, src / name)
    out = tmp / 'dist'
    # No build isolation: the environment's setuptools builds it, so the
    # test needs no package index.
    result = run([
        sys.executable, '-m', 'pip', 'wheel', '--no-deps',
        '--no-build-isolation', '--no-index', '-w',
        str(out),
        str(src)
    ])
    assert result.returncode == 0, result.stdout + result.stderr
    (built, ) = out.glob('mmspd-*.whl')
    return str(built)


def make_environment(root, records: dict[str, str]) -> str:
    """A virtual environment holding only ``records`` (name -> version) as
    installed-package records; returns its interpreter."""
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip',
                    str(root)], check=True)
    python = osp.join(str(root), 'bin', 'python')
    code = 'import sysconfig; print(sysconfig.get_paths()["purelib"])'
    purelib = run([python, '-c', code]).stdout.strip()
    for name, version in records.items():
        info = osp.join(purelib,
                        f'{canonical(name).replace("-", "_")}-{version}'
                        '.dist-info')
        os.makedirs(info)
        with open(osp.join(info, 'METADATA'), 'w') as f:
            f.write(f'Metadata-Version: 2.1\nName: {name}\n'
                    f'Version: {version}\n')
        with open(osp.join(info, 'INSTALLER'), 'w') as f:
            f.write('pip\n')
        open(osp.join(info, 'RECORD'), 'w').close()
    return python


def dry_run(python: str, wheel: str, *pip_args: str,
            report: str) -> subprocess.CompletedProcess:
    """What ``pip install wheel`` into ``python``'s environment would do."""
    return run([
        sys.executable, '-m', 'pip', '--python', python, 'install',
        '--dry-run', '--report', report, *pip_args, wheel
    ])


def installs(report: str) -> dict[str, str]:
    with open(report) as f:
        items = json.load(f)['install']
    return {
        canonical(item['metadata']['name']): item['metadata']['version']
        for item in items
    }


def test_install_needs_nothing_beyond_the_stack(wheel, tmp_path):
    python = make_environment(tmp_path / 'env', {**STACK, **OTHERS})
    report = str(tmp_path / 'report.json')
    result = dry_run(python, wheel, '--no-index', '--find-links',
                     osp.dirname(wheel), report=report)
    assert result.returncode == 0, result.stdout + result.stderr
    # Every requirement is met by what is installed: only mmspd is added.
    assert set(installs(report)) == {'mmspd'}


def test_install_from_index_leaves_the_stack_alone(wheel, tmp_path):
    python = make_environment(tmp_path / 'env', STACK)
    report = str(tmp_path / 'report.json')
    result = dry_run(python, wheel, report=report)
    if result.returncode != 0:
        output = result.stdout + result.stderr
        if any(sign in output for sign in OFFLINE_SIGNS):
            pytest.skip('the package index cannot be reached, so the '
                        f'missing requirements cannot be resolved:\n'
                        f'{output[-1500:]}')
        pytest.fail(output)
    planned = installs(report)
    assert 'mmspd' in planned
    touched = {name: planned[canonical(name)] for name in STACK
               if canonical(name) in planned}
    assert not touched, f'installing mmspd would replace {touched}'
    # No second OpenCV beside the installed one.
    assert 'opencv-python-headless' not in planned


def test_wheel_ships_configs_tools_and_model_index(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    expected = {'mmspd/.mim/model-index.yml'}
    for folder in ('configs', 'tools'):
        for root, dirs, files in os.walk(osp.join(REPO, folder)):
            dirs[:] = [d for d in dirs if d != '__pycache__']
            for name in files:
                if name.endswith(('.py', '.sh', '.md')):
                    rel = osp.relpath(osp.join(root, name), REPO)
                    expected.add('mmspd/.mim/' + rel.replace(os.sep, '/'))
    assert f'mmspd/.mim/configs/{ADAMSPD}' in expected
    assert 'mmspd/.mim/tools/train.py' in expected
    missing = sorted(expected - names)
    assert not missing, f'not in the wheel: {missing}'
    # The demo (demo/ in the checkout) is not something users import.
    demo = sorted(n for n in names
                  if 'demo' in n.split('/') or 'demo' in osp.basename(n))
    assert not demo, f'demo files in the wheel: {demo}'


INSTALLED_COPY_CHECK = textwrap.dedent('''
    import os.path as osp
    import sys

    site = sys.argv[1]
    import mmspd
    # The installed copy, not the checkout.
    assert mmspd.__file__.startswith(site), mmspd.__file__
    from mmengine.config import Config

    # A shipped config, read the way mim and mmseg's tools read it.
    path = osp.join(site, 'mmspd', '.mim', 'configs', sys.argv[2])
    cfg = Config.fromfile(path)
    assert cfg.model.backbone.type == 'SwinTransformer', cfg.model.backbone
    assert cfg.model.decode_head.num_classes == 59
    assert cfg.train_dataloader.dataset.type == 'PascalContextDataset59'
    assert cfg.optim_wrapper.type == 'OptimWrapper'
    assert cfg.optim_wrapper.optimizer.type == 'AdamSPD'

    # A user's config inheriting it by its path.
    user = osp.join(sys.argv[3], 'user_config.py')
    with open(user, 'w') as f:
        f.write(f"_base_ = [{path!r}]\\n"
                "optim_wrapper = dict(optimizer=dict(weight_decay=0.3))\\n")
    cfg = Config.fromfile(user)
    assert cfg.optim_wrapper.optimizer.weight_decay == 0.3
    assert cfg.optim_wrapper.optimizer.type == 'AdamSPD'
    assert cfg.model.decode_head.num_classes == 59
    print('ok')
''')


def test_config_and_tools_work_from_installed_copy(wheel, tmp_path):
    site = tmp_path / 'site'
    result = run([
        sys.executable, '-m', 'pip', 'install', '--no-deps', '--no-index',
        '--target',
        str(site), wheel
    ])
    assert result.returncode == 0, result.stdout + result.stderr
    env = dict(os.environ, PYTHONPATH=str(site))
    result = run(
        [sys.executable, '-c', INSTALLED_COPY_CHECK,
         str(site), ADAMSPD, str(tmp_path)],
        cwd=str(tmp_path),
        env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith('ok')

    # The shipped train tool runs mmseg's, without the checkout.
    tool = site / 'mmspd' / '.mim' / 'tools' / 'train.py'
    result = run([sys.executable, str(tool), '--help'],
                 cwd=str(tmp_path),
                 env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert '--amp' in result.stdout and '--cfg-options' in result.stdout
