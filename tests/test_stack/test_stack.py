"""The pinned OpenMMLab stack works on this torch: compiled mmcv ops, a tiny
Swin-UperNet segmentor, and a full MMEngine Runner iteration."""
import copy

import torch
from mmengine.config import ConfigDict
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmspd  # noqa: F401  registers SafeLoadHook

NUM_CLASSES = 5
TINY_SEGMENTOR = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_val=0,
        seg_pad_val=255,
        size=(32, 32)),
    backbone=dict(
        type='SwinTransformer',
        pretrain_img_size=32,
        embed_dims=8,
        patch_size=4,
        window_size=2,
        mlp_ratio=2,
        depths=(1, 1, 1, 1),
        num_heads=(1, 1, 2, 2),
        strides=(4, 2, 2, 2),
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.0,
        patch_norm=True,
        norm_cfg=dict(type='LN', requires_grad=True)),
    decode_head=dict(
        type='UPerHead',
        in_channels=[8, 16, 32, 64],
        in_index=[0, 1, 2, 3],
        pool_scales=(1, 2),
        channels=8,
        dropout_ratio=0.0,
        num_classes=NUM_CLASSES,
        norm_cfg=dict(type='BN', requires_grad=True),
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))


def _sample(seed: int) -> dict:
    gen = torch.Generator().manual_seed(seed)
    image = torch.randint(0, 256, (3, 32, 32), generator=gen).to(torch.uint8)
    label = torch.randint(0, NUM_CLASSES, (1, 32, 32), generator=gen)
    sample = SegDataSample(gt_sem_seg=PixelData(data=label))
    sample.set_metainfo(dict(img_shape=(32, 32), ori_shape=(32, 32),
                             pad_shape=(32, 32)))
    return dict(inputs=image, data_samples=sample)


def test_mmcv_compiled_ops_run():
    import mmcv
    import mmcv._ext
    from mmcv.ops import nms

    assert mmcv.__version__ == '2.1.0'
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.],
                          [20., 20., 30., 30.]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    _, keep = nms(boxes, scores, iou_threshold=0.5)
    assert keep.tolist() == [0, 2]


def test_tiny_swin_upernet_forward_backward():
    init_default_scope('mmseg')
    model = MODELS.build(ConfigDict(copy.deepcopy(TINY_SEGMENTOR)))
    data = model.data_preprocessor(
        dict(
            inputs=[_sample(i)['inputs'] for i in range(2)],
            data_samples=[_sample(i)['data_samples'] for i in range(2)]),
        training=True)
    losses = model(**data, mode='loss')
    loss = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(loss)
    loss.backward()
    grad = model.backbone.patch_embed.projection.weight.grad
    assert grad is not None and grad.abs().sum() > 0

    model.eval()
    with torch.no_grad():
        preds = model(**data, mode='predict')
    assert preds[0].pred_sem_seg.data.shape == (1, 32, 32)


def _runner(work_dir, max_iters: int, **kwargs) -> Runner:
    return Runner(
        model=copy.deepcopy(TINY_SEGMENTOR),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=[_sample(i) for i in range(4)],
            batch_size=2,
            sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=dict(type='pseudo_collate')),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-3)),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=max_iters),
        default_hooks=dict(
            checkpoint=dict(
                type='CheckpointHook', by_epoch=False, interval=2),
            safe_load=dict(type='SafeLoadHook')),
        default_scope='mmseg',
        randomness=dict(seed=0),
        **kwargs)


def test_runner_iteration(tmp_path):
    runner = _runner(tmp_path, max_iters=1)
    before = runner.model.decode_head.conv_seg.weight.detach().clone()
    runner.train()
    assert runner.iter == 1
    assert not torch.equal(before, runner.model.decode_head.conv_seg.weight)


def test_resume_under_installed_torch(tmp_path):
    """mmengine 0.10.7 resumes its own checkpoints on torch >= 2.6 with
    the hook mmspd's configs add (``SafeLoadHook``)."""
    _runner(tmp_path, max_iters=2).train()
    checkpoint = tmp_path / 'iter_2.pth'
    assert checkpoint.is_file()

    resumed = _runner(tmp_path, max_iters=4, resume=True)
    resumed.train()
    assert resumed.iter == 4

    straight_dir = tmp_path / 'straight'
    straight = _runner(straight_dir, max_iters=4)
    straight.train()
    for (name, a), (_, b) in zip(straight.model.state_dict().items(),
                                 resumed.model.state_dict().items()):
        torch.testing.assert_close(a, b, msg=name)

