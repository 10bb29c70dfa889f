"""SPD on configs of mmseg's model zoo, trained by mmseg's tools/train.py.

A user turns SPD on in any mmseg config with a child config of three
lines (README, "SPD on your own mmseg config"). Each test takes a zoo
config of one kind (a layer-decay constructor, AdamW with ``custom_keys``,
SGD on Cityscapes, ``AmpOptimWrapper`` with ``--amp``), shrinks it
(``zoo.py``: fewer layers and channels, small crops, 2 iterations,
generated data in the dataset's layout) and trains it, each time in a
process of mmseg's own ``tools/train.py``: as it is, and with those lines.
Every param group must keep its learning rate and decay multiplier (and
every other key the config's constructor set), and SPD must have run:
anchors in the saved optimizer state, statistics in the log. The corruption
benchmark (mmseg's tools/test.py with ``CorruptionTestLoop``) then runs on
the SPD checkpoints, with the zoo configs' own test settings.
"""
from __future__ import annotations

import glob
import importlib.util
import json
import os.path as osp
import subprocess
import sys
from dataclasses import dataclass, field

import pytest
import torch

from mmspd.utils import mmseg_tool_path


def _load_zoo():
    path = osp.join(osp.dirname(osp.abspath(__file__)), 'zoo.py')
    spec = importlib.util.spec_from_file_location('mmspd_test_zoo', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


zoo_helpers = _load_zoo()

LAMBDA = 1.0
SPD_LINES = f"""
custom_imports = dict(imports=['mmspd'], allow_failed_imports=False)
custom_hooks = [dict(type='SPDHook'), dict(type='SPDStatsHook', interval=1)]
optim_wrapper = dict(optimizer=dict(weight_decay={LAMBDA}))
default_hooks = dict(safe_load=dict(type='SafeLoadHook'))
"""


@dataclass
class Zoo:
    """A zoo config and how to shrink it (see ``zoo.tiny_config``)."""
    config: str
    dataset: str
    crop_height: int
    model: dict
    optim_wrapper: dict = field(default_factory=dict)


TINY_BEIT = dict(
    pretrained=None,
    backbone=dict(img_size=(64, 64), embed_dims=32, num_layers=4,
                  num_heads=2, out_indices=(0, 1, 2, 3)),
    neck=dict(embed_dim=32),
    decode_head=dict(in_channels=[32] * 4, channels=16),
    auxiliary_head=dict(in_channels=32, channels=16))

ZOO = {
    # LayerDecayOptimizerConstructor: a learning rate per BEiT layer.
    'beit': Zoo('beit/beit-base_upernet_8xb2-160k_ade20k-640x640.py',
                'ade20k', 64, TINY_BEIT,
                dict(paramwise_cfg=dict(num_layers=4))),
    # AmpOptimWrapper (accumulating 2 iterations) and layer decay.
    'beit-amp': Zoo('beit/beit-large_upernet_8xb1-amp-160k_ade20k-640x640.py',
                    'ade20k', 64, TINY_BEIT,
                    dict(paramwise_cfg=dict(num_layers=4))),
    # AdamW with custom_keys: head lr x10, no decay for norms and pos_block.
    'segformer': Zoo(
        'segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py', 'ade20k',
        64, dict(backbone=dict(init_cfg=None))),
    # SGD with momentum on Cityscapes.
    'deeplabv3plus': Zoo(
        'deeplabv3plus/deeplabv3plus_r18-d8_4xb2-80k_cityscapes-512x1024.py',
        'cityscapes', 32, dict(pretrained=None)),
}


def load(path: str) -> dict:
    # Checkpoints these tests wrote; the full unpickler is safe here.
    return torch.load(path, map_location='cpu', weights_only=False)


class Run:
    """mmseg's tools/train.py (or test.py) in a process of its own."""

    def __init__(self, tools, config: str, work_dir: str, *extra: str,
                 cuda: bool = False, checkpoint: str | None = None) -> None:
        # With a checkpoint, tools/test.py tests it.
        tool = ['test.py', config, checkpoint] if checkpoint else [
            'train.py', config]
        self.args = [sys.executable, mmseg_tool_path(tool[0]), *tool[1:],
                     '--work-dir', work_dir, *extra]
        self.work_dir = work_dir
        self.log_path = f'{work_dir}.log'
        # Runs go in pairs; one thread each keeps them off each other.
        env = dict(tools.tool_env(cuda), OMP_NUM_THREADS='1',
                   MKL_NUM_THREADS='1')
        with open(self.log_path, 'w') as log:
            self.proc = subprocess.Popen(
                self.args, cwd=tools.repo_root, env=env, stdout=log,
                stderr=subprocess.STDOUT)

    def finish(self, expect_failure: bool = False,
               timeout: float = 300) -> tuple[str, dict | None]:
        """Wait; return the log and the checkpoint of iteration 2."""
        try:
            returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        with open(self.log_path) as f:
            log = f.read()
        if (returncode != 0) != expect_failure:
            pytest.fail(f'{" ".join(self.args)} exited with {returncode}:\n'
                        f'{log[-6000:]}')
        checkpoint = osp.join(self.work_dir, 'iter_2.pth')
        return log, (load(checkpoint) if osp.isfile(checkpoint) else None)


class ZooRuns:
    """Shrunk zoo configs, their data and their runs without SPD.

    A run without SPD starts when a test first asks for its folder, so it
    trains beside the test's own run.
    """

    def __init__(self, tools, root) -> None:
        self.tools = tools
        self.root = root
        self._plain: dict[str, Run | tuple] = {}
        self._spd: dict[str, tuple] = {}

    def folder(self, name: str, *extra: str, cuda: bool = False) -> str:
        """The folder of ``tiny.py`` and ``data/`` of a zoo entry."""
        key = ' '.join((name, *extra))
        folder = self.root / name
        if not folder.is_dir():
            zoo = ZOO[name]
            data_root = zoo_helpers.generate_zoo_data(
                str(folder / 'data'), zoo.dataset)
            cfg = zoo_helpers.tiny_config(zoo.config, data_root, zoo.model,
                                          zoo.crop_height)
            cfg.merge_from_dict(dict(optim_wrapper=zoo.optim_wrapper))
            cfg.dump(str(folder / 'tiny.py'))
        if key not in self._plain:
            self._plain[key] = Run(
                self.tools, str(folder / 'tiny.py'),
                str(folder / f'plain{len(self._plain)}'), *extra, cuda=cuda)
        return str(folder)

    def spd(self, name: str) -> tuple[str, str, str, dict]:
        """The config with SPD_LINES, trained: config, work dir, log and
        checkpoint of iteration 2."""
        if name not in self._spd:
            folder = self.folder(name)
            config = child_config(folder, 'spd', SPD_LINES)
            work_dir = osp.join(folder, 'spd')
            self._spd[name] = (config, work_dir,
                               *Run(self.tools, config, work_dir).finish())
        return self._spd[name]

    def plain(self, name: str, *extra: str) -> dict:
        """The checkpoint of the shrunk config trained as it is."""
        key = ' '.join((name, *extra))
        run = self._plain[key]
        if isinstance(run, Run):
            self._plain[key] = run.finish()
        return self._plain[key][1]


@pytest.fixture(scope='module')
def zoo(mmcv_ops, tools, tmp_path_factory) -> ZooRuns:
    return ZooRuns(tools, tmp_path_factory.mktemp('zoo'))


def child_config(folder: str, name: str, lines: str) -> str:
    """A config inheriting ``tiny.py`` that adds ``lines``."""
    path = osp.join(folder, f'{name}.py')
    with open(path, 'w') as f:
        f.write(f"_base_ = ['./tiny.py']\n{lines}")
    return path


def base_weight_decay(folder: str) -> float:
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(folder, 'tiny.py'))
    return cfg.optim_wrapper.optimizer.weight_decay


