"""Fine-tuning only some parameters of a segmentor (BitFit and the like).

BitFit (Ben Zaken, Ravfogel, Goldberg, "BitFit: Simple Parameter-efficient
Fine-tuning for Transformer-based Masked Language-models", ACL 2022,
https://arxiv.org/abs/2106.10199) trains only the bias terms of a
pre-trained network. Applied to a segmentor, the randomly initialised heads
are trained in full and the backbone's biases only (:data:`BITFIT_TRAINABLE`).

Parameters are frozen with ``requires_grad=False`` when the model is built,
not by learning-rate multipliers (``lr_mult=0``). A frozen parameter gets no
gradient, so the backward pass and the optimizer state skip it (torch's
optimizers and mmspd's skip parameters without one), and it stays frozen
whatever a config override does to learning rates. (With ``lr_mult=0``,
AdamW, Adam-SPD and AdamL2SP would not move it either: their decay and
penalty steps scale with the learning rate.) Freezing at construction also
comes before MMEngine wraps the model in DistributedDataParallel, which
registers only the parameters that require gradients; freezing later (in a
hook) would make DDP wait for gradients that never come.
"""
from __future__ import annotations

import re
from typing import Sequence

from mmengine.logging import print_log
from mmseg.models import EncoderDecoder
from mmseg.registry import MODELS
from torch import nn

#: BitFit on a segmentor: biases of the backbone, everything in the heads.
BITFIT_TRAINABLE = (
    r'backbone\..*\.bias',
    r'decode_head\..*',
    r'auxiliary_head\..*',
)


def freeze_except(module: nn.Module, trainable: Sequence[str]) -> list[str]:
    """Freeze every parameter whose name matches none of ``trainable``.

    Parameters that match keep their ``requires_grad`` (one the model froze
    itself stays frozen).

    Args:
        module (nn.Module): The model.
        trainable (Sequence[str]): Regular expressions, each matched against
            the whole parameter name (``re.fullmatch``), e.g.
            ``r'backbone\\..*\\.bias'``.

    Returns:
        list[str]: Names of the parameters left trainable.

    Raises:
        ValueError: ``trainable`` is empty or a string, a pattern is not a
            valid regular expression, a pattern matches no parameter (a
            typo would otherwise freeze what it meant to train), or nothing
            is left trainable.
    """
    if isinstance(trainable, str) or not trainable:
        raise ValueError(
            'trainable must be a non-empty sequence of regular expressions '
            f'over parameter names, e.g. {list(BITFIT_TRAINABLE)}; got '
            f'{trainable!r}')
    patterns = []
    for pattern in trainable:
        try:
            patterns.append(re.compile(pattern))
        except (re.error, TypeError) as err:
            raise ValueError(
                f'invalid trainable pattern {pattern!r}: {err}') from None
    params = list(module.named_parameters())
    unused = [
        p.pattern for p in patterns
        if not any(p.fullmatch(name) for name, _ in params)
    ]
    if unused:
        raise ValueError(
            f'trainable patterns {unused} match no parameter of '
            f'{type(module).__name__}; its parameter names look like '
            f'{[name for name, _ in params[:3]]}')
    kept = []
    for name, param in params:
        if not any(p.fullmatch(name) for p in patterns):
            param.requires_grad_(False)
        elif param.requires_grad:
            kept.append(name)
    if not kept:
        raise ValueError(
            f'no parameter of {type(module).__name__} is left trainable by '
            f'{list(trainable)}')
    return kept


@MODELS.register_module()
class PartialEncoderDecoder(EncoderDecoder):
    """:class:`mmseg.models.EncoderDecoder` that trains only some parameters.

    Everything else is frozen (``requires_grad=False``) as soon as the model
    is built; see the module docstring for why this, and not ``lr_mult=0``.
    BitFit is ``trainable=BITFIT_TRAINABLE``.

    Args:
        *args: Passed to :class:`mmseg.models.EncoderDecoder`.
        trainable (Sequence[str]): Regular expressions over parameter names
            (whole-name match) of the parameters to train.
        **kwargs: Passed to :class:`mmseg.models.EncoderDecoder`.
    """

    def __init__(self, *args, trainable: Sequence[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.trainable = tuple(trainable)
        kept = freeze_except(self, self.trainable)
        n_kept = sum(p.numel() for p in self.parameters() if p.requires_grad)
        n_all = sum(p.numel() for p in self.parameters())
        print_log(
            f'{type(self).__name__}: training {len(kept)} parameter tensors '
            f'({n_kept:,} of {n_all:,} values, '
            f'{100 * n_kept / max(n_all, 1):.2f}%)',
            logger='current')
