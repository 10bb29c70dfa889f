# Fine-tuning the pre-trained demo model on the target with L2-SP: Adam whose
# gradient gets alpha * (theta - anchor), the anchor being the weights
# fine-tuning starts from (taken at the first step, after ``load_from``).
# Data, schedule, lr and parameter-wise exclusions are the AdamW baseline's.
#
# alpha (``weight_decay``) = 0.01 here; demo/run_demo.py chooses it from
# {1e-3, 1e-2, 1e-1} (the sweep the Swin-T L2-SP config proposes) by the
# target's val mIoU and passes it with --cfg-options.
_base_ = './upernet_swin-demo_adamw_1xb8-100i_demo-target-64x64.py'

optim_wrapper = dict(
    optimizer=dict(
        _delete_=True,
        type='AdamL2SP', lr=2e-3, betas=(0.9, 0.999), weight_decay=0.01))
