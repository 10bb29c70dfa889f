"""SPDHook: SPD on whatever optimizer a config built, and its guard."""
import copy
import types

import pytest
import torch
from mmengine.logging import MMLogger
from mmengine.model import BaseModel
from mmengine.optim import (
    AmpOptimWrapper,
    OptimWrapper,
    OptimWrapperDict,
    build_optim_wrapper,
)
from mmengine.registry import HOOKS
from mmengine.runner import Runner
from torch import nn

from mmspd.hooks import SPDHook
from mmspd.optim import (
    AdamL2SP,
    AdamSPD,
    applies_spd,
    get_anchors,
    spd_statistics,
)
from mmspd.optim.attach import get_attachment


class ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 3)
        self.norm = nn.LayerNorm(3)
        self.head = nn.Linear(3, 1)

    def forward(self, inputs, targets, mode='tensor'):
        out = self.head(self.norm(self.linear(inputs)))
        return {'loss': (out - targets).square().mean()}


def _data():
    gen = torch.Generator().manual_seed(0)
    return [{'inputs': torch.randn(4, generator=gen),
             'targets': torch.randn(1, generator=gen)} for _ in range(16)]


def make_runner(tmp_path, optim_wrapper, name, max_iters=4, run=0,
                hooks=({'type': 'SPDHook'},), **kwargs):
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
        param_scheduler={'type': 'LinearLR', 'start_factor': 0.5,
                         'by_epoch': False, 'begin': 0, 'end': 4},
        custom_hooks=list(hooks),
        default_hooks={'checkpoint': {'type': 'CheckpointHook',
                                      'interval': 4, 'by_epoch': False},
                       # resume and load_from on torch >= 2.6
                       'safe_load': {'type': 'SafeLoadHook'}},
        experiment_name=f'{name}_{run}',
        **kwargs)


# A plain config: SPDHook alone turns SPD on.
SGD = {'type': 'OptimWrapper',
       'optimizer': {'type': 'SGD', 'lr': 0.05, 'momentum': 0.9,
                     'weight_decay': 1.0},
       'paramwise_cfg': {'norm_decay_mult': 0.0,
                         'custom_keys': {'head': {'lr_mult': 2.0}}},
       'clip_grad': {'max_norm': 1.0}}
CONSTRUCTOR = dict(SGD, constructor='SPDOptimWrapperConstructor')
ADAM = {'type': 'OptimWrapper',
        'optimizer': {'type': 'Adam', 'lr': 0.05, 'weight_decay': 0.5}}
ADAM_SPD = {'type': 'OptimWrapper',
            'optimizer': {'type': 'AdamSPD', 'lr': 0.05,
                          'weight_decay': 0.5}}


def groups_of(optim_wrapper):
    """Each group's lr, weight_decay and parameter count."""
    return [(g['lr'], g['weight_decay'], len(g['params']))
            for g in optim_wrapper.optimizer.param_groups]


