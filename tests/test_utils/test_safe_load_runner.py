"""SafeLoadRunner: MMEngine checkpoints load, resume and test on the
installed torch (weights-only by default from torch 2.6), with the
allow-list held only during the load."""
import pickle

import pytest
import torch
from mmengine.model import BaseModel
from mmengine.registry import RUNNERS
from mmengine.runner import Runner
from torch import nn

from mmspd.utils import SafeLoadRunner

# torch.load's weights_only defaults to True from torch 2.6 on.
WEIGHTS_ONLY_DEFAULT = torch.__version__ >= (2, 6)


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
        return [dict(out=o) for o in out]


def _data(n=8):
    gen = torch.Generator().manual_seed(0)
    return [dict(inputs=torch.randn(3, generator=gen)) for _ in range(n)]


def _runner(work_dir, max_iters, runner=SafeLoadRunner, **kwargs):
    return runner(
        model=ToyModel(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=_data(), batch_size=2,
            sampler=dict(type='DefaultSampler', shuffle=True),
            collate_fn=dict(type='pseudo_collate')),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.1)),
        param_scheduler=dict(type='LinearLR', start_factor=0.1, end=4,
                             by_epoch=False),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(checkpoint=dict(
            type='CheckpointHook', by_epoch=False, interval=2)),
        randomness=dict(seed=0),
        **kwargs)


def test_configs_name_it_as_runner_type():
    # mmseg's tools/train.py and tools/test.py build RUNNERS.build(cfg)
    # when a config sets runner_type.
    assert RUNNERS.get('SafeLoadRunner') is SafeLoadRunner
    assert issubclass(SafeLoadRunner, Runner)


def test_resume_continues_like_an_uninterrupted_run(tmp_path):
    _runner(tmp_path / 'split', max_iters=2).train()
    before = list(torch.serialization.get_safe_globals())

    resumed = _runner(tmp_path / 'split', max_iters=4, resume=True)
    resumed.train()
    assert resumed.iter == 4
    # The allow-list was held for the load only.
    assert list(torch.serialization.get_safe_globals()) == before

    straight = _runner(tmp_path / 'straight', max_iters=4)
    straight.train()
    for (name, a), (_, b) in zip(straight.model.state_dict().items(),
                                 resumed.model.state_dict().items()):
        torch.testing.assert_close(a, b, msg=name, rtol=0, atol=0)


def test_load_from_gives_the_checkpoint_weights(tmp_path):
    _runner(tmp_path, max_iters=2).train()
    checkpoint = tmp_path / 'iter_2.pth'
    runner = _runner(tmp_path / 'load', max_iters=2,
                     load_from=str(checkpoint))
    runner.load_or_resume()
    saved = torch.load(checkpoint, weights_only=False)['state_dict']
    for name, value in runner.model.state_dict().items():
        torch.testing.assert_close(value, saved[name], rtol=0, atol=0)


@pytest.mark.skipif(not WEIGHTS_ONLY_DEFAULT,
                    reason='torch < 2.6 loads every global by default, so '
                    "MMEngine's own Runner resumes there")
def test_mmengine_runner_alone_cannot_resume_here(tmp_path):
    # Why the runner exists: on this torch, MMEngine's Runner refuses its
    # own checkpoints, and importing mmspd does not change that.
    _runner(tmp_path, max_iters=2).train()
    runner = _runner(tmp_path, max_iters=4, runner=Runner, resume=True)
    with pytest.raises(pickle.UnpicklingError, match='HistoryBuffer'):
        runner.train()
