"""SPDOptimWrapperConstructor: SPD on whatever wrapper a config builds."""
import copy

import pytest
import torch
from mmengine.optim import AmpOptimWrapper, OptimWrapper, build_optim_wrapper
from mmengine.optim.scheduler import LinearParamScheduler

from mmspd.optim import AdamSPD, applies_spd, get_anchors, spd_statistics

PARAMWISE = {'custom_keys': {'norm': {'decay_mult': 0.0},
                             'fc1': {'decay_mult': 2.0}}}


def spd_cfg(optimizer=None, **wrapper):
    cfg = {
        'type': 'OptimWrapper',
        'constructor': 'SPDOptimWrapperConstructor',
        'optimizer': optimizer or {'type': 'Adam', 'lr': 0.02,
                                   'weight_decay': 0.5},
        'paramwise_cfg': copy.deepcopy(PARAMWISE),
    }
    cfg.update(wrapper)
    return cfg


def adam_spd_like(net, lr=0.02):
    """AdamSPD with the per-layer strengths PARAMWISE gives (base 0.5)."""
    groups = [{'params': list(net.norm.parameters()), 'weight_decay': 0.0},
              {'params': list(net.fc1.parameters()), 'weight_decay': 1.0},
              {'params': [*net.conv.parameters(), *net.fc2.parameters(),
                          *net.unused.parameters()], 'weight_decay': 0.5}]
    return AdamSPD(groups, lr=lr)


def test_one_line_turns_spd_on(helpers):
    net, ref_net = helpers.make_net(), helpers.make_net()
    wrapper = build_optim_wrapper(net, spd_cfg())
    assert type(wrapper) is OptimWrapper
    assert applies_spd(wrapper)
    reference = adam_spd_like(ref_net)
    data = helpers.batches(30)
    helpers.train(net, wrapper, data, step=wrapper.update_params)
    helpers.train(ref_net, reference, data)
    helpers.assert_same_params(net, ref_net, rtol=1e-9, atol=1e-11)
    strengths = {id(p): g['weight_decay']
                 for g in wrapper.optimizer.param_groups for p in g['params']}
    assert strengths[id(net.norm.weight)] == 0.0
    assert strengths[id(net.fc1.weight)] == 1.0
    for key, value in reference.spd_statistics().items():
        torch.testing.assert_close(spd_statistics(wrapper)[key], value)


def test_plain_config_has_no_spd(helpers):
    cfg = spd_cfg()
    del cfg['constructor']
    assert not applies_spd(build_optim_wrapper(helpers.make_net(), cfg))


def test_accumulation_and_clipping(helpers):
    net, ref_net = helpers.make_net(), helpers.make_net()
    wrapper = build_optim_wrapper(
        net, spd_cfg(accumulative_counts=2, clip_grad={'max_norm': 0.05}))
    reference = OptimWrapper(adam_spd_like(ref_net), accumulative_counts=2,
                             clip_grad={'max_norm': 0.05})
    data = helpers.batches(20)
    helpers.train(net, wrapper, data, step=wrapper.update_params)
    helpers.train(ref_net, reference, data, step=reference.update_params)
    helpers.assert_same_params(net, ref_net, rtol=1e-9, atol=1e-11)
    assert wrapper.optimizer.state[net.fc1.weight]['step'] == 10


def test_sgd_with_momentum_and_spd_cfg(helpers):
    net = helpers.make_net()
    wrapper = build_optim_wrapper(net, spd_cfg(
        {'type': 'SGD', 'lr': 0.05, 'momentum': 0.9, 'weight_decay': 1.0},
        spd_cfg={'anchor': 'zero'}))
    start = [p.detach().clone() for p in net.parameters()]
    helpers.train(net, wrapper, helpers.batches(5),
                  step=wrapper.update_params)
    assert get_anchors(wrapper) == {}  # zero anchors keep no copy
    assert float(spd_statistics(wrapper)['selected']) >= 0
    assert any(not torch.equal(a, b) for a, b in zip(start,
                                                    net.parameters()))
    with pytest.raises(ValueError, match=r"spd_cfg keys: \['anchors'\]"):
        build_optim_wrapper(net, spd_cfg(spd_cfg={'anchors': 'zero'}))


