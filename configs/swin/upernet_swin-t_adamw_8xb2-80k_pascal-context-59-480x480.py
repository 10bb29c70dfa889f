# Baseline: Swin-T UperNet fine-tuned on PASCAL-Context (59 classes) with
# AdamW, i.e. mmseg's Swin-T UperNet recipe on mmseg's PASCAL-Context data
# settings. The SPD and L2-SP configs in this folder inherit everything here
# and change only the optimizer.
#
# Where each hyper-parameter comes from:
#   model (Swin-T, UPerHead 512 ch, FCN aux head 0.4, drop path 0.3)
#                             mmseg::_base_/models/upernet_swin.py
#   ImageNet-1k Swin-T pre-trained backbone
#                             mmseg Swin-T recipe (../_base_/models/); the
#                             paper fine-tunes a pre-trained Swin-T
#   crop 480x480, scale 520, ratio 0.5-2.0, flip, photometric distortion
#                             mmseg::_base_/datasets/pascal_context_59.py
#   batch 16 = 8 GPUs x 2     mmseg Swin-T recipe
#   80k iterations, val/checkpoint every 8k
#                             mmseg::_base_/schedules/schedule_80k.py
#   AdamW lr 6e-5, betas (0.9, 0.999), eps 1e-8, weight decay 0.01, none on
#   absolute_pos_embed, relative_position_bias_table and norm layers;
#   warm-up 1500 iters (linear from 1e-6), poly power 1.0 to 0
#                             mmseg Swin-T recipe (../_base_/schedules/)
_base_ = [
    '../_base_/models/upernet_swin.py',
    'mmseg::_base_/datasets/pascal_context_59.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/schedules/schedule_80k.py',
]
custom_imports = dict(imports=['mmspd'], allow_failed_imports=False)
# load_from, --resume and tools/test.py read MMEngine checkpoints on
# torch >= 2.6 (mmspd.utils.SafeLoadHook); merged into the bases' hooks.
default_hooks = dict(safe_load=dict(type='SafeLoadHook'))

crop_size = (480, 480)
num_classes = 59
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    decode_head=dict(num_classes=num_classes),
    auxiliary_head=dict(num_classes=num_classes))

# mmseg's 59-class TTA pipeline loads the labels without reduce_zero_label,
# so `--tta` would score 60-class label ids against 59 classes; this one
# loads them as mmseg's test_pipeline does.
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
            [dict(type='LoadAnnotations', reduce_zero_label=True)],
            [dict(type='PackSegInputs')],
        ]),
]

# 8 GPUs x 2 images = batch 16 (mmseg Swin-T recipe).
train_dataloader = dict(batch_size=2)
val_dataloader = dict(batch_size=1)
test_dataloader = val_dataloader
