# mmseg's 80k-iteration schedule (mmseg::_base_/schedules/schedule_80k.py:
# validation and checkpoints every 8k iterations, its hooks) with the
# optimizer and learning-rate policy of mmseg's Swin-T UperNet recipe:
# AdamW, lr 6e-5, betas (0.9, 0.999), eps 1e-8 (torch default), weight
# decay 0.01 but none on absolute_pos_embed, relative_position_bias_table
# and norm layers; linear warm-up from 1e-6 x lr over 1500 iterations, then
# poly decay (power 1.0) to 0. Configs that change the optimizer replace
# optim_wrapper.optimizer and keep paramwise_cfg and the schedule.
_base_ = ['mmseg::_base_/schedules/schedule_80k.py']

# mmseg's schedule also sets a top-level `optimizer` (SGD) that MMEngine
# never reads; cleared so that the resolved config names only the
# optimizer that is used, optim_wrapper.optimizer.
optimizer = None

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=6e-5, betas=(0.9, 0.999), eps=1e-8,
        weight_decay=0.01),
    paramwise_cfg=dict(
        custom_keys={
            'absolute_pos_embed': dict(decay_mult=0.),
            'relative_position_bias_table': dict(decay_mult=0.),
            'norm': dict(decay_mult=0.),
        }))

warmup_iters = 1500
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-6,
        by_epoch=False,
        begin=0,
        end=warmup_iters),
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=1.0,
        begin=warmup_iters,
        end=80000,
        by_epoch=False),
]
