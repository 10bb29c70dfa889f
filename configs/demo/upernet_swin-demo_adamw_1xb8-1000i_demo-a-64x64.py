# Pre-training of the tiny demo Swin-UperNet on domain A of the synthetic
# demo data, from random initialisation (there is no ImageNet checkpoint for
# this tiny backbone). The result plays the role of the "pre-trained model"
# that the domain-B configs fine-tune.
#
# Hyper-parameters (our choice, for a from-scratch CPU run of a couple of
# minutes): AdamW, lr 1e-3 (higher than mmseg's Swin-T fine-tuning 6e-5
# because nothing is pre-trained), weight decay 0.01 and the parameter-wise
# exclusions of mmseg's Swin-T recipe, 50-iteration linear warm-up then
# linear (poly, power 1) decay to 0, as in mmseg's Swin-T schedule.
# 1000 iterations of batch 8 on 128 images: about 2 minutes on 2 CPU cores;
# 500 iterations gave 76.5 domain-A val mIoU, 1000 gave 86.0.
_base_ = [
    './_base_/upernet_swin-demo.py', './_base_/demo_pascal_context_59.py',
    './_base_/demo_runtime.py'
]
data_root = 'data/demo/domain_A'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(
        custom_keys={
            'absolute_pos_embed': dict(decay_mult=0.),
            'relative_position_bias_table': dict(decay_mult=0.),
            'norm': dict(decay_mult=0.)
        }))

max_iters = 1000
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0,
         end=50),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=50, end=max_iters,
         by_epoch=False)
]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=max_iters,
        max_keep_ckpts=1))
