# The demo's tiny Swin-UperNet on its 64x64 PASCAL-Context-layout data, for
# end-to-end tests of tools/test_corruption.py. Built from the demo's base
# pieces (not a named demo config, whose schedule may change); the tests
# set data_root with --cfg-options. The optimizer is never used, but the
# Runner wants one beside the base's train dataloader and loop.
_base_ = [
    '../../../demo/configs/_base_/upernet_swin-demo.py',
    '../../../demo/configs/_base_/demo_pascal_context_59.py',
    '../../../demo/configs/_base_/demo_runtime.py'
]
custom_imports = dict(
    imports=['mmspd', 'recorder_hook'], allow_failed_imports=False)
load_from = None
optim_wrapper = dict(
    type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-4))
test_dataloader = dict(num_workers=0, persistent_workers=False)
default_hooks = dict(logger=dict(interval=1))
# The tests point ``record`` at a file with --cfg-options.
custom_hooks = [dict(type='ConditionRecorderHook', record='')]
