# Swin-T UperNet fine-tuned on PASCAL-Context (59 classes) with L2-SP:
# Adam whose gradient gets the L2 penalty lambda * (theta - anchor) toward
# the weights fine-tuning starts from (Li et al., ICML 2018), the paper's
# main comparison for SPD. Everything but the optimizer is the AdamW
# baseline's (mmseg's Swin-T recipe).
#
# Where each hyper-parameter comes from:
#   model, data, batch 16, 80k schedule, warm-up + poly
#                             inherited from the AdamW baseline (see there)
#   lr 6e-5, betas (0.9, 0.999), eps 1e-8
#                             mmseg Swin-T recipe, kept unchanged
#   weight_decay = lambda = 0.01
#                             our choice, not a value from the paper and
#                             not tuned (see below)
#   no penalty (decay_mult=0) on absolute_pos_embed,
#   relative_position_bias_table and norm layers
#                             the groups the mmseg recipe exempts from weight
#                             decay; our choice, as in the Adam-SPD config
#
# How lambda was chosen: 0.01 is the AdamW baseline's weight decay, so the
# baseline and L2-SP use the same strength and differ in the decay target
# (origin vs. pre-trained weights) and in the penalty going through Adam's
# normalisation. L2-SP is sensitive to lambda; sweep it (e.g. {1e-3, 1e-2,
# 1e-1}) with --cfg-options optim_wrapper.optimizer.weight_decay=L before
# comparing it with SPD.
_base_ = './upernet_swin-t_adamw_8xb2-80k_pascal-context-59-480x480.py'

# The baseline's paramwise_cfg is inherited: decay_mult=0, so neither decay
# nor SPD / L2-SP, for position embeddings, bias tables and norms.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        _delete_=True,
        type='AdamL2SP', lr=6e-5, betas=(0.9, 0.999), eps=1e-8,
        weight_decay=0.01))
