# 80k iterations, mmseg's schedule length for PASCAL-Context (e.g. its
# fcn_r101-d8_4xb4-80k_pascal-context-59-480x480), with the learning-rate
# policy of mmseg's Swin-T UperNet recipe: linear warm-up from 1e-6 x lr over
# the first 1500 iterations, then poly decay (power 1.0) to 0. The optimizer
# is set by each config.
max_iters = 80000
warmup_iters = 1500
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-6,
        by_epoch=False,
        begin=0,
        end=warmup_iters),
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=1.0,
        begin=warmup_iters,
        end=max_iters,
        by_epoch=False),
]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=8000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=8000),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
