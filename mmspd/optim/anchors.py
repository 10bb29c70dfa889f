"""Access to the anchors SPD and L2-SP keep in optimizer state."""
from __future__ import annotations

from torch import Tensor
from torch.optim import Optimizer


def get_anchors(optimizer: Optimizer | object) -> dict[Tensor, Tensor]:
    """Return the stored anchor of every parameter that has one.

    Works for :class:`~mmspd.optim.AdamSPD`, :class:`~mmspd.optim.AdamL2SP`
    and the optimizer inside an SPD optimizer wrapper (the wrapper itself may
    be passed). Parameters with zero anchors, and ``'init'`` parameters not
    yet stepped, have no stored anchor and are left out.

    Args:
        optimizer (Optimizer | OptimWrapper): The optimizer or its wrapper.

    Returns:
        dict[Tensor, Tensor]: ``{parameter: anchor}``; the anchors are the
        tensors in the optimizer state, not copies.
    """
    inner = getattr(optimizer, 'optimizer', optimizer)
    if not isinstance(inner, Optimizer):
        raise TypeError('Expected a torch Optimizer or an optimizer wrapper, '
                        f'got {type(optimizer).__name__}')
    anchors = {}
    for group in inner.param_groups:
        if group.get('anchor', 'init') == 'zero':
            continue
        for param in group['params']:
            state = inner.state.get(param)
            if state is not None and 'anchor' in state:
                anchors[param] = state['anchor']
    return anchors
