"""How the multi-tensor SPD path lays tensors out, and its fixed-order sums.

A plan (:func:`_plan`, cached per device, batch size and shapes) places a
list of tensors in batches of a flat scratch buffer, every tensor (or
piece of whole rows, for a tensor larger than a batch) on a chunk
boundary. :func:`_segment_sums` reduces chunk values to per-tensor sums in
the same order at every step and on every rank. :func:`is_dense` tells
whether a tensor covers its memory. The rule itself, on these plans, is in
:mod:`mmspd.optim._spd_multi`.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
from torch import Tensor

# Every tensor starts on a chunk boundary of the scratch buffer.
_CHUNK = 256
# Values summed per group at each level of a segmented sum.
_FAN_IN = 128


def is_dense(tensor: Tensor) -> bool:
    """Whether ``tensor`` covers its memory without gaps or overlap."""
    expected = 1
    for size, stride in sorted(zip(tensor.shape, tensor.stride()),
                               key=lambda item: item[1]):
        if size == 1:
            continue
        if stride != expected:
            return False
        expected *= size
    return True


class _Batch(NamedTuple):
    # (tensor index, rows of it or None for all) of every piece
    pieces: list[tuple[int, slice | None]]
    offsets: list[int]  # where each piece starts in the flat buffer
    total: int  # elements of the flat buffer (a multiple of _CHUNK)
    owners: Tensor  # tensor index of every chunk, on the tensors' device


class _Plan(NamedTuple):
    batches: list[_Batch]
    # Gather indices of the segmented sums (see _segment_levels) from the
    # chunks, and from the pieces, of all batches in order to the tensors;
    # no piece levels when no tensor is split (a piece per tensor).
    levels: list[Tensor]
    piece_levels: list[Tensor] | None

    @property
    def split(self) -> bool:
        """Whether some tensor is split into pieces."""
        return self.piece_levels is not None


# Scratch memory is bounded: tensors are processed in batches of at most this
# many elements (or one row of a tensor, if larger); tensors larger than a
# batch are split into pieces of whole rows (slices of their first dim).
_BATCH_ELEMENTS = 1 << 25
# On the CPU a batch small enough to stay in the cache is faster: the
# passes over the scratch buffer then cost no memory traffic.
_CPU_BATCH_ELEMENTS = 1 << 20
_plans: dict[tuple, _Plan] = {}


def _to_device(values: Sequence, dtype: torch.dtype,
               device: torch.device) -> Tensor:
    """``values`` as a tensor on ``device``, copied without a host sync."""
    if device.type != 'cuda':
        return torch.tensor(values, dtype=dtype, device=device)
    # A copy from pinned memory does not wait for the device, and the
    # pinned block is not handed out again before the copy has run.
    return torch.tensor(values, dtype=dtype, pin_memory=True).to(
        device, non_blocking=True)


def _padded(numel: int) -> int:
    return -(-numel // _CHUNK) * _CHUNK


def _split(shape: torch.Size, limit: int) -> list[slice | None]:
    """Row ranges of a tensor of ``shape``: ``limit`` elements or one row.

    None stands for the whole tensor, kept whole if it fits in a batch or
    has no rows to split along.
    """
    numel = shape.numel()
    if _padded(numel) <= limit or len(shape) == 0 or shape[0] < 2:
        return [None]
    row = numel // shape[0]
    rows = max(1, limit // max(row, 1))
    return [slice(i, min(i + rows, shape[0]))
            for i in range(0, shape[0], rows)]


def _segment_levels(lengths: list[int]) -> list[list[int]]:
    """Gather indices of a segmented sum in a fixed order.

    The input vector holds consecutive segments of ``lengths`` values,
    followed by one zero. Each level gathers every segment, padded with
    that zero to a multiple of ``_FAN_IN``, then ``_FAN_IN`` zeros more
    (the next level's zero); summing groups of ``_FAN_IN`` leaves fewer
    values per segment. After the last level each segment, an empty one
    too, is one value, at its own index. There is at least one level, so
    that the number of levels (and of kernels) depends on the size of the
    largest segment only: one up to ``_FAN_IN`` values, two up to
    ``_FAN_IN ** 2``, and so on.

    Args:
        lengths (list[int]): Values per segment.

    Returns:
        list[list[int]]: One index list per level.
    """
    levels: list[list[int]] = []
    while not levels or any(n != 1 for n in lengths):
        zero = sum(lengths)
        index: list[int] = []
        groups = []
        start = 0
        for n in lengths:
            count = max(1, -(-n // _FAN_IN))
            index.extend(range(start, start + n))
            index.extend([zero] * (count * _FAN_IN - n))
            groups.append(count)
            start += n
        index.extend([zero] * _FAN_IN)
        levels.append(index)
        lengths = groups
    return levels


def _segment_sums(values: Tensor, levels: list[Tensor], count: int,
                  zero: Tensor) -> Tensor:
    """Per-segment sums of ``values``, always in the same order.

    Args:
        values (Tensor): The values of all segments, one after the other.
        levels (list[Tensor]): Gather indices of the segments' lengths
            (:func:`_segment_levels`).
        count (int): Number of segments.
        zero (Tensor): A one-element zero of ``values``' dtype and device.
    """
    sums = torch.cat((values, zero))
    for index in levels:
        sums = sums.index_select(0, index).view(-1, _FAN_IN).sum(1)
    return sums[:count]


def _plan(tensors: list[Tensor]) -> _Plan:
    device = tensors[0].device
    limit = _BATCH_ELEMENTS if device.type != 'cpu' else min(
        _BATCH_ELEMENTS, _CPU_BATCH_ELEMENTS)
    key = (device, limit, tuple(t.shape for t in tensors))
    plan = _plans.get(key)
    if plan is not None:
        return plan
    if len(_plans) > 64:  # parameter sets change rarely; stay small
        _plans.clear()
    pieces = []  # (tensor index, rows, padded length)
    chunks = [0] * len(tensors)
    for i, shape in enumerate(key[2]):
        row = shape.numel() // shape[0] if len(shape) and shape[0] else 0
        for rows in _split(shape, limit):
            numel = shape.numel() if rows is None else row * (
                rows.stop - rows.start)
            pieces.append((i, rows, _padded(numel)))
            chunks[i] += _padded(numel) // _CHUNK
    batches, start, size = [], 0, 0
    for k in range(len(pieces) + 1):
        if k == len(pieces) or (size and size + pieces[k][2] > limit):
            offsets, owners, at = [], [], 0
            for i, _, length in pieces[start:k]:
                offsets.append(at)
                at += length
                owners.extend([i] * (length // _CHUNK))
            # Built once per parameter set and cached: no copy per step.
            batches.append(_Batch([p[:2] for p in pieces[start:k]],
                                  offsets, size,
                                  _to_device(owners, torch.long, device)))
            start, size = k, 0
        if k < len(pieces):
            size += pieces[k][2]
    levels = [_to_device(index, torch.long, device)
              for index in _segment_levels(chunks)]
    piece_levels = None
    if len(pieces) > len(tensors):
        counts = [0] * len(tensors)
        for i, _, _ in pieces:
            counts[i] += 1
        piece_levels = [_to_device(index, torch.long, device)
                        for index in _segment_levels(counts)]
    plan = _Plan(batches, levels, piece_levels)
    _plans[key] = plan
    return plan


def _pieces(tensors: list[Tensor], batch: _Batch) -> list[Tensor]:
    return [tensors[i] if rows is None else tensors[i][rows]
            for i, rows in batch.pieces]


def _cat(parts: list[Tensor]) -> Tensor:
    return parts[0] if len(parts) == 1 else torch.cat(parts)
