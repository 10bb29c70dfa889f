# A Swin-UperNet shaped like mmseg's Swin-T UperNet (same modules, same
# wiring) but small enough to train on a CPU in minutes: 32-d embeddings,
# 5 blocks, 4x4 windows for 64x64 inputs, a 64-channel UPerHead, and plain
# BN (SyncBN needs a process group). No auxiliary head, to save time.
norm_cfg = dict(type='BN', requires_grad=True)
backbone_norm_cfg = dict(type='LN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(64, 64))
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        type='SwinTransformer',
        pretrain_img_size=64,
        embed_dims=32,
        patch_size=4,
        window_size=4,
        mlp_ratio=4,
        depths=[1, 1, 2, 1],
        num_heads=[1, 2, 4, 8],
        strides=(4, 2, 2, 2),
        out_indices=(0, 1, 2, 3),
        qkv_bias=True,
        qk_scale=None,
        patch_norm=True,
        drop_rate=0.,
        attn_drop_rate=0.,
        drop_path_rate=0.1,
        use_abs_pos_embed=False,
        act_cfg=dict(type='GELU'),
        norm_cfg=backbone_norm_cfg),
    decode_head=dict(
        type='UPerHead',
        in_channels=[32, 64, 128, 256],
        in_index=[0, 1, 2, 3],
        # The last stage is 2x2 for 64x64 inputs; larger pools add nothing.
        pool_scales=(1, 2),
        channels=64,
        dropout_ratio=0.1,
        num_classes=59,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
