# Adam-SPD on PASCAL-Context with 60 classes ("background" counted as a
# class). It is upernet_swin-t_adamspd_8xb2-80k_pascal-context-59-480x480.py
# on the 60-class data: every hyper-parameter, lambda included, is that
# config's; see there for where each comes from and how lambda was chosen.
_base_ = './upernet_swin-t_adamw_8xb2-80k_pascal-context-480x480.py'

# The baseline's paramwise_cfg is inherited: decay_mult=0, so neither decay
# nor SPD / L2-SP, for position embeddings, bias tables and norms.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        _delete_=True,
        type='AdamSPD', lr=6e-5, betas=(0.9, 0.999), eps=1e-8,
        weight_decay=1.0, amsgrad=False))

# SPDHook leaves AdamSPD as it is and stops the run before the first
# iteration if the built optimizer does not apply SPD (e.g. an override
# replaced the optimizer with one SPD cannot run on); SPDStatsHook logs the
# selection rate, mean r and the deviation from the anchors.
custom_hooks = [
    dict(type='SPDHook'),
    dict(type='SPDStatsHook', interval=50),
]
