# Baseline: Swin-T UperNet fine-tuned with AdamW on the 21-class
# PASCAL-Context split of multi-task dense prediction (background + 20 VOC
# classes; the split whose numbers the paper's PASCAL table most likely
# reports, see docs/pascal_context_21.md). mmseg's Swin-T UperNet recipe on
# this project's 21-class data settings. The Adam-SPD, L2-SP, BitFit and LLRD
# configs beside it inherit everything here and change one thing each.
#
# Where each hyper-parameter comes from:
#   model (Swin-T, UPerHead 512 ch, FCN aux head 0.4, drop path 0.3,
#   SyncBN in the heads)      mmseg::_base_/models/upernet_swin.py
#   ImageNet-1k Swin-T pre-trained backbone, local file (nothing is
#   downloaded; tools/convert_swin.py converts the official release)
#                             mmseg Swin-T recipe (../_base_/models/); the
#                             paper fine-tunes a pre-trained Swin-T (1k or
#                             22k pre-training: it does not say)
#   21 classes, 0 = background counted, 255 ignored
#                             the split (ASTMT / MTI-Net / MTLoRA)
#   512x512, scale 0.75-1.25, rotation +-20, flip, no photometric distortion;
#   evaluation at 512x512 scored at the original size
#                             ASTMT / MTI-Net protocol (augmentation:
#                             MTI-Net's), our choice among the
#                             published ones (_base_/datasets/
#                             pascal_context_21.py says why)
#   batch 16 = 8 GPUs x 2     mmseg Swin-T recipe
#   80k iterations, val/checkpoint every 8k
#                             mmseg::_base_/schedules/schedule_80k.py,
#                             mmseg's PASCAL-Context length; 80k x 16 = 256
#                             epochs of the 4,998 training images, near
#                             MTLoRA's 300 epochs at batch 32
#   AdamW lr 6e-5, betas (0.9, 0.999), eps 1e-8, weight decay 0.01, none on
#   absolute_pos_embed, relative_position_bias_table and norm layers;
#   warm-up 1500 iters (linear from 1e-6), poly power 1.0 to 0
#                             mmseg Swin-T recipe (../_base_/schedules/)
_base_ = [
    '../_base_/models/upernet_swin.py',
    '../_base_/datasets/pascal_context_21.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/schedules/schedule_80k.py',
]
custom_imports = dict(imports=['mmspd'], allow_failed_imports=False)
# load_from, --resume and tools/test.py read MMEngine checkpoints on
# torch >= 2.6 (mmspd.utils.SafeLoadHook); merged into the bases' hooks.
default_hooks = dict(safe_load=dict(type='SafeLoadHook'))

crop_size = (512, 512)
num_classes = 21
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    decode_head=dict(num_classes=num_classes),
    auxiliary_head=dict(num_classes=num_classes))

# 8 GPUs x 2 images = batch 16 (mmseg Swin-T recipe).
train_dataloader = dict(batch_size=2)
val_dataloader = dict(batch_size=1)
test_dataloader = val_dataloader
