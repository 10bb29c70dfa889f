# Fine-tuning the pre-trained demo model on the target with Adam-SPD: Adam
# plus Selective Projection Decay towards the weights fine-tuning starts
# from (taken at the first step, after ``load_from``). Data, schedule, lr
# and parameter-wise exclusions (no SPD for position tables and norms) are
# the AdamW baseline's.
#
# lambda (``weight_decay``) = 0.3 here; demo/run_demo.py chooses it from
# {0.1, 0.3, 1.0} (the sweep the Swin-T Adam-SPD config proposes) by the
# target's val mIoU and passes it with --cfg-options.
_base_ = './upernet_swin-demo_adamw_1xb8-100i_demo-target-64x64.py'

optim_wrapper = dict(
    optimizer=dict(
        _delete_=True,
        type='AdamSPD', lr=2e-3, betas=(0.9, 0.999), weight_decay=0.3))

# Selection rate, mean r and deviation from the anchors in the training log.
custom_hooks = [dict(type='SPDStatsHook', interval=50)]
