import pytest
import torch
from mmengine.registry import OPTIMIZERS

from mmspd.optim import AdamL2SP, get_anchors


@pytest.mark.parametrize('amsgrad', [False, True])
@pytest.mark.parametrize('foreach', [True, False])
def test_equals_adam_on_penalised_loss(helpers, foreach, amsgrad):
    net, ref_net = helpers.make_net(), helpers.make_net()
    optimizer = AdamL2SP(helpers.split_groups(net), lr=0.02, amsgrad=amsgrad,
                         foreach=foreach)
    # Adam on loss + sum over groups of alpha / 2 * |theta - a|^2.
    groups = helpers.split_groups(ref_net)
    anchors = {p: torch.zeros_like(p) if g.get('anchor') == 'zero' else
               p.detach().clone() for g in groups for p in g['params']}
    alphas = {p: g['weight_decay'] for g in groups for p in g['params']}
    for group in groups:
        group.pop('anchor', None)
        group['weight_decay'] = 0.0
    reference = torch.optim.Adam(groups, lr=0.02, amsgrad=amsgrad)

    def penalised_step(loss):
        reference.zero_grad()
        used = [p for p in ref_net.parameters()
                if not any(p is q for q in ref_net.unused.parameters())]
        penalty = sum(alphas[p] / 2 * (p - anchors[p]).square().sum()
                      for p in used)
        (loss + penalty).backward()
        reference.step()

    data = helpers.batches(30)
    helpers.train(net, optimizer, data)
    helpers.train(ref_net, reference, data, step=penalised_step)
    helpers.assert_same_params(net, ref_net, rtol=1e-9, atol=1e-11)
    assert net.fc1.weight in get_anchors(optimizer)
    assert net.fc2.weight not in get_anchors(optimizer)


def test_registered_and_checks_alpha():
    param = torch.nn.Parameter(torch.zeros(3))
    optimizer = OPTIMIZERS.build(
        {'type': 'AdamL2SP', 'params': [param], 'lr': 0.1,
         'weight_decay': 0.01})
    assert isinstance(optimizer, AdamL2SP)
    with pytest.raises(ValueError, match=r'L2-SP alpha\) value: -1'):
        AdamL2SP([param], weight_decay=-1)