def assert_same_groups(plain: dict, spd: dict, base_wd: float) -> None:
    """SPD kept every group: parameters, lr, every key, decay multiplier."""
    plain_groups = plain['optimizer']['param_groups']
    spd_groups = spd['optimizer']['param_groups']
    assert len(spd_groups) == len(plain_groups)
    for index, (a, b) in enumerate(zip(plain_groups, spd_groups)):
        for key, value in a.items():
            if key != 'weight_decay':
                assert b[key] == value, (index, key)
        # The multiplier of the config's decay carries over to lambda.
        assert b['weight_decay'] * base_wd == pytest.approx(
            a['weight_decay'] * LAMBDA, rel=1e-12), index


def assert_spd_ran(plain: dict, spd: dict, log: str) -> None:
    state = spd['optimizer']['state']
    stepped = [i for i, s in state.items()
               if {'exp_avg', 'momentum_buffer'} & s.keys()]
    assert stepped
    assert all('anchor' in state[i] for i in stepped)
    assert not any('anchor' in s for s in plain['optimizer']['state'].values())
    assert 'SPDHook: SPD attached to' in log
    assert 'spd_selected' in log


@pytest.mark.parametrize('name', ['beit', 'segformer', 'deeplabv3plus'])
def test_spd_hook_keeps_the_zoo_config_groups(name, zoo, tools):
    _, _, log, spd = zoo.spd(name)
    plain = zoo.plain(name)
    assert_same_groups(plain, spd, base_weight_decay(zoo.folder(name)))
    assert_spd_ran(plain, spd, log)
    lrs = {group['lr'] for group in plain['optimizer']['param_groups']}
    if name in ('beit', 'segformer'):
        assert len(lrs) > 1  # layer decay / head lr_mult survived


