"""Small model, data and comparisons shared by the optimizer tests."""
import torch
from torch import nn


class TinyNet(nn.Module):
    """Conv + BN + MLP, plus a branch that never receives gradients."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, bias=False)
        self.norm = nn.BatchNorm2d(4)
        self.fc1 = nn.Linear(4, 8)
        self.fc2 = nn.Linear(8, 2)
        self.unused = nn.Linear(3, 3)

    def forward(self, x):
        x = self.norm(self.conv(x)).relu().mean((2, 3))
        return self.fc2(self.fc1(x).tanh())


def make_net(dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    return TinyNet().to(dtype)


def batches(n, dtype=torch.float64, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return [(torch.randn(6, 3, 5, 5, generator=gen, dtype=dtype),
             torch.randn(6, 2, generator=gen, dtype=dtype)) for _ in range(n)]


def loss_fn(net, batch):
    x, y = batch
    return nn.functional.mse_loss(net(x), y)


def train(net, optimizer, data, step=None):
    """Run ``optimizer`` over ``data``; ``step`` replaces backward + step."""
    for batch in data:
        if step is None:
            optimizer.zero_grad()
            loss_fn(net, batch).backward()
            optimizer.step()
        else:
            step(loss_fn(net, batch))


def split_groups(net, **overrides):
    """Four groups: conv (lam 0.6), norm (lam 0), fc1 (lam 1.0), fc2 (zero
    anchors, lam 0.3); ``unused`` rides along in the first group."""
    groups = [
        {'params': [*net.conv.parameters(), *net.unused.parameters()],
             'weight_decay': 0.6},
        {'params': list(net.norm.parameters()), 'weight_decay': 0.0},
        {'params': list(net.fc1.parameters()), 'weight_decay': 1.0},
        {'params': list(net.fc2.parameters()), 'weight_decay': 0.3,
             'anchor': 'zero'},
    ]
    for group in groups:
        group.update(overrides)
    return groups


def assert_same_params(net_a, net_b, **tol):
    for (name, a), b in zip(net_a.named_parameters(), net_b.parameters()):
        torch.testing.assert_close(a, b, msg=name, **tol)
