"""tools/benchmark_corruptions.py runs and reports every route (no timing
is asserted: speed is the script's business, not a test's)."""
from __future__ import annotations

import importlib.util
import os.path as osp

import cv2
import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture(scope='module')
def tool():
    spec = importlib.util.spec_from_file_location(
        'mmspd_test_benchmark_corruptions',
        osp.join(ROOT, 'tools', 'benchmark_corruptions.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_prints_every_severity_and_the_sums(tool, capsys):
    threads = cv2.getNumThreads()
    try:
        assert tool.main(['--corruptions', 'brightness', 'gaussian_noise',
                          '--sizes', '40x48', '--repeats', '1']) == 0
    finally:
        cv2.setNumThreads(threads)
    out = capsys.readouterr().out
    assert '40x48' in out
    for name in ('brightness', 'gaussian_noise'):
        for severity in range(1, 6):
            assert f'{name}  {severity} ' in out
        assert f'{name}  1-5 ' in out
    assert 'all together' in out
    assert '100.00% within 1 level' in out  # brightness, every severity


@pytest.mark.parametrize('argv, message', [
    (['--corruptions', 'fogg'], "'fogg'"),
])
def test_unknown_corruption_is_an_error(tool, argv, message, capsys):
    assert tool.main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize('argv', [['--repeats', '0'], ['--threads', '0'],
                                  ['--sizes', '20x40'], ['--sizes', '5']])
def test_bad_arguments_exit_with_a_message(tool, argv, capsys):
    with pytest.raises(SystemExit) as info:
        tool.main(argv)
    assert info.value.code == 2
    assert 'error' in capsys.readouterr().err
