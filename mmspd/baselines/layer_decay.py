"""Layer-wise learning-rate decay (LLRD) over a Swin backbone.

LLRD gives layers nearer the input smaller learning rates, so that fine-tuning
changes the general low-level features least (Howard and Ruder, "Universal
Language Model Fine-tuning for Text Classification", ACL 2018, there called
discriminative fine-tuning; for vision transformers, Bao et al., "BEiT",
ICLR 2022). With ``L`` layers numbered 1..L from the input, the stem as layer
0 and the heads as layer L + 1, layer ``l`` trains at::

    lr * decay_rate ** (L + 1 - l)

For mmseg's ``SwinTransformer`` a "layer" is a transformer block
(``decay_type='layer_wise'``, L = sum of the stage depths, 12 for Swin-T) or
a stage (``'stage_wise'``, L = number of stages, 4).
"""
from __future__ import annotations

import re

from mmengine.optim import DefaultOptimWrapperConstructor
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS
from torch import nn

DECAY_TYPES = ('layer_wise', 'stage_wise')

_STEM = re.compile(r'backbone\.(patch_embed\.|absolute_pos_embed$)')
_BLOCK = re.compile(r'backbone\.stages\.(\d+)\.blocks\.(\d+)\.')
_DOWNSAMPLE = re.compile(r'backbone\.stages\.(\d+)\.downsample\.')


def swin_layer_id(name: str, depths: list[int], decay_type: str) -> int:
    """Layer number of a parameter of a segmentor with a Swin backbone.

    Args:
        name (str): Parameter name in the segmentor, e.g.
            ``'backbone.stages.2.blocks.5.attn.w_msa.qkv.weight'``.
        depths (list[int]): Blocks per stage, e.g. ``[2, 2, 6, 2]``.
        decay_type (str): ``'layer_wise'`` or ``'stage_wise'``.

    Returns:
        int: 0 for the patch embedding (and absolute position embedding);
        for ``'layer_wise'`` 1 + the block's index counted over all stages,
        for ``'stage_wise'`` 1 + the stage index; a stage's patch merging
        (``downsample``, part of that stage in mmseg) shares the number of
        the stage's last block; L + 1 for everything else (decode and
        auxiliary heads, the backbone's output norms, which the ImageNet
        checkpoint does not train for segmentation).
    """
    layers = sum(depths) if decay_type == 'layer_wise' else len(depths)
    if _STEM.match(name):
        return 0
    block = _BLOCK.match(name)
    downsample = _DOWNSAMPLE.match(name)
    if block:
        stage, index = int(block.group(1)), int(block.group(2))
    elif downsample:
        stage = int(downsample.group(1))
        index = depths[stage] - 1
    else:
        return layers + 1
    if decay_type == 'stage_wise':
        return stage + 1
    return 1 + sum(depths[:stage]) + index


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class SwinLayerDecayOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """Optimizer-wrapper constructor with LLRD over a Swin backbone.

    Builds the parameter groups as MMEngine's default constructor does
    (``custom_keys``, ``norm_decay_mult``, ... apply as usual), then
    multiplies each group's learning rate by
    ``decay_rate ** (L + 1 - layer)`` (:func:`swin_layer_id`). Weight
    decay is left as the default constructor sets it. It works with any
    optimizer wrapper type, so ``--amp`` keeps it.

    Config::

        optim_wrapper = dict(
            type='OptimWrapper',
            constructor='SwinLayerDecayOptimWrapperConstructor',
            optimizer=dict(type='AdamW', lr=6e-5, weight_decay=0.01),
            paramwise_cfg=dict(decay_rate=0.9, decay_type='layer_wise'))

    Args:
        optim_wrapper_cfg (dict): As for ``DefaultOptimWrapperConstructor``;
            the optimizer must set ``lr``.
        paramwise_cfg (dict): ``decay_rate`` (float in (0, 1], required),
            ``decay_type`` (``'layer_wise'``, the default, or
            ``'stage_wise'``), and any key of
            ``DefaultOptimWrapperConstructor``'s ``paramwise_cfg``.

    Raises:
        ValueError: A missing or invalid ``decay_rate`` / ``decay_type``,
            no ``lr``, or a model without a Swin backbone
            (``model.backbone.stages[i].blocks``).
    """

    def __init__(self,
                 optim_wrapper_cfg: dict,
                 paramwise_cfg: dict | None = None) -> None:
        paramwise_cfg = dict(paramwise_cfg or {})
        decay_rate = paramwise_cfg.get('decay_rate')
        decay_type = paramwise_cfg.setdefault('decay_type', 'layer_wise')
        if (isinstance(decay_rate, bool)
                or not isinstance(decay_rate, (int, float))
                or not 0 < decay_rate <= 1):
            raise ValueError(
                'SwinLayerDecayOptimWrapperConstructor needs '
                'paramwise_cfg.decay_rate, a number in (0, 1]; got '
                f'{decay_rate!r}')
        if decay_type not in DECAY_TYPES:
            raise ValueError(
                f'Invalid paramwise_cfg.decay_type {decay_type!r}; expected '
                f'one of {DECAY_TYPES}')
        super().__init__(optim_wrapper_cfg, paramwise_cfg)
        if self.base_lr is None:
            raise ValueError(
                'SwinLayerDecayOptimWrapperConstructor needs optimizer.lr '
                'to scale')
        self.decay_rate = float(decay_rate)
        self.decay_type = decay_type

    def add_params(self,
                   params: list[dict],
                   module: nn.Module,
                   prefix: str = '',
                   is_dcn_module: float | None = None) -> None:
        """Add one group per parameter, with its layer's learning rate.

        The default constructor recurses through this method with a prefix;
        the scaling happens once, in the outermost call.
        """
        if prefix:
            super().add_params(params, module, prefix, is_dcn_module)
            return
        stages = getattr(getattr(module, 'backbone', None), 'stages', None)
        try:
            depths = [len(stage.blocks) for stage in stages]
        except (AttributeError, TypeError):
            raise ValueError(
                'SwinLayerDecayOptimWrapperConstructor needs a segmentor '
                'with an mmseg SwinTransformer backbone (backbone.stages[i]'
                f'.blocks); got {type(module).__name__} with backbone '
                f'{type(getattr(module, "backbone", None)).__name__}'
            ) from None
        layers = (sum(depths)
                  if self.decay_type == 'layer_wise' else len(depths))
        start = len(params)
        super().add_params(params, module, prefix, is_dcn_module)
        names = {id(p): n for n, p in module.named_parameters()}
        for group in params[start:]:
            # The default constructor makes one group per parameter.
            (param, ) = group['params']
            layer = swin_layer_id(names[id(param)], depths, self.decay_type)
            scale = self.decay_rate**(layers + 1 - layer)
            group['lr'] = group.get('lr', self.base_lr) * scale
