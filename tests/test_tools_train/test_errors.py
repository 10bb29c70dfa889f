"""Clear errors from tools/train.py, tools/test.py and mmspd.utils.launch.

Each test gives the tools what a user might: a wrong path, a broken file,
a flag the machine cannot honour, a config that cannot do what it says;
and checks that the error names the problem and that nothing was written.
"""
from __future__ import annotations

import os
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmspd.utils import launch

SWIN_DIR = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs',
    'swin')
ADAMW = osp.join(SWIN_DIR,
                 'upernet_swin-t_adamw_8xb2-80k_pascal-context-59-480x480.py')
ADAMSPD = osp.join(
    SWIN_DIR, 'upernet_swin-t_adamspd_8xb2-80k_pascal-context-59-480x480.py')
SGD_SPD = osp.join(
    SWIN_DIR, 'upernet_swin-t_sgd-spd_8xb2-80k_pascal-context-59-480x480.py')


def data_options(root: str) -> list[str]:
    return [
        f'{split}_dataloader.dataset.data_root={root}'
        for split in ('train', 'val', 'test')
    ]


def torch_checkpoint(path) -> str:
    torch.save({'state_dict': {'w': torch.zeros(1)}}, str(path))
    return str(path)


# --------------------------------------------------------------- train.py


def test_missing_data_root_names_path_and_prepare_script(tools, tmp_path):
    train = tools.load_tool('train')
    missing = str(tmp_path / 'no_such_root')
    work_dir = tmp_path / 'work'
    with pytest.raises(FileNotFoundError) as info:
        train.main([
            ADAMSPD, '--work-dir',
            str(work_dir), '--cfg-options', *data_options(missing)
        ])
    message = str(info.value)
    assert missing in message
    assert 'tools/prepare_pascal_context.py' in message
    assert not work_dir.exists()


def test_missing_split_file_is_named(tools, tmp_path):
    root = tmp_path / 'VOC2010'
    for sub in ('JPEGImages', 'SegmentationClassContext'):
        (root / sub).mkdir(parents=True)
    train = tools.load_tool('train')
    with pytest.raises(FileNotFoundError) as info:
        train.main([
            ADAMSPD, '--work-dir',
            str(tmp_path / 'work'), '--cfg-options',
            *data_options(str(root))
        ])
    message = str(info.value)
    assert osp.join(str(root), 'ImageSets/SegmentationContext/train.txt') \
        in message
    assert 'split file' in message
    assert 'tools/prepare_pascal_context.py' in message


def test_missing_pretrained_checkpoint_names_config_key(
        tools, demo_root, tmp_path):
    missing = str(tmp_path / 'pretrain' / 'swin_tiny.pth')
    train = tools.load_tool('train')
    with pytest.raises(FileNotFoundError) as info:
        train.main([
            ADAMSPD, '--work-dir',
            str(tmp_path / 'work'), '--cfg-options', *data_options(demo_root),
            f'model.backbone.init_cfg.checkpoint={missing}'
        ])
    message = str(info.value)
    assert missing in message
    assert 'model.backbone.init_cfg.checkpoint' in message
    assert not (tmp_path / 'work').exists()


def test_unreadable_load_from_is_refused(tools, demo_root, tmp_path):
    broken = tmp_path / 'broken.pth'
    broken.write_bytes(b'not a checkpoint at all')
    train = tools.load_tool('train')
    with pytest.raises(ValueError, match='not a PyTorch checkpoint') as info:
        train.main([
            ADAMSPD, '--work-dir',
            str(tmp_path / 'work'), '--cfg-options', *data_options(demo_root),
            'model.backbone.init_cfg=None', f'load_from={broken}'
        ])
    assert str(broken) in str(info.value)
    assert 'load_from' in str(info.value)


@pytest.mark.skipif(
    torch.cuda.is_available(), reason='checks the error without a GPU')
def test_amp_without_gpu(tools, demo_root, tmp_path):
    train = tools.load_tool('train')
    with pytest.raises(RuntimeError, match='--amp needs a CUDA GPU'):
        train.main([
            ADAMSPD, '--amp', '--work-dir',
            str(tmp_path / 'work'), '--cfg-options', *data_options(demo_root)
        ])
    assert not (tmp_path / 'work').exists()


@pytest.mark.parametrize(
    'config, options, reason',
    [(ADAMSPD, ['optim_wrapper.optimizer.type=AdamW'], 'spd_required=True'),
     (SGD_SPD, ['optim_wrapper.type=OptimWrapper'], 'spd_required=True'),
     # mmseg 0.x style: MMEngine ignores a top-level optimizer.
     (ADAMW, ['optimizer.type=AdamSPD'], "optimizer.type (top level)")])
def test_spd_config_building_plain_optimizer_is_refused(
        config, options, reason, tools, demo_root, tmp_path):
    train = tools.load_tool('train')
    with pytest.raises(RuntimeError, match='asks for SPD') as info:
        train.main([
            config, '--work-dir',
            str(tmp_path / 'work'), '--cfg-options', *data_options(demo_root),
            *options
        ])
    assert reason in str(info.value)
    assert not (tmp_path / 'work').exists()


def test_built_plain_optimizer_is_refused_when_spd_is_required():
    from mmengine.optim import build_optim_wrapper
    model = torch.nn.Linear(2, 2)
    cfg = Config({'spd_required': True})
    plain = build_optim_wrapper(
        model, {'optimizer': {'type': 'AdamW', 'lr': 1e-3}})
    with pytest.raises(RuntimeError, match='AdamW'):
        launch.check_spd_optim_wrapper(cfg, plain)
    spd = build_optim_wrapper(
        model, {'optimizer': {'type': 'AdamSPD', 'lr': 1e-3}})
    launch.check_spd_optim_wrapper(cfg, spd)
    sgd = {'type': 'SGD', 'lr': 1e-3, 'weight_decay': 1.0}
    wrapped = build_optim_wrapper(model, {
        'type': 'SPDOptimWrapper',
        'optimizer': sgd
    })
    launch.check_spd_optim_wrapper(cfg, wrapped)
    # Nothing asked for SPD: a plain optimizer is fine.
    launch.check_spd_optim_wrapper(Config({}), plain)


