# Fine-tuning the broadly pre-trained demo model on the narrow target (one
# appearance, 16 images) with AdamW: the baseline that the L2-SP and
# Adam-SPD configs inherit from and differ from only in the optimizer. It
# inherits the pre-training config (model, data pipeline, AdamW settings)
# and states what differs: data, batch 8, schedule, ``load_from``.
#
# ``load_from`` is the pre-trained model; demo/run_demo.py sets it to the
# checkpoint its pre-training stage wrote. To run this config by hand:
#   python tools/train.py CONFIG --cfg-options load_from=PATH/TO/pre.pth
#
# Hyper-parameters: mmseg's Swin-T fine-tuning recipe (AdamW, betas
# (0.9, 0.999), weight decay 0.01, no decay for position tables and norms,
# linear warm-up then linear decay to 0) with a schedule shrunk to a CPU
# run of seconds: 100 iterations (50 epochs of the 16 images), 20 of
# warm-up. mmseg's lr 6e-5 is for 160k iterations; for this schedule we
# chose lr for this AdamW baseline from {2e-4, 5e-4, 1e-3, 2e-3} (at most
# the pre-training lr) by target val mIoU: 65.0, 69.8, 73.9, 78.4.
_base_ = './upernet_swin-demo_adamw_1xb16-700i_demo-broad-64x64.py'

data_root = 'data/demo/target'
train_dataloader = dict(batch_size=8, dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
load_from = 'work_dirs/demo/runs/pretrain/iter_700.pth'

# The pre-training's AdamW and parameter-wise settings; the lr is restated
# because it was chosen on its own (it happens to equal the pre-training's).
optim_wrapper = dict(optimizer=dict(lr=2e-3))

max_iters = 100
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0,
         end=20),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=20, end=max_iters,
         by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=50), checkpoint=dict(interval=max_iters))
