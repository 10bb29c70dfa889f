# mmseg's default runtime plus what the CPU demo needs: mmspd registered,
# gloo for a CPU process group, a fixed seed (demo/run_demo.py varies it
# per fine-tuning run), and an iteration-based loop that validates and
# saves once, at the end. Configs set ``max_iters`` in these places.
_base_ = ['mmseg::_base_/default_runtime.py']
custom_imports = dict(imports=['mmspd'], allow_failed_imports=False)
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)

max_iters = 1000
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=max_iters,
        max_keep_ckpts=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'),
    # load_from, --resume and tools/test.py read MMEngine checkpoints on
    # torch >= 2.6 (mmspd.utils.SafeLoadHook).
    safe_load=dict(type='SafeLoadHook'))
