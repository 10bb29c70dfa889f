# Baseline on PASCAL-Context with 60 classes ("background" counted as a
# class). It is upernet_swin-t_adamw_8xb2-80k_pascal-context-59-480x480.py
# with mmseg's 60-class data settings and heads; every hyper-parameter is
# that config's (mmseg's Swin-T UperNet recipe), see there for the sources.
_base_ = [
    '../_base_/models/upernet_swin.py',
    'mmseg::_base_/datasets/pascal_context.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/schedules/schedule_80k.py',
]
custom_imports = dict(imports=['mmspd'], allow_failed_imports=False)
# load_from, --resume and tools/test.py read MMEngine checkpoints on
# torch >= 2.6 (mmspd.utils.SafeLoadHook); merged into the bases' hooks.
default_hooks = dict(safe_load=dict(type='SafeLoadHook'))

crop_size = (480, 480)
num_classes = 60
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    decode_head=dict(num_classes=num_classes),
    auxiliary_head=dict(num_classes=num_classes))

# mmseg's 60-class data settings have no TTA pipeline; this one is its
# test_pipeline at six scales, flipped and not, for `tools/test.py --tta`.
img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(
        type='TestTimeAug',
        transforms=[
            [
                dict(type='Resize', scale_factor=r, keep_ratio=True)
                for r in img_ratios
            ],
            [
                dict(type='RandomFlip', prob=0., direction='horizontal'),
                dict(type='RandomFlip', prob=1., direction='horizontal'),
            ],
            [dict(type='LoadAnnotations')],
            [dict(type='PackSegInputs')],
        ]),
]

# 8 GPUs x 2 images = batch 16 (mmseg Swin-T recipe).
train_dataloader = dict(batch_size=2)
val_dataloader = dict(batch_size=1)
test_dataloader = val_dataloader
