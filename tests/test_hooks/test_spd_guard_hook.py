import copy

import pytest
import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn

from mmspd.hooks import SPDGuardHook
from mmspd.optim import get_anchors


class ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 1)
        self.norm = nn.LayerNorm(1)

    def forward(self, inputs, targets, mode='tensor'):
        loss = (self.norm(self.linear(inputs)) - targets).square().mean()
        return {'loss': loss}


def _data():
    gen = torch.Generator().manual_seed(0)
    return [{'inputs': torch.randn(4, generator=gen),
             'targets': torch.randn(1, generator=gen)} for _ in range(16)]


def make_runner(tmp_path, optim_wrapper, name, max_iters=4, run=0,
                **kwargs):
    torch.manual_seed(0)
    return Runner(
        model=ToyModel(),
        work_dir=str(tmp_path / name),
        train_dataloader={
            'dataset': _data(), 'batch_size': 2,
            'sampler': {'type': 'DefaultSampler', 'shuffle': False},
            'collate_fn': {'type': 'default_collate'}},
        train_cfg={'by_epoch': False, 'max_iters': max_iters},
        optim_wrapper=copy.deepcopy(optim_wrapper),
        custom_hooks=[{'type': 'SPDGuardHook'}],
        default_hooks={'checkpoint': {'type': 'CheckpointHook',
                                      'interval': 4, 'by_epoch': False}},
        experiment_name=f'{name}_{run}',
        **kwargs)


CONSTRUCTOR = {'type': 'OptimWrapper',
               'constructor': 'SPDOptimWrapperConstructor',
               'optimizer': {'type': 'SGD', 'lr': 0.05, 'momentum': 0.9,
                             'weight_decay': 1.0},
               'paramwise_cfg': {'norm_decay_mult': 0.0}}
ADAM_SPD = {'type': 'OptimWrapper',
            'optimizer': {'type': 'AdamSPD', 'lr': 0.05,
                          'weight_decay': 0.5}}


@pytest.mark.parametrize('optim_wrapper', [CONSTRUCTOR, ADAM_SPD],
                         ids=['constructor', 'AdamSPD'])
def test_spd_configs_train(tmp_path, optim_wrapper):
    runner = make_runner(tmp_path, optim_wrapper, 'ok')
    runner.train()
    assert get_anchors(runner.optim_wrapper)


def test_plain_optimizer_is_stopped_before_training(tmp_path):
    cfg = dict(CONSTRUCTOR)
    del cfg['constructor']
    runner = make_runner(tmp_path, cfg, 'plain')
    with pytest.raises(RuntimeError, match=(
            r'does not apply SPD \(built: OptimWrapper around SGD\).*'
            "constructor='SPDOptimWrapperConstructor'")):
        runner.train()
    assert runner.iter == 0


def test_resume_through_runner_continues_exactly(tmp_path):
    straight = make_runner(tmp_path, CONSTRUCTOR, 'straight', max_iters=8)
    straight.train()
    first = make_runner(tmp_path, CONSTRUCTOR, 'resumed', max_iters=4)
    first.train()
    checkpoint = tmp_path / 'resumed' / 'iter_4.pth'
    resumed = make_runner(tmp_path, CONSTRUCTOR, 'resumed', max_iters=8,
                          run=1, resume=True, load_from=str(checkpoint))
    resumed.train()
    for a, b in zip(straight.model.parameters(),
                    resumed.model.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    anchors = get_anchors(resumed.optim_wrapper)
    assert anchors
    for a, b in zip(get_anchors(straight.optim_wrapper).values(),
                    anchors.values()):
        assert torch.equal(a, b)


def test_warns_when_every_strength_is_zero(tmp_path):
    cfg = copy.deepcopy(CONSTRUCTOR)
    cfg['optimizer']['weight_decay'] = 0.0
    runner = make_runner(tmp_path, cfg, 'zero')
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    with pytest.warns(UserWarning, match='weight_decay 0.*changes nothing'):
        SPDGuardHook().before_train(runner)
