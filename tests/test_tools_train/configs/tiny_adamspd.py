# Tiny Swin-UperNet trained with AdamSPD on the demo data, for end-to-end
# tests of tools/train.py (a few iterations on the CPU). The tests set
# data_root with --cfg-options.
_base_ = [
    '../../../demo/configs/_base_/upernet_swin-demo.py',
    '../../../demo/configs/_base_/demo_pascal_context_59.py',
    'mmseg::_base_/default_runtime.py',
]
custom_imports = dict(
    imports=['mmspd', 'rank_state_dump'], allow_failed_imports=False)

# Resuming restores weights and optimizer state but not torch's random
# state, so dropout and drop path are off: an interrupted run then repeats
# an uninterrupted one exactly. The data pipeline's randomness replays,
# since the train loop re-reads the skipped batches on resume.
model = dict(
    backbone=dict(drop_path_rate=0.),
    decode_head=dict(dropout_ratio=0.))
randomness = dict(seed=0, deterministic=True)

train_dataloader = dict(batch_size=2, num_workers=0,
                        persistent_workers=False)
val_dataloader = dict(num_workers=0, persistent_workers=False)
test_dataloader = val_dataloader

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamSPD', lr=1e-3, betas=(0.9, 0.999), weight_decay=1.0),
    paramwise_cfg=dict(
        custom_keys={
            'relative_position_bias_table': dict(decay_mult=0.),
            'norm': dict(decay_mult=0.),
        }))

# Fixed ends, so runs of 2 and of 4 iterations share the schedule.
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=2),
    dict(type='PolyLR', eta_min=0., power=1., begin=2, end=8,
         by_epoch=False),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=4, val_interval=1000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=1, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'),
    safe_load=dict(type='SafeLoadHook'))  # resume on torch >= 2.6
custom_hooks = [
    dict(type='SPDHook'),
    dict(type='SPDStatsHook', interval=1),
    dict(type='RankStateDumpHook'),
]
