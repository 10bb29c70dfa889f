# Baseline on PASCAL-Context with 60 classes ("background" counted as a
# class). It is upernet_swin-t_adamw_8xb2-80k_pascal-context-59-480x480.py
# with the 60-class data settings and heads; every hyper-parameter is that
# config's (mmseg's Swin-T UperNet recipe), see there for the sources.
_base_ = [
    '../_base_/models/upernet_swin.py',
    '../_base_/datasets/pascal_context.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_80k.py',
]
crop_size = (480, 480)
num_classes = 60
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
