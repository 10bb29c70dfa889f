import types

import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmengine.registry import HOOKS
from mmengine.runner import Runner
from torch import nn

from mmspd.hooks import SPDStatsHook
from mmspd.optim import AdamSPD, SPDOptimWrapper

KEYS = ('selected', 'ratio', 'deviation', 'rel_deviation')


def stepped_wrapper(seed=0, wrapped=True):
    torch.manual_seed(seed)
    net = nn.Linear(4, 3)
    if wrapped:
        wrapper = SPDOptimWrapper(
            torch.optim.AdamW(net.parameters(), lr=0.1, weight_decay=0.5))
    else:
        wrapper = OptimWrapper(
            AdamSPD(net.parameters(), lr=0.1, weight_decay=0.5))
    for _ in range(4):
        wrapper.update_params(net(torch.randn(8, 4)).square().mean())
    return wrapper


def fake_runner(optim_wrapper, name, iteration):
    return types.SimpleNamespace(
        iter=iteration, optim_wrapper=optim_wrapper,
        message_hub=MessageHub.get_instance(name))


@pytest.mark.parametrize('wrapped', [True, False])
def test_pushes_statistics_every_interval(wrapped):
    wrapper = stepped_wrapper(wrapped=wrapped)
    hook = HOOKS.build({'type': 'SPDStatsHook', 'interval': 5})
    runner = fake_runner(wrapper, f'spd_hook_{wrapped}', iteration=3)
    hook.after_train_iter(runner, batch_idx=3)
    assert 'train/spd_selected' not in runner.message_hub.log_scalars
    runner.iter = 4  # the 5th iteration
    hook.after_train_iter(runner, batch_idx=4)
    stats = wrapper.spd_statistics() if wrapped else \
        wrapper.optimizer.spd_statistics()
    for key in KEYS:
        logged = runner.message_hub.get_scalar(f'train/spd_{key}').current()
        assert logged == pytest.approx(float(stats[key]))


def test_optim_wrapper_dict_prefixes_names():
    wrappers = OptimWrapperDict(backbone=stepped_wrapper(0),
                                head=stepped_wrapper(1))
    runner = fake_runner(wrappers, 'spd_hook_dict', iteration=9)
    SPDStatsHook().after_train_iter(runner, batch_idx=9)
    for name in ('backbone', 'head'):
        assert f'train/{name}.spd_deviation' in runner.message_hub.log_scalars


def test_no_spd_optimizer_logs_nothing():
    net = nn.Linear(2, 2)
    wrapper = OptimWrapper(torch.optim.SGD(net.parameters(), lr=0.1))
    runner = fake_runner(wrapper, 'spd_hook_plain', iteration=9)
    SPDStatsHook().after_train_iter(runner, batch_idx=9)
    assert not any('spd' in key for key in runner.message_hub.log_scalars)


def test_rejects_bad_interval():
    with pytest.raises(ValueError, match='interval: 0'):
        SPDStatsHook(interval=0)


class ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 1)

    def forward(self, inputs, targets, mode='tensor'):
        loss = (self.linear(inputs) - targets).square().mean()
        return {'loss': loss}


def test_statistics_reach_the_text_log(tmp_path):
    gen = torch.Generator().manual_seed(0)
    data = [{'inputs': torch.randn(4, generator=gen),
                 'targets': torch.randn(1, generator=gen)} for _ in range(16)]
    runner = Runner(
        model=ToyModel(),
        work_dir=str(tmp_path),
        train_dataloader={
            'dataset': data, 'batch_size': 2,
            'sampler': {'type': 'DefaultSampler', 'shuffle': False},
            'collate_fn': {'type': 'default_collate'}},
        train_cfg={'by_epoch': False, 'max_iters': 8},
        optim_wrapper={'type': 'SPDOptimWrapper',
                           'optimizer': {'type': 'AdamW', 'lr': 0.1,
                                          'weight_decay': 0.5}},
        custom_hooks=[{'type': 'SPDStatsHook', 'interval': 2}],
        default_hooks={'logger': {'type': 'LoggerHook', 'interval': 4}},
        experiment_name='spd_stats_hook_test')
    runner.train()
    log = next(tmp_path.rglob('*.log')).read_text()
    for key in KEYS:
        assert f'spd_{key}:' in log
