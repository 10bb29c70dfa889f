# Swin-T UperNet fine-tuned with AdamW and layer-wise learning-rate decay
# (LLRD) on the 21-class PASCAL-Context split, a baseline of the paper's
# table: the learning rate shrinks by decay_rate per Swin block from the
# heads down to the patch embedding. Everything else is the AdamW baseline's.
#
# Learning rates (SwinLayerDecayOptimWrapperConstructor, mmspd.baselines):
# with Swin-T's 12 blocks (depths 2-2-6-2) as layers 1..12, the patch
# embedding as layer 0 and the heads as layer 13, layer l trains at
# 6e-5 * 0.9 ** (13 - l): heads and the backbone's output norms 6e-5, the
# last block 5.4e-5, the first block 1.7e-5, the patch embedding 1.5e-5.
# A stage's patch merging shares the rate of the stage's last block. The
# warm-up and poly schedule scale every group alike. The training log's lr
# is the first parameter group's: the patch embedding's.
#
# Where each hyper-parameter comes from:
#   decay per Swin block (decay_type='layer_wise')
#                             LLRD as used for vision transformers (BEiT);
#                             per-stage decay is decay_type='stage_wise'.
#                             Our choice; the paper does not define LLRD's
#                             layers for Swin
#   decay_rate 0.9            our choice, not tuned: the rate of mmseg's
#                             BEiT-base (12 layers) and ConvNeXt UperNet
#                             recipes
#   model, data, batch 16, 80k schedule, warm-up + poly, AdamW lr 6e-5 at the
#   top, weight decay 0.01 (none on position tables and norms)
#                             the AdamW baseline (see there)
_base_ = './upernet_swin-t_adamw_8xb2-80k_pascal-context-21-512x512.py'

optim_wrapper = dict(
    constructor='SwinLayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(decay_rate=0.9, decay_type='layer_wise'))
