# mmseg's Swin UperNet (mmseg::_base_/models/upernet_swin.py, already
# Swin-T: embed_dims 96, depths 2-2-6-2, window 7, drop path 0.3; UPerHead
# with 512 channels, FCN auxiliary head on stage 3 with loss weight 0.4),
# starting from ImageNet-1k Swin-T weights as mmseg's Swin-T recipe does.
#
# The weights are read from a local file in mmseg's key layout; nothing is
# downloaded. Convert the official release with
#   python tools/convert_swin.py swin_tiny_patch4_window7_224.pth \
#       pretrain/swin_tiny_patch4_window7_224_mmseg.pth
# or point the config at your copy with
#   --cfg-options model.backbone.init_cfg.checkpoint=/path/to/weights.pth
# Set model.backbone.init_cfg=None to train from random initialisation, or
# when load_from supplies all weights. Each config sets num_classes.
_base_ = ['mmseg::_base_/models/upernet_swin.py']

pretrained = 'pretrain/swin_tiny_patch4_window7_224_mmseg.pth'
model = dict(
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=pretrained)))
