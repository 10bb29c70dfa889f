# PASCAL-Context, the 21-class split of multi-task dense prediction (ASTMT,
# MTI-Net, MTLoRA): 0 = background, 1-20 = the VOC classes in VOC order,
# 255 = ignore, mIoU over all 21 classes (background included). Labels are
# read as they are (no reduce_zero_label). Layout (the PASCAL_MT archive, or
# what tools/prepare_pascal_mt.py derive writes):
#   data/PASCAL_MT/JPEGImages/<id>.jpg
#   data/PASCAL_MT/semseg/VOC12/<id>.png          (looked up first)
#   data/PASCAL_MT/semseg/pascal-context/<id>.png (otherwise)
#   data/PASCAL_MT/ImageSets/Context/{train,val}.txt  (4,998 / 5,105 ids)
# Check a folder with: python tools/prepare_pascal_mt.py check data/PASCAL_MT
#
# Protocol choices (the paper does not state them; see
# docs/pascal_context_21.md):
#   512x512, aspect ratio not kept
#       ASTMT's and MTI-Net's size for this split (MTLoRA trains Swin-T at
#       448); 512 also keeps mmseg's Swin recipe crop.
#   training: scale jitter 0.75-1.25, rotation +-20 degrees, flip
#       MTI-Net's augmentation for this split (flip, then its ScaleNRotate,
#       then a fixed resize), written with mmseg transforms: it
#       scales and rotates about the centre and keeps the size; here the
#       zoomed image is cropped at a random position or padded (bottom and
#       right, by the data preprocessor) to 512x512, then rotated in place
#       (corners: image 0, label 255 = ignored). No photometric
#       distortion: those recipes have none, and brightness is one of the
#       corruptions evaluated, so training on brightness jitter would blur
#       what the robustness comparison measures.
#   evaluation: resize to 512x512, predict, score at the original size
#       ASTMT's protocol (mmseg resizes the logits back because the labels
#       are loaded after Resize). MTLoRA scores at its training size instead.
dataset_type = 'PascalContext21Dataset'
data_root = 'data/PASCAL_MT/'

img_scale = (512, 512)
crop_size = (512, 512)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(
        type='RandomResize',
        scale=img_scale,
        ratio_range=(0.75, 1.25),
        keep_ratio=False),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomRotate', prob=1.0, degree=20, pad_val=0,
         seg_pad_val=255),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=False),
    # Labels are loaded after Resize: evaluation is at the original size.
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
# `tools/test.py --tta`: horizontal flip at the evaluation size (our choice;
# the multi-task recipes report no test-time augmentation).
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='Resize', scale=img_scale, keep_ratio=False)],
            [
                dict(type='RandomFlip', prob=0., direction='horizontal'),
                dict(type='RandomFlip', prob=1., direction='horizontal'),
            ],
            [dict(type='LoadAnnotations')],
            [dict(type='PackSegInputs')],
        ]),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='JPEGImages'),
        ann_file='ImageSets/Context/train.txt',
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='JPEGImages'),
        ann_file='ImageSets/Context/val.txt',
        pipeline=test_pipeline))
test_dataloader = val_dataloader

val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