def test_constructor_composes_with_layer_decay(zoo, tools):
    folder = zoo.folder('beit')
    constructor = child_config(folder, 'constructor', f"""
custom_imports = dict(imports=['mmspd'], allow_failed_imports=False)
custom_hooks = [dict(type='SPDStatsHook', interval=1)]
optim_wrapper = dict(
    constructor='SPDOptimWrapperConstructor',
    base_constructor='LayerDecayOptimizerConstructor',
    optimizer=dict(weight_decay={LAMBDA}))
""")
    composed = Run(tools, constructor, osp.join(folder, 'constructor'))
    # Without base_constructor, layer decay would be lost: refused.
    dropped = child_config(folder, 'dropped', """
custom_imports = dict(imports=['mmspd'], allow_failed_imports=False)
optim_wrapper = dict(constructor='SPDOptimWrapperConstructor')
""")
    log, checkpoint = Run(tools, dropped, osp.join(folder, 'dropped')).finish(
        expect_failure=True)
    assert ("does not apply the paramwise_cfg keys ['layer_decay_rate', "
            "'num_layers']") in log
    assert checkpoint is None
    log, spd = composed.finish()
    assert_same_groups(zoo.plain('beit'), spd, base_weight_decay(folder))
    assert 'spd_selected' in log


@pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="mmengine's AmpOptimWrapper, which --amp builds, needs CUDA")
@pytest.mark.parametrize('name', ['beit-amp', 'segformer'])
def test_spd_hook_with_amp(name, zoo, tools):
    # beit-amp names AmpOptimWrapper; --amp switches segformer's to it.
    folder = zoo.folder(name, '--amp', cuda=True)
    spd_config = child_config(folder, 'spd_amp', SPD_LINES)
    log, spd = Run(tools, spd_config, osp.join(folder, 'spd_amp'), '--amp',
                   cuda=True).finish()
    plain = zoo.plain(name, '--amp')
    assert 'loss_scaler' in plain['optimizer']
    assert 'loss_scaler' in spd['optimizer']
    assert 'SPDHook: SPD attached to AmpOptimWrapper around AdamW' in log
    assert_same_groups(plain, spd, base_weight_decay(folder))
    assert_spd_ran(plain, spd, log)


def tool_metrics(work_dir: str) -> dict:
    """The metrics mmseg's tools/test.py wrote (``<timestamp>/*.json``)."""
    (path, ) = glob.glob(osp.join(work_dir, '*', '*.json'))
    with open(path) as f:
        return json.load(f)


@pytest.mark.parametrize('name', ['beit', 'deeplabv3plus'])
def test_corruption_benchmark_on_the_zoo_model(name, zoo, tools):
    """The benchmark on the SPD checkpoint of a zoo config.

    mmseg's tools/test.py with ``test_cfg.type=CorruptionTestLoop``: its
    clean pass must equal mmseg's own TestLoop on the same checkpoint, so
    the config's test pipeline and model settings are kept (BEiT on ADE20K:
    ``reduce_zero_label`` and slide inference; DeepLabV3+ on Cityscapes:
    its 1:2 images), and each corrupted condition is evaluated.
    """
    from mmengine.config import Config
    config, work_dir, _, _ = zoo.spd(name)
    checkpoint = osp.join(work_dir, 'iter_2.pth')
    cfg = Config.fromfile(config)
    steps = {step['type']: step
             for step in cfg.test_dataloader.dataset.pipeline}
    if name == 'beit':
        assert cfg.model.test_cfg.mode == 'slide'
        assert steps['LoadAnnotations']['reduce_zero_label']
    folder = osp.dirname(config)
    clean = Run(tools, config, osp.join(folder, 'test'),
                checkpoint=checkpoint)
    bench_dir = osp.join(folder, 'corruption')
    bench = Run(tools, config, bench_dir, '--cfg-options',
                'test_cfg.type=CorruptionTestLoop',
                "test_cfg.corruptions=['fog','gaussian_noise']",
                'test_cfg.severities=[1]', checkpoint=checkpoint)
    clean.finish()
    bench.finish()
    with open(osp.join(bench_dir, 'robustness.json')) as f:
        results = json.load(f)
    assert results['meta']['images'] == 4
    # The same numbers (mmseg rounds them to 2 decimals, one of the two
    # in float32).
    metrics = tool_metrics(osp.join(folder, 'test'))
    for key in ('aAcc', 'mIoU', 'mAcc'):
        assert results['clean'][key] == pytest.approx(metrics[key],
                                                      abs=1e-6), key
    assert [(c['corruption'], c['severity'])
            for c in results['conditions']] == [('fog', 1),
                                                ('gaussian_noise', 1)]
    for condition in results['conditions']:
        assert 0 <= condition['mIoU'] <= 100