# ---------------------------------------------------------------- test.py


@pytest.mark.parametrize('kind', ['missing', 'garbage', 'directory'])
def test_test_py_refuses_bad_checkpoint(kind, tools, demo_root, tmp_path):
    path = tmp_path / 'model.pth'
    if kind == 'garbage':
        path.write_bytes(b'\x00' * 64)
    elif kind == 'directory':
        path.mkdir()
    error = FileNotFoundError if kind == 'missing' else ValueError
    test = tools.load_tool('test')
    with pytest.raises(error) as info:
        test.main([
            ADAMSPD,
            str(path), '--work-dir',
            str(tmp_path / 'work'), '--cfg-options', *data_options(demo_root)
        ])
    assert str(path) in str(info.value)
    assert not (tmp_path / 'work').exists()


def test_test_py_missing_test_data(tools, tmp_path):
    test = tools.load_tool('test')
    missing = str(tmp_path / 'nothing_here')
    with pytest.raises(FileNotFoundError, match='test data not found') as info:
        test.main([
            ADAMSPD,
            torch_checkpoint(tmp_path / 'ok.pth'), '--work-dir',
            str(tmp_path / 'work'), '--cfg-options', *data_options(missing)
        ])
    assert missing in str(info.value)


# ------------------------------------------------------- launch helpers


def test_check_checkpoint_accepts_torch_files(tmp_path):
    path = torch_checkpoint(tmp_path / 'ok.pth')
    assert launch.check_checkpoint(path) == path
    legacy = tmp_path / 'legacy.pth'
    torch.save({'w': torch.ones(1)}, str(legacy),
               _use_new_zipfile_serialization=False)
    launch.check_checkpoint(str(legacy))
    # URLs are left to MMEngine's loaders.
    launch.check_checkpoint('https://example.com/model.pth')


@pytest.mark.skipif(
    hasattr(os, 'geteuid') and os.geteuid() == 0,
    reason='root reads files whatever their permissions')
def test_check_checkpoint_unreadable(tmp_path):
    path = torch_checkpoint(tmp_path / 'secret.pth')
    os.chmod(path, 0)
    with pytest.raises(PermissionError, match='not readable'):
        launch.check_checkpoint(path)


def test_enable_amp_converts_wrappers(monkeypatch):
    # A pretend GPU: only the config conversion runs. The logger the
    # warning goes through asks CUDA_VISIBLE_DEVICES for the device id.
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '0')
    monkeypatch.setenv('LOCAL_RANK', '0')
    for before, after in [('OptimWrapper', 'AmpOptimWrapper'),
                          ('SPDOptimWrapper', 'AmpSPDOptimWrapper')]:
        cfg = Config({'optim_wrapper': {'type': before, 'optimizer': {}}})
        launch.enable_amp(cfg)
        assert cfg.optim_wrapper.type == after
        assert cfg.optim_wrapper.loss_scale == 'dynamic'
    amp = {'type': 'AmpOptimWrapper', 'loss_scale': 512., 'optimizer': {}}
    cfg = Config({'optim_wrapper': amp})
    launch.enable_amp(cfg)
    assert cfg.optim_wrapper.loss_scale == 512.
    cfg = Config({'optim_wrapper': {'type': 'ApexOptimWrapper'}})
    with pytest.raises(ValueError, match='ApexOptimWrapper'):
        launch.enable_amp(cfg)


def test_replace_norm_type_reaches_nested_configs():
    cfg = Config.fromfile(ADAMSPD)
    assert launch.replace_norm_type(cfg.model) == 2  # decode + aux heads
    assert cfg.model.decode_head.norm_cfg.type == 'BN'
    assert cfg.model.auxiliary_head.norm_cfg.type == 'BN'
    assert cfg.model.backbone.norm_cfg.type == 'LN'


def test_setup_runtime_without_launcher_environment(monkeypatch):
    if torch.cuda.is_available():
        pytest.skip('MMEngine sets up CUDA runs itself')
    for name in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delenv(name, raising=False)
    cfg = Config.fromfile(ADAMSPD)
    with pytest.raises(RuntimeError, match='RANK, WORLD_SIZE') as info:
        launch.setup_runtime(cfg, 'pytorch')
    assert 'tools/dist_train.sh' in str(info.value)
    with pytest.raises(ValueError, match="'torchrun'"):
        launch.setup_runtime(cfg, 'torchrun')


def test_setup_runtime_cpu_process_group(monkeypatch):
    if torch.cuda.is_available():
        pytest.skip('MMEngine sets up CUDA runs itself')
    import socket

    import torch.distributed as dist
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv('RANK', '0')
    monkeypatch.setenv('WORLD_SIZE', '1')
    monkeypatch.setenv('MASTER_ADDR', '127.0.0.1')
    monkeypatch.setenv('MASTER_PORT', str(port))
    cfg = Config.fromfile(ADAMSPD)
    try:
        launch.setup_runtime(cfg, 'pytorch')
        assert dist.is_initialized()
        assert dist.get_backend() == 'gloo'
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    assert cfg.launcher == 'pytorch'
    assert cfg.model_wrapper_cfg.type == 'MMDistributedDataParallel'
    assert cfg.model_wrapper_cfg.device_ids is None
    assert cfg.model.decode_head.norm_cfg.type == 'BN'
