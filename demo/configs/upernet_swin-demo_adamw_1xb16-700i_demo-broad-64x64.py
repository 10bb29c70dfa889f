# Pre-training of the tiny demo Swin-UperNet on the broad mixture of the
# demo data (every image in its own random appearance: colours, texture
# scale, lighting, blur, noise), from random initialisation (there is no
# ImageNet checkpoint for this tiny backbone). The result plays the role of
# the broadly pre-trained model that the target configs fine-tune.
#
# Hyper-parameters (our choice, for a from-scratch CPU run of about three
# minutes): AdamW, weight decay 0.01 and the parameter-wise exclusions of
# mmseg's Swin-T recipe, a 50-iteration linear warm-up then linear (poly,
# power 1) decay to 0, as in mmseg's Swin-T schedule; lr 2e-3 and 700
# iterations of batch 16 (11 epochs of the 1024 images). On the broad val
# split, lr 1e-3 for 600 iterations gave 50.1 mIoU, lr 2e-3 for 700 gave
# 58.2.
_base_ = [
    './_base_/upernet_swin-demo.py', './_base_/demo_pascal_context_59.py',
    './_base_/demo_runtime.py'
]
data_root = 'data/demo/broad'
train_dataloader = dict(batch_size=16, dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=2e-3, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(
        custom_keys={
            'absolute_pos_embed': dict(decay_mult=0.),
            'relative_position_bias_table': dict(decay_mult=0.),
            'norm': dict(decay_mult=0.)
        }))

max_iters = 700
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0,
         end=50),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=50, end=max_iters,
         by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=100),
    checkpoint=dict(interval=max_iters))
