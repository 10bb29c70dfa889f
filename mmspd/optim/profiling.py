"""Kernels, host syncs and nondeterministic ops of a step without a GPU.

:class:`StepRecorder` records the operators a step dispatches and applies
CUDA's rules to them, so the tests and ``tools/benchmark_optimizer.py`` can
check on any machine that a step neither waits for the device, nor
launches more kernels as the number of tensors grows, nor runs an operator
whose CUDA kernel gives results that vary from run to run.
"""
from __future__ import annotations

from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from ._segments import is_dense

# Operators that read device values back to the host.
SYNC_OPS = ('aten._local_scalar_dense', 'aten.item', 'aten.nonzero',
            'aten.masked_select', 'aten.segment_reduce', 'aten.unique',
            'aten._unique', 'aten._unique2', 'aten.unique_dim',
            'aten.unique_consecutive')

# Operators whose CUDA kernels accumulate floating-point values in an order
# that varies from run to run (atomics, decoupled look-back scans); under
# torch.use_deterministic_algorithms(True) they run a slower fallback or
# raise. Always: the first group; only with accumulate=True: the second.
NONDETERMINISTIC_OPS = ('aten.index_add', 'aten.scatter_add',
                        'aten.scatter_reduce', 'aten.index_reduce',
                        'aten.cumsum', 'aten.cumprod')
ACCUMULATING_OPS = ('aten.index_put', 'aten.index_put_',
                    'aten._index_put_impl_', 'aten.put', 'aten.put_')


def foreach_kernels(args: Any, fused: bool = False) -> int:
    """Kernels a ``torch._foreach_*`` / ``_fused_*`` call runs on CUDA.

    One, when its tensor lists match tensor by tensor in shape, stride and
    dtype and hold dense tensors (the fast route); otherwise one per tensor.

    Args:
        args: The op's positional arguments.
        fused (bool): A ``_fused_*`` optimizer op, whose kernel reads the
            per-tensor step counters (a list of 0-dim tensors) itself.
            Defaults to False.

    Returns:
        int: The number of kernels.
    """
    lists = [
        arg for arg in args if isinstance(arg, (list, tuple)) and arg
        and all(isinstance(t, torch.Tensor) for t in arg)
    ]
    if fused:
        lists = [arg for arg in lists if any(t.dim() for t in arg)]
    if not lists:
        return 1
    first = lists[0]
    for tensors in lists[1:]:
        for ref, tensor in zip(first, tensors):
            if (tensor.shape != ref.shape or tensor.stride() != ref.stride()
                    or tensor.dtype != ref.dtype):
                return len(first)
    if not all(is_dense(t) for t in first):
        return len(first)
    return 1


class StepRecorder(TorchDispatchMode):
    """Kernels and host syncs of the ops dispatched while it is active.

    Only ops touching a tensor on ``device_type`` count: step counters that
    live on the CPU beside CUDA parameters cost no kernel and no sync. Views
    launch no kernel. A ``meta`` run stands in for CUDA in tests (there the
    sync ops would not fail, so they are recognised by name).

    Args:
        device_type (str): The device whose kernels are counted.
            Defaults to ``'meta'``.

    Attributes:
        kernels (int): Kernels the ops would launch on CUDA.
        syncs (list[str]): Ops that would wait for the device.
        nondeterministic (list[str]): Ops on floating-point tensors whose
            CUDA kernels are nondeterministic (:data:`NONDETERMINISTIC_OPS`,
            and :data:`ACCUMULATING_OPS` with ``accumulate=True``).
    """

    def __init__(self, device_type: str = 'meta') -> None:
        super().__init__()
        self.device_type = device_type
        self.kernels = 0
        self.syncs: list[str] = []
        self.nondeterministic: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        tensors = [t for t in tree_leaves((args, kwargs))
                   if isinstance(t, torch.Tensor)]
        if not any(t.device.type == self.device_type for t in tensors):
            return func(*args, **kwargs)
        name = str(func.overloadpacket)
        if name.startswith(SYNC_OPS):
            self.syncs.append(name)
        if name in ('aten.index', 'aten.index_put', 'aten.index_put_'):
            indices = args[1] if len(args) > 1 else []
            if any(isinstance(i, torch.Tensor) and i.dtype == torch.bool
                   for i in indices or []):
                self.syncs.append(f'{name} with a boolean mask')
        if (name == 'aten.repeat_interleave'
                and kwargs.get('output_size') is None
                and not (len(args) > 1 and isinstance(args[1], int))):
            self.syncs.append('aten.repeat_interleave without output_size')
        if _nondeterministic(name, args, kwargs):
            self.nondeterministic.append(name)
        if name.startswith(('aten._foreach_', 'aten._fused_')):
            self.kernels += foreach_kernels(
                args, fused=name.startswith('aten._fused_'))
        elif func._schema.is_mutable or not func.is_view:
            self.kernels += 1
        return func(*args, **kwargs)


def _floating(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and (value.is_floating_point()
                                                or value.is_complex())


def _nondeterministic(name: str, args: tuple, kwargs: dict) -> bool:
    """Whether an op on floating-point data has a nondeterministic CUDA
    kernel."""
    base = name.rstrip('_')
    if base in NONDETERMINISTIC_OPS:
        return any(_floating(t) for t in tree_leaves((args, kwargs)))
    if name in ACCUMULATING_OPS:
        accumulate = kwargs.get('accumulate', args[3] if len(args) > 3
                                else False)
        return bool(accumulate) and _floating(args[0])
    return False
