"""mmspd.optim works where only torch is installed."""
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent('''
    import importlib.abc
    import sys

    BLOCKED = ('mmengine', 'mmcv', 'mmseg', 'cv2')

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split('.')[0] in BLOCKED:
                raise ModuleNotFoundError(f'No module named {name!r}',
                                          name=name)
            return None

    sys.meta_path.insert(0, Blocker())

    import torch
    from mmspd.optim import AdamSPD, applies_spd, attach_spd, get_anchors

    torch.manual_seed(0)
    net = torch.nn.Linear(4, 2)
    optimizer = AdamSPD(net.parameters(), lr=0.1, weight_decay=0.5)
    sgd_net = torch.nn.Linear(4, 2)
    sgd = torch.optim.SGD(sgd_net.parameters(), lr=0.1, weight_decay=0.5)
    attach_spd(sgd)
    start = [p.detach().clone() for p in net.parameters()]
    for _ in range(5):
        for model, opt in ((net, optimizer), (sgd_net, sgd)):
            opt.zero_grad()
            model(torch.randn(8, 4)).square().mean().backward()
            opt.step()
    assert get_anchors(optimizer) and get_anchors(sgd)
    assert applies_spd(optimizer) and applies_spd(sgd)
    assert not torch.equal(start[0], net.weight)
    leaked = sorted(m for m in sys.modules if m.split('.')[0] in BLOCKED)
    assert not leaked, leaked
    print('OK')
''')


def test_optimizers_run_without_openmmlab_packages():
    result = subprocess.run([sys.executable, '-c', SCRIPT], cwd=REPO,
                            check=False,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == 'OK'