def test_adam_spd_needs_no_constructor(helpers):
    with pytest.raises(TypeError, match='drop constructor'):
        build_optim_wrapper(helpers.make_net(), spd_cfg(
            {'type': 'AdamSPD', 'lr': 0.01, 'weight_decay': 0.5}))


def test_named_spd_wrapper_is_kept(helpers):
    wrapper = build_optim_wrapper(helpers.make_net(),
                                  spd_cfg(type='SPDOptimWrapper'))
    assert type(wrapper).__name__ == 'SPDOptimWrapper'
    assert applies_spd(wrapper)


def test_deepcopy_of_built_wrapper_keeps_spd(helpers):
    net = helpers.make_net()
    wrapper = build_optim_wrapper(net, spd_cfg())
    helpers.train(net, wrapper, helpers.batches(2),
                  step=wrapper.update_params)
    copied = copy.deepcopy(wrapper)
    assert applies_spd(copied) and applies_spd(wrapper)


@pytest.mark.parametrize('wrapper_type', ['constructor', 'SPDOptimWrapper'])
def test_weight_decay_scheduler_drives_spd(helpers, wrapper_type):
    net, ref_net = helpers.make_net(), helpers.make_net()
    if wrapper_type == 'constructor':
        wrapper = build_optim_wrapper(net, spd_cfg())
    else:
        wrapper = build_optim_wrapper(net, spd_cfg(type='SPDOptimWrapper'))
    reference = OptimWrapper(adam_spd_like(ref_net))
    schedulers = [
        LinearParamScheduler(w, param_name='weight_decay', start_factor=1.0,
                             end_factor=0.0, begin=0, end=6, by_epoch=False)
        for w in (wrapper, reference)
    ]
    data = helpers.batches(10)
    for batch in data:
        for w, model, scheduler in zip((wrapper, reference), (net, ref_net),
                                       schedulers):
            w.update_params(helpers.loss_fn(model, batch))
            scheduler.step()
    helpers.assert_same_params(net, ref_net, rtol=1e-9, atol=1e-11)
    assert all(g['weight_decay'] == 0 for g in wrapper.optimizer.param_groups)


def _amp_wrapper(net, monkeypatch, device):
    """Build with AmpOptimWrapper, as mmseg's ``--amp`` does."""
    if device.type == 'cpu':
        # AmpOptimWrapper insists on an accelerator; on CPU its scaler is
        # replaced by a CPU one below, which exercises the same code.
        import mmengine.optim.optimizer.amp_optimizer_wrapper as amp_module
        monkeypatch.setattr(amp_module, 'is_cuda_available', lambda: True)
    cfg = spd_cfg(type='AmpOptimWrapper', loss_scale='dynamic')
    wrapper = build_optim_wrapper(net, cfg)
    assert type(wrapper) is AmpOptimWrapper
    if device.type == 'cpu':
        wrapper.loss_scaler = torch.amp.GradScaler('cpu',
                                                   init_scale=2.0**10)
    return wrapper


def test_amp_optim_wrapper(helpers, monkeypatch, device):
    net = helpers.make_net(torch.float32).to(device)
    ref_net = helpers.make_net(torch.float32).to(device)
    wrapper = _amp_wrapper(net, monkeypatch, device)
    assert applies_spd(wrapper)
    reference = OptimWrapper(adam_spd_like(ref_net))
    data = [(x.to(device), y.to(device))
            for x, y in helpers.batches(8, torch.float32)]
    helpers.train(net, wrapper, data[:4], step=wrapper.update_params)
    helpers.train(ref_net, reference, data[:4], step=reference.update_params)
    helpers.assert_same_params(net, ref_net, rtol=1e-5, atol=1e-6)
    # A step the scaler skips changes nothing.
    weights = [p.detach().clone() for p in net.parameters()]
    stats = {k: v.clone() for k, v in spd_statistics(wrapper).items()}
    wrapper.update_params(helpers.loss_fn(net, data[4]) * float('inf'))
    for before, after in zip(weights, net.parameters()):
        assert torch.equal(before, after)
    for key, value in spd_statistics(wrapper).items():
        assert torch.equal(value, stats[key]), key


