# mmseg's Swin UperNet (mmseg::_base_/models/upernet_swin.py: the same
# modules and wiring as the Swin-T configs) shrunk to train on a CPU in
# minutes: 32-d embeddings, 5 blocks, 4x4 windows for 64x64 inputs, a
# 64-channel UPerHead, plain BN (SyncBN needs a process group), no
# auxiliary head, and no pre-trained backbone (the demo pre-trains its own
# model). 59 classes: the demo data uses PASCAL-Context-59 label ids.
_base_ = ['mmseg::_base_/models/upernet_swin.py']

norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(size=(64, 64))
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(
        init_cfg=None,
        pretrain_img_size=64,
        embed_dims=32,
        window_size=4,
        depths=[1, 1, 2, 1],
        num_heads=[1, 2, 4, 8],
        drop_path_rate=0.1),
    decode_head=dict(
        in_channels=[32, 64, 128, 256],
        # The last stage is 2x2 for 64x64 inputs; larger pools add nothing.
        pool_scales=(1, 2),
        channels=64,
        num_classes=59,
        norm_cfg=norm_cfg),
    auxiliary_head=None)
