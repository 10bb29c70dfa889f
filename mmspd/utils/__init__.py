from .compat import (
    allow_mmengine_checkpoints,
    import_imagecorruptions,
)
from .launch import (
    AMP_WRAPPERS,
    LAUNCHERS,
    PREPARE_HINTS,
    check_checkpoint,
    check_data_paths,
    check_pretrained_checkpoints,
    check_spd_config,
    check_spd_optim_wrapper,
    config_requests_spd,
    enable_amp,
    init_cpu_process_group,
    is_spd_optim_wrapper,
    replace_norm_type,
    setup_runtime,
)

__all__ = [
    'AMP_WRAPPERS',
    'LAUNCHERS',
    'PREPARE_HINTS',
    'allow_mmengine_checkpoints',
    'check_checkpoint',
    'check_data_paths',
    'check_pretrained_checkpoints',
    'check_spd_config',
    'check_spd_optim_wrapper',
    'config_requests_spd',
    'enable_amp',
    'import_imagecorruptions',
    'init_cpu_process_group',
    'is_spd_optim_wrapper',
    'replace_norm_type',
    'setup_runtime',
]
