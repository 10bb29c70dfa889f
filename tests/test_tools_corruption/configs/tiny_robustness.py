# The demo's AdamW fine-tuning config (tiny Swin-UperNet, 64x64 demo data),
# for end-to-end tests of tools/test_corruption.py. The tests set data_root
# with --cfg-options.
_base_ = [
    '../../../configs/demo/'
    'upernet_swin-demo_adamw_1xb8-200i_demo-target-64x64.py'
]
custom_imports = dict(
    imports=['mmspd', 'recorder_hook'], allow_failed_imports=False)
load_from = None
test_dataloader = dict(num_workers=0, persistent_workers=False)
default_hooks = dict(logger=dict(interval=1))
# The tests point ``record`` at a file with --cfg-options.
custom_hooks = [dict(type='ConditionRecorderHook', record='')]
