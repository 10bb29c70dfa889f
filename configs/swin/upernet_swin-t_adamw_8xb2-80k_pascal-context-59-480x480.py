# Baseline: Swin-T UperNet fine-tuned on PASCAL-Context (59 classes) with
# AdamW, i.e. mmseg's Swin-T UperNet recipe on mmseg's PASCAL-Context data
# settings. The SPD and L2-SP configs in this folder inherit everything here
# and change only the optimizer.
#
# Where each hyper-parameter comes from:
#   model (Swin-T, UPerHead 512 ch, FCN aux head 0.4, drop path 0.3)
#                             mmseg Swin-T recipe (_base_/models)
#   ImageNet-1k Swin-T pre-trained backbone
#                             mmseg Swin-T recipe; the paper fine-tunes a
#                             pre-trained Swin-T on PASCAL-Context
#   crop 480x480, scale 520, ratio 0.5-2.0, flip, photometric distortion
#                             mmseg PASCAL-Context recipe (_base_/datasets)
#   batch 16 = 8 GPUs x 2     mmseg Swin-T recipe
#   80k iterations, val/checkpoint every 8k
#                             mmseg PASCAL-Context schedule length
#   warm-up 1500 iters (linear from 1e-6), poly power 1.0 to 0
#                             mmseg Swin-T recipe (_base_/schedules)
#   AdamW lr 6e-5, betas (0.9, 0.999), eps 1e-8 (torch default)
#                             mmseg Swin-T recipe
#   weight decay 0.01, none on absolute_pos_embed,
#   relative_position_bias_table and norm layers
#                             mmseg Swin-T recipe
_base_ = [
    '../_base_/models/upernet_swin.py',
    '../_base_/datasets/pascal_context_59.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_80k.py',
]
crop_size = (480, 480)
num_classes = 59
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    decode_head=dict(num_classes=num_classes),
    auxiliary_head=dict(num_classes=num_classes))

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=6e-5, betas=(0.9, 0.999), eps=1e-8,
        weight_decay=0.01),
    paramwise_cfg=dict(
        custom_keys={
            'absolute_pos_embed': dict(decay_mult=0.),
            'relative_position_bias_table': dict(decay_mult=0.),
            'norm': dict(decay_mult=0.),
        }))

# 8 GPUs x 2 images = batch 16 (mmseg Swin-T recipe).
train_dataloader = dict(batch_size=2)
val_dataloader = dict(batch_size=1)
test_dataloader = val_dataloader
