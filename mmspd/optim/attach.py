"""Selective Projection Decay on top of any ``torch.optim`` optimizer.

Tian, Huang and Kira, "Rethinking Weight Decay for Robust Fine-Tuning of
Foundation Models", NeurIPS 2024 (https://arxiv.org/abs/2411.01713).

:func:`attach_spd` runs the SPD rule in step hooks of an optimizer: the
pre-hook reads the gradients and weights right before the optimizer's own
update, the post-hook projects the result. Whoever calls ``step()`` (an
MMEngine optimizer wrapper, a ``GradScaler``, a training loop) therefore
gets SPD, and a step that does not happen (a loss-scaler skip, an
accumulation iteration) touches neither weights, anchors nor statistics.

Each group's ``weight_decay`` is its SPD strength, read at every step, so a
``weight_decay`` schedule drives SPD. The optimizer's own step runs with
``weight_decay`` set to 0 and the value is put back afterwards: it never
applies a decay of its own, except in groups with ``spd=False``, which SPD
leaves to the optimizer. Anchors live in the optimizer's per-parameter
state (``state[p]['anchor']``) and are saved and loaded with it. Copies of
the optimizer (``copy.deepcopy``, ``pickle``, ``torch.save``) apply SPD
too.

The attachment, :class:`OptimizerSPD`, is in
:mod:`mmspd.optim._optimizer_spd`; this module holds the public functions.
It needs torch alone; the MMEngine wrappers and the
``SPDOptimWrapperConstructor`` build on it.
"""
from __future__ import annotations

from typing import Any

from torch import Tensor
from torch.optim import Optimizer

# Whole optimizers pickled with SPD by mmspd 0.3.0 name their rebuild
# function in this module.
from ._optimizer_spd import (
    _ATTR,
    OptimizerSPD,
    _rebuild_with_spd,  # noqa: F401
)


def attach_spd(optimizer: Optimizer,
               anchor: str = 'init',
               foreach: bool | None = None) -> OptimizerSPD:
    """Make ``optimizer`` apply Selective Projection Decay at every step.

    Each param group's ``weight_decay`` becomes its SPD strength (so
    ``decay_mult=0`` turns SPD off for a group, and a ``weight_decay``
    schedule drives it); the optimizer itself then applies no decay. A
    group with ``spd=False`` is left to the optimizer: no SPD there, and
    its ``weight_decay`` is the optimizer's own decay (AdamW's decoupled
    decay, SGD's L2 term). With ``torch.optim.Adam`` the result equals
    :class:`~mmspd.optim.AdamSPD`. ``maximize=True`` groups, complex
    parameters (as real views, as torch's optimizers take them) and copies
    of the optimizer (``copy.deepcopy``, ``pickle``, ``torch.save``) get
    SPD too.

    Args:
        optimizer (Optimizer): Any ``torch.optim`` optimizer without anchors
            of its own (not AdamSPD / AdamL2SP) whose SPD groups have a
            ``weight_decay`` key (for one without, such as Rprop, set
            ``group['weight_decay']`` first).
        anchor (str): ``'init'`` or ``'zero'``; a group key ``'anchor'``
            overrides it. Defaults to ``'init'``.
        foreach (bool, optional): False selects the per-tensor reference
            implementation of the rule. Defaults to None.

    Returns:
        OptimizerSPD: The attachment (statistics, ``reset_anchors``,
        ``detach``).

    Raises:
        TypeError: For AdamSPD / AdamL2SP or a non-optimizer.
        ValueError: For a bad anchor mode, strength or ``spd`` flag, a
            group without ``weight_decay``, parameters sharded by FSDP or
            DTensor, or when SPD is attached already.

    Example:
        >>> optimizer = torch.optim.SGD(model.parameters(), lr=0.01,
        ...                             momentum=0.9, weight_decay=1.0)
        >>> attach_spd(optimizer)
        >>> loss.backward(); optimizer.step()  # SGD step, then SPD
    """
    return OptimizerSPD(optimizer, anchor=anchor, foreach=foreach)


def _optimizer_of(obj: Any) -> Any:
    return getattr(obj, 'optimizer', obj)


def applies_spd(obj: Any) -> bool:
    """Whether an optimizer or optimizer wrapper applies SPD at its steps.

    True for :class:`~mmspd.optim.AdamSPD` and for optimizers SPD is
    attached to (:func:`attach_spd`, the SPD optimizer wrappers and
    ``SPDOptimWrapperConstructor``), given either directly or as the
    ``optimizer`` of a wrapper. A dict of wrappers (``OptimWrapperDict``)
    counts when every wrapper in it applies SPD.

    Args:
        obj: An optimizer, an optimizer wrapper, or a dict of wrappers.

    Returns:
        bool: Whether SPD runs when the optimizer steps.
    """
    from .adam_spd import AdamSPD
    wrappers = getattr(obj, 'optim_wrappers', None)
    if isinstance(wrappers, dict):
        return bool(wrappers) and all(
            applies_spd(wrapper) for wrapper in wrappers.values())
    optimizer = _optimizer_of(obj)
    if isinstance(optimizer, AdamSPD):
        return True
    spd = getattr(optimizer, _ATTR, None)
    return isinstance(spd, OptimizerSPD) and spd.attached


def spd_statistics(obj: Any) -> dict[str, Tensor]:
    """Statistics of the last SPD step of an optimizer or wrapper.

    Args:
        obj: An optimizer or optimizer wrapper.

    Returns:
        dict[str, Tensor]: See :meth:`SPDStatistics.summary`; empty when
        SPD does not run there or has not stepped yet.
    """
    optimizer = _optimizer_of(obj)
    reader = getattr(optimizer, 'spd_statistics', None)
    if callable(reader):
        return reader()
    spd = getattr(optimizer, _ATTR, None)
    if isinstance(spd, OptimizerSPD):
        return spd.statistics()
    return {}


def get_attachment(obj: Any) -> OptimizerSPD | None:
    """The :class:`OptimizerSPD` of an optimizer or wrapper, if any."""
    spd = getattr(_optimizer_of(obj), _ATTR, None)
    return spd if isinstance(spd, OptimizerSPD) else None
