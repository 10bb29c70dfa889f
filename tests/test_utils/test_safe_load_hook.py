"""SafeLoadHook: MMEngine's Runner loads, resumes from and tests its own
checkpoints on the installed torch (weights-only by default from torch
2.6), with the allow-list held only while the checkpoint is loaded."""
import glob
import os.path as osp
import pickle

import pytest
import torch
from mmengine.config import Config
from mmengine.evaluator import BaseMetric
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn

import mmspd  # noqa: F401  registers SafeLoadHook

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SHIPPED = sorted(glob.glob(osp.join(REPO, 'configs', 'swin', '*.py')) +
                 glob.glob(osp.join(REPO, 'demo', 'configs', '*.py')))
# torch.load's weights_only defaults to True from torch 2.6 on.
WEIGHTS_ONLY_DEFAULT = torch.__version__ >= (2, 6)
SAFE_LOAD = dict(safe_load=dict(type='SafeLoadHook'))


class ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 1)
        with torch.no_grad():  # every run starts from the same weights
            self.linear.weight.copy_(torch.tensor([[0.5, -0.3, 0.2]]))
            self.linear.bias.fill_(0.1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(torch.stack(inputs))
        if mode == 'loss':
            return {'loss': (out - 1).pow(2).mean()}
        return list(out)


class ToyMetric(BaseMetric):

    def process(self, data_batch, data_samples):
        self.results.extend(float(o) for o in data_samples)

    def compute_metrics(self, results):
        return {'mean': sum(results) / len(results)}


class AllowListProbe(Hook):
    """Records whether HistoryBuffer is allow-listed at each stage."""
    priority = 'LOWEST'  # registered after SafeLoadHook: runs after it

    def __init__(self):
        self.seen = {}

    def _record(self, stage):
        listed = HistoryBuffer in torch.serialization.get_safe_globals()
        self.seen.setdefault(stage, listed)

    def before_train(self, runner):
        self._record('before_train')

    def before_test(self, runner):
        self._record('before_test')

    def after_load_checkpoint(self, runner, checkpoint):
        self._record('after_load_checkpoint')


def _data(n=8):
    gen = torch.Generator().manual_seed(0)
    return [dict(inputs=torch.randn(3, generator=gen)) for _ in range(n)]


def _runner(work_dir, max_iters=2, hooks=SAFE_LOAD, **kwargs):
    loader = dict(dataset=_data(), batch_size=2,
                  sampler=dict(type='DefaultSampler', shuffle=True),
                  collate_fn=dict(type='pseudo_collate'))
    return Runner(
        model=ToyModel(),
        work_dir=str(work_dir),
        train_dataloader=loader,
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.1)),
        param_scheduler=dict(type='LinearLR', start_factor=0.1, end=4,
                             by_epoch=False),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        test_dataloader=dict(loader, sampler=dict(
            type='DefaultSampler', shuffle=False)),
        test_cfg=dict(type='TestLoop'),
        test_evaluator=[ToyMetric()],
        default_hooks=dict(checkpoint=dict(
            type='CheckpointHook', by_epoch=False, interval=2), **hooks),
        randomness=dict(seed=0),
        **kwargs)


def test_resume_continues_like_an_uninterrupted_run(tmp_path):
    _runner(tmp_path / 'split', max_iters=2).train()
    before = set(torch.serialization.get_safe_globals())

    probe = AllowListProbe()
    resumed = _runner(tmp_path / 'split', max_iters=4, resume=True,
                      custom_hooks=[probe])
    resumed.train()
    assert resumed.iter == 4
    # Closed right after the load, and nothing left behind.
    assert probe.seen == {'after_load_checkpoint': False,
                          'before_train': False}
    assert set(torch.serialization.get_safe_globals()) == before

    straight = _runner(tmp_path / 'straight', max_iters=4)
    straight.train()
    for (name, a), (_, b) in zip(straight.model.state_dict().items(),
                                 resumed.model.state_dict().items()):
        torch.testing.assert_close(a, b, msg=name, rtol=0, atol=0)


def test_test_loads_the_checkpoint(tmp_path):
    # What mmseg's tools/test.py CONFIG CHECKPOINT does: load_from, test().
    _runner(tmp_path, max_iters=2).train()
    checkpoint = tmp_path / 'iter_2.pth'
    before = set(torch.serialization.get_safe_globals())
    probe = AllowListProbe()
    runner = _runner(tmp_path / 'test', load_from=str(checkpoint),
                     custom_hooks=[probe])
    metrics = runner.test()

    saved = torch.load(checkpoint, weights_only=False)['state_dict']
    for name, value in runner.model.state_dict().items():
        torch.testing.assert_close(value, saved[name], rtol=0, atol=0)
    expected = torch.stack([d['inputs'] for d in _data()]) @ saved[
        'linear.weight'].T + saved['linear.bias']
    assert metrics['mean'] == pytest.approx(float(expected.mean()))
    assert probe.seen == {'after_load_checkpoint': False,
                          'before_test': False}
    assert set(torch.serialization.get_safe_globals()) == before


@pytest.mark.skipif(not WEIGHTS_ONLY_DEFAULT,
                    reason='torch < 2.6 loads every global by default, so '
                    "MMEngine's Runner resumes there without the hook")
def test_without_the_hook_the_runner_cannot_resume_here(tmp_path):
    # Why the hook exists: on this torch, MMEngine's Runner refuses its own
    # checkpoints, and importing mmspd does not change that.
    _runner(tmp_path, max_iters=2).train()
    runner = _runner(tmp_path, max_iters=4, hooks={}, resume=True)
    with pytest.raises(pickle.UnpicklingError, match='HistoryBuffer'):
        runner.train()



@pytest.mark.parametrize('path', SHIPPED, ids=osp.basename)
def test_every_config_has_the_hook(path):
    assert Config.fromfile(path).default_hooks.safe_load == dict(
        type='SafeLoadHook')
