# Swin-T UperNet fine-tuned on PASCAL-Context (59 classes) with SGD +
# momentum and Selective Projection Decay added by
# SPDOptimWrapperConstructor, which builds the configured optimizer wrapper
# (OptimWrapper, or AmpOptimWrapper with mmseg's --amp) and attaches SPD to
# its SGD: SGD itself applies no weight decay, and each group's
# weight_decay is its SPD lambda. It shows SPD on an optimizer other than Adam; the
# paper's setting for this benchmark is Adam-SPD
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
    constructor='SPDOptimWrapperConstructor',
    optimizer=dict(
        _delete_=True,
        type='SGD', lr=0.01, momentum=0.9, weight_decay=1.0))

# SPDGuardHook stops the run before the first iteration if the built
# optimizer wrapper does not apply SPD (e.g. an override replaced the
# optimizer); SPDStatsHook logs the selection rate, mean r and the
# deviation from the anchors.
custom_hooks = [
    dict(type='SPDGuardHook'),
    dict(type='SPDStatsHook', interval=50),
]