def test_hook_turns_spd_on_and_keeps_every_group(tmp_path):
    plain = make_runner(tmp_path, SGD, 'plain', hooks=())
    plain.train()
    runner = make_runner(tmp_path, SGD, 'hook')
    runner.train()
    assert applies_spd(runner.optim_wrapper)
    assert not applies_spd(plain.optim_wrapper)
    assert groups_of(runner.optim_wrapper) == groups_of(plain.optim_wrapper)
    assert len({g[0] for g in groups_of(runner.optim_wrapper)}) == 2
    assert get_anchors(runner.optim_wrapper)
    assert float(spd_statistics(runner.optim_wrapper)['deviation']) > 0
    log = next((tmp_path / 'hook').rglob('*.log')).read_text()
    assert ('SPDHook: SPD attached to OptimWrapper around SGD (SPD '
            'strengths, i.e. weight_decay, in its 6 param groups: 0, 1)'
            ) in log
    # The same mechanism as the constructor: the same weights, bit for bit.
    built = make_runner(tmp_path, CONSTRUCTOR, 'constructor', hooks=())
    built.train()
    for a, b in zip(runner.model.parameters(), built.model.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert any(not torch.equal(a, b) for a, b in zip(
        runner.model.parameters(), plain.model.parameters()))


def test_hook_on_adam_trains_as_adam_spd(tmp_path):
    hooked = make_runner(tmp_path, ADAM, 'adam')
    hooked.train()
    adam_spd = make_runner(tmp_path, ADAM_SPD, 'adam_spd')
    adam_spd.train()
    # AdamSPD applies SPD itself: the hook leaves it alone.
    assert isinstance(adam_spd.optim_wrapper.optimizer, AdamSPD)
    assert get_attachment(adam_spd.optim_wrapper) is None
    for a, b in zip(hooked.model.parameters(), adam_spd.model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_optimizer_with_spd_is_left_alone(tmp_path):
    runner = make_runner(tmp_path, CONSTRUCTOR, 'constructor')
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    attachment = get_attachment(runner.optim_wrapper)
    SPDHook(anchor='zero').before_run(runner)
    assert get_attachment(runner.optim_wrapper) is attachment
    assert attachment.anchor == 'init'


@pytest.mark.parametrize('optimizer', [
    {'type': 'AdamL2SP', 'lr': 0.05, 'weight_decay': 0.01},
    {'type': 'Rprop', 'lr': 0.05},  # no weight_decay: no SPD strength
], ids=['AdamL2SP', 'Rprop'])
def test_optimizer_spd_cannot_run_on_stops_before_training(
        tmp_path, optimizer):
    cfg = {'type': 'OptimWrapper', 'optimizer': optimizer}
    runner = make_runner(tmp_path, cfg, optimizer['type'])
    weights = [p.detach().clone() for p in runner.model.parameters()]
    with pytest.raises(RuntimeError, match=(
            r'cannot apply SPD to the optimizer the config built '
            rf"\(OptimWrapper around {optimizer['type']}\).*"
            r"remove dict\(type='SPDHook'\) from custom_hooks")):
        runner.train()
    assert runner.iter == 0
    for before, after in zip(weights, runner.model.parameters()):
        assert torch.equal(before, after)


def test_replaced_optimizer_is_stopped_before_training(tmp_path):
    runner = make_runner(tmp_path, SGD, 'replaced')
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    hook = SPDHook()
    hook.before_run(runner)
    assert applies_spd(runner.optim_wrapper)
    runner.optim_wrapper = build_optim_wrapper(runner.model, SGD)
    with pytest.raises(RuntimeError, match=(
            r'does not apply SPD \(built: OptimWrapper around SGD\); it '
            'was replaced')):
        hook.before_train(runner)


def test_resume_through_runner_continues_exactly(tmp_path):
    straight = make_runner(tmp_path, SGD, 'straight', max_iters=8)
    straight.train()
    first = make_runner(tmp_path, SGD, 'resumed', max_iters=4)
    first.train()
    checkpoint = tmp_path / 'resumed' / 'iter_4.pth'
    resumed = make_runner(tmp_path, SGD, 'resumed', max_iters=8, run=1,
                          resume=True, load_from=str(checkpoint))
    resumed.train()
    for a, b in zip(straight.model.parameters(),
                    resumed.model.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    anchors = get_anchors(resumed.optim_wrapper)
    assert anchors
    for a, b in zip(get_anchors(straight.optim_wrapper).values(),
                    anchors.values()):
        assert torch.equal(a, b)


def test_load_from_weights_become_the_anchors(tmp_path):
    source = make_runner(tmp_path, SGD, 'source', max_iters=4)
    source.train()
    loaded = {name: p.detach().clone()
              for name, p in source.model.named_parameters()}
    runner = make_runner(tmp_path, SGD, 'finetune', max_iters=1,
                         load_from=str(tmp_path / 'source' / 'iter_4.pth'))
    runner.train()
    names = {p: name for name, p in runner.model.named_parameters()}
    anchors = {names[p]: anchor for p, anchor in
               get_anchors(runner.optim_wrapper).items()}
    assert anchors.keys() == loaded.keys()
    for name, anchor in anchors.items():
        assert torch.equal(anchor, loaded[name]), name


def fake_runner(optim_wrapper):
    return types.SimpleNamespace(
        optim_wrapper=optim_wrapper,
        logger=MMLogger.get_instance('spd_hook_test'))


def test_every_wrapper_of_a_dict_gets_spd():
    model = ToyModel()
    wrappers = OptimWrapperDict(
        body=build_optim_wrapper(model.linear, SGD),
        head=build_optim_wrapper(model.head, ADAM_SPD))
    runner = fake_runner(wrappers)
    SPDHook().before_run(runner)
    assert applies_spd(wrappers['body']) and applies_spd(wrappers['head'])
    SPDHook().before_train(runner)

    wrappers = OptimWrapperDict(
        body=build_optim_wrapper(model.linear, SGD),
        head=OptimWrapper(AdamL2SP(model.head.parameters(), lr=0.1)))
    with pytest.raises(RuntimeError, match=r"optim_wrapper\['head'\]: "
                       'OptimWrapper around AdamL2SP'):
        SPDHook().before_run(fake_runner(wrappers))


def test_amp_optim_wrapper_gets_spd(monkeypatch, device):
    if device.type == 'cpu':
        # AmpOptimWrapper insists on an accelerator; on CPU its scaler is
        # replaced by a CPU one below, which exercises the same code.
        import mmengine.optim.optimizer.amp_optimizer_wrapper as amp_module
        monkeypatch.setattr(amp_module, 'is_cuda_available', lambda: True)
    torch.manual_seed(0)
    nets = [ToyModel().to(device) for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    wrapper = build_optim_wrapper(nets[0], dict(ADAM, type='AmpOptimWrapper'))
    assert type(wrapper) is AmpOptimWrapper
    if device.type == 'cpu':
        wrapper.loss_scaler = torch.amp.GradScaler('cpu', init_scale=2.**10)
    SPDHook().before_run(fake_runner(wrapper))
    reference = build_optim_wrapper(nets[1], ADAM_SPD)
    for batch in _data()[:4]:
        batch = {k: v.to(device)[None] for k, v in batch.items()}
        for net, w in zip(nets, (wrapper, reference)):
            w.update_params(net(**batch)['loss'])
    for a, b in zip(nets[0].parameters(), nets[1].parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_test_runs_build_no_optimizer():
    cfg = copy.deepcopy(SGD)
    runner = fake_runner(cfg)
    SPDHook().before_run(runner)
    assert runner.optim_wrapper == SGD


def test_warns_when_every_strength_is_zero(tmp_path):
    cfg = copy.deepcopy(SGD)
    cfg['optimizer']['weight_decay'] = 0.0
    runner = make_runner(tmp_path, cfg, 'zero')
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    SPDHook().before_run(runner)
    with pytest.warns(UserWarning, match='above 0, so SPD changes nothing'):
        SPDHook().before_train(runner)


@pytest.mark.parametrize('kwargs, match', [
    ({'anchor': 'pretrained'}, "anchor: 'pretrained'"),
    ({'foreach': 'yes'}, "foreach: 'yes'"),
])
def test_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        HOOKS.build(dict(type='SPDHook', **kwargs))


def test_new_head_keeps_the_optimizers_own_decay(tmp_path):
    # paramwise_cfg copies spd=False into the head's group: SGD's own
    # decay there, SPD toward the anchors everywhere else.
    cfg = copy.deepcopy(SGD)
    cfg['paramwise_cfg']['custom_keys']['head'].update(spd=False,
                                                       decay_mult=0.01)
    runner = make_runner(tmp_path, cfg, 'head')
    runner.train()
    anchors = get_anchors(runner.optim_wrapper)
    head = set(runner.model.head.parameters())
    assert anchors and not head & anchors.keys()
    assert set(runner.model.linear.parameters()) <= anchors.keys()
    groups = [g for g in runner.optim_wrapper.optimizer.param_groups
              if set(g['params']) & head]
    assert all(g['weight_decay'] == pytest.approx(0.01) for g in groups)
