"""Fine-tuning baselines that need no new optimizer: BitFit (train a subset
of parameters, :class:`PartialEncoderDecoder` in mmseg's ``MODELS``) and
layer-wise learning-rate decay over Swin
(:class:`SwinLayerDecayOptimWrapperConstructor` in MMEngine's
``OPTIM_WRAPPER_CONSTRUCTORS``)."""
from .layer_decay import (
    DECAY_TYPES,
    SwinLayerDecayOptimWrapperConstructor,
    swin_layer_id,
)
from .partial import BITFIT_TRAINABLE, PartialEncoderDecoder, freeze_except

__all__ = [
    'BITFIT_TRAINABLE',
    'DECAY_TYPES',
    'PartialEncoderDecoder',
    'SwinLayerDecayOptimWrapperConstructor',
    'freeze_except',
    'swin_layer_id',
]
