# The tiny config as a config of mmseg's model zoo with SPD turned on has
# it: mmseg's default hooks, no SafeLoadHook. mmspd's tools/train.py and
# tools/test.py add that hook (torch >= 2.6 loads checkpoints with
# weights_only=True); mmseg's own tools do not.
_base_ = ['./tiny_adamspd.py']
default_hooks = dict(
    _delete_=True,
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=1, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
