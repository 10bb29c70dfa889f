# Swin-T UperNet fine-tuned on PASCAL-Context (59 classes) with SGD +
# momentum and Selective Projection Decay added by SPDHook, the way SPD is
# turned on in any mmseg config: the runner builds the configured optimizer
# wrapper (OptimWrapper, or AmpOptimWrapper with mmseg's --amp) with the
# config's own constructor and paramwise_cfg, and SPDHook attaches SPD to
# its SGD before the first step (and before a checkpoint is resumed): SGD
# itself applies no weight decay, and each group's weight_decay is its SPD
# lambda. It shows SPD on an optimizer other than Adam; the paper's setting
# for this benchmark is Adam-SPD
# (upernet_swin-t_adamspd_8xb2-80k_pascal-context-59-480x480.py).
#
# Where each hyper-parameter comes from:
#   model, data, batch 16, 80k schedule, warm-up + poly
#                             inherited from the AdamW baseline (see there)
#   SGD lr 0.01, momentum 0.9 mmseg's SGD recipe (its
#                             _base_/schedules/schedule_80k.py), not tuned
#                             for Swin-T; our choice
#   weight_decay = lambda = 1.0
#                             our choice, as in the Adam-SPD config (see the
#                             reasoning there)
#   SPD off (decay_mult=0) for absolute_pos_embed,
#   relative_position_bias_table and norm layers
#                             as in the Adam-SPD config
#
# How lambda was chosen: as for Adam-SPD, lambda = 1 is the strongest value
# that never pulls a selected layer past its anchor; it is not tuned. Sweep
# with --cfg-options optim_wrapper.optimizer.weight_decay=L.
_base_ = './upernet_swin-t_adamw_8xb2-80k_pascal-context-59-480x480.py'

# The baseline's paramwise_cfg is inherited: decay_mult=0, so neither decay
# nor SPD / L2-SP, for position embeddings, bias tables and norms.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        _delete_=True,
        type='SGD', lr=0.01, momentum=0.9, weight_decay=1.0))

# SPDHook attaches SPD to the optimizer the runner built and stops the run
# before the first iteration if SPD cannot run on it (e.g. an override
# replaced SGD with AdamL2SP); SPDStatsHook logs the selection rate, mean r
# and the deviation from the anchors.
custom_hooks = [
    dict(type='SPDHook'),
    dict(type='SPDStatsHook', interval=50),
]
