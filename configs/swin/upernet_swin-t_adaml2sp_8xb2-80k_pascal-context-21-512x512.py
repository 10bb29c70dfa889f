# Swin-T UperNet fine-tuned with L2-SP on the 21-class PASCAL-Context split:
# Adam whose gradient gets the penalty lambda * (theta - anchor) toward the
# weights fine-tuning starts from (Li, Grandvalet, Davoine, ICML 2018), a
# baseline of the paper's table. Everything but the optimizer is the AdamW
# baseline's.
#
# Where each hyper-parameter comes from:
#   model, data, batch 16, 80k schedule, warm-up + poly
#                             the AdamW baseline (see there)
#   lr 6e-5, betas (0.9, 0.999), eps 1e-8
#                             mmseg Swin-T recipe, unchanged
#   weight_decay = lambda = 0.01
#                             our choice, not tuned: the AdamW baseline's
#                             strength, so the two differ in the decay target
#                             (origin vs. pre-trained weights). L2-SP is
#                             sensitive to lambda; sweep e.g. {1e-3, 1e-2,
#                             1e-1} with --cfg-options
#                             optim_wrapper.optimizer.weight_decay=L
#   no penalty (decay_mult=0) on absolute_pos_embed,
#   relative_position_bias_table and norm layers
#                             inherited paramwise_cfg; our choice
_base_ = './upernet_swin-t_adamw_8xb2-80k_pascal-context-21-512x512.py'

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        _delete_=True,
        type='AdamL2SP', lr=6e-5, betas=(0.9, 0.999), eps=1e-8,
        weight_decay=0.01))