class TinyBEiT(torch.nn.Module):
    """Parameter names of mmseg's BEiT, which layer decay reads."""

    def __init__(self, num_layers=3):
        super().__init__()
        self.cls_token = torch.nn.Parameter(torch.zeros(1, 1, 4))
        self.patch_embed = torch.nn.Conv2d(3, 4, 2)
        self.layers = torch.nn.ModuleList(
            torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
            for _ in range(num_layers))


class TinySegmentor(torch.nn.Module):

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.backbone = TinyBEiT()
        self.decode_head = torch.nn.Linear(4, 2)


LAYER_DECAY = {
    'type': 'OptimWrapper',
    'constructor': 'mmseg.LayerDecayOptimizerConstructor',
    'optimizer': {'type': 'AdamW', 'lr': 0.01, 'weight_decay': 0.5},
    'paramwise_cfg': {'num_layers': 3, 'layer_decay_rate': 0.9},
}


def groups_by_name(wrapper, model):
    """Each group's parameter names, learning rate and weight decay."""
    names = {id(p): name for name, p in model.named_parameters()}
    return [(sorted(names[id(p)] for p in group['params']), group['lr'],
             group['weight_decay'])
            for group in wrapper.optimizer.param_groups]


def test_layer_decay_keys_are_not_silently_dropped():
    cfg = copy.deepcopy(LAYER_DECAY)
    cfg['constructor'] = 'SPDOptimWrapperConstructor'
    with pytest.raises(ValueError, match=(
            r"does not apply the paramwise_cfg keys \['layer_decay_rate', "
            r"'num_layers'\].*base_constructor=.*SPDHook")):
        build_optim_wrapper(TinySegmentor(), cfg)


def test_base_constructor_keeps_layer_decay_groups(helpers):
    pytest.importorskip('mmseg', reason='layer decay is mmseg\'s constructor')
    model = TinySegmentor()
    plain = build_optim_wrapper(model, copy.deepcopy(LAYER_DECAY))
    cfg = copy.deepcopy(LAYER_DECAY)
    cfg['constructor'] = 'SPDOptimWrapperConstructor'
    cfg['base_constructor'] = 'mmseg.LayerDecayOptimizerConstructor'
    wrapper = build_optim_wrapper(model, cfg)
    assert applies_spd(wrapper) and not applies_spd(plain)
    groups = groups_by_name(wrapper, model)
    assert groups == groups_by_name(plain, model)
    # Layer decay: one learning rate per layer, from 0.01 * 0.9 ** 4 up.
    assert len({lr for _, lr, _ in groups}) == 5
    assert {wd for _, _, wd in groups} == {0.0, 0.5}


def test_base_constructor_cannot_be_itself(helpers):
    with pytest.raises(ValueError, match='Invalid base_constructor'):
        build_optim_wrapper(helpers.make_net(), spd_cfg(
            base_constructor='SPDOptimWrapperConstructor'))


def test_every_optimizer_a_base_constructor_builds_gets_spd(helpers):
    from mmengine.optim import OptimWrapperDict
    from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS

    @OPTIM_WRAPPER_CONSTRUCTORS.register_module(force=True)
    class _TwoOptimizersForTest:
        """Builds one wrapper for ``conv`` and one for ``fc1``."""

        def __init__(self, optim_wrapper_cfg, paramwise_cfg=None):
            self.cfg = optim_wrapper_cfg

        def __call__(self, model):
            return OptimWrapperDict(**{
                name: build_optim_wrapper(getattr(model, name),
                                          copy.deepcopy(self.cfg))
                for name in ('conv', 'fc1')})

    wrappers = build_optim_wrapper(helpers.make_net(), spd_cfg(
        base_constructor='_TwoOptimizersForTest', paramwise_cfg=None))
    assert set(wrappers.optim_wrappers) == {'conv', 'fc1'}
    assert all(applies_spd(w) for w in wrappers.optim_wrappers.values())
