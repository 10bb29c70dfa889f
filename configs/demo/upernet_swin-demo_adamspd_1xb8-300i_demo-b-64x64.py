# Fine-tuning the domain-A demo model on domain B with AdamSPD (Adam plus
# Selective Projection Decay towards the weights fine-tuning starts from).
# Same data, schedule and learning rate as the AdamW baseline it inherits
# from; only the optimizer differs.
#
# The anchors are copied at the first optimizer step, i.e. after
# ``load_from`` has loaded the domain-A model, so SPD pulls towards the
# pre-trained weights, not towards the random initialisation.
#
# lambda (``weight_decay``) = 1.0 is our choice, the same as in the Swin-T
# PASCAL-Context AdamSPD config, and not tuned on this data: SPD shrinks a
# selected layer's deviation from its anchor by (1 - lambda * r), r in
# [0, 1], and lambda = 1 is the largest value that never pulls a layer past
# its anchor. As in the Swin-T recipe, norms and position-bias tables get
# no decay (``decay_mult=0`` turns SPD off for them).
_base_ = './upernet_swin-demo_adamw_1xb8-300i_demo-b-64x64.py'

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='AdamSPD', lr=5e-4, betas=(0.9, 0.999), weight_decay=1.0),
    paramwise_cfg=dict(
        custom_keys={
            'absolute_pos_embed': dict(decay_mult=0.),
            'relative_position_bias_table': dict(decay_mult=0.),
            'norm': dict(decay_mult=0.)
        }))

# Selection rate, mean r and deviation from the anchors in the training log.
custom_hooks = [dict(type='SPDStatsHook', interval=50)]
