# Runtime settings shared by every mmspd config (mmseg 1.x defaults plus
# the import that registers mmspd's optimizers, wrappers, hooks and
# transforms).
default_scope = 'mmseg'
custom_imports = dict(imports=['mmspd'], allow_failed_imports=False)
env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # tools/train.py switches to gloo itself when no CUDA device exists.
    dist_cfg=dict(backend='nccl'),
)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(
    type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False

tta_model = dict(type='SegTTAModel')
