"""The demo configs build their model, data and optimizer, and train."""
import glob
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS, MODELS

import mmspd  # noqa: F401  registers AdamSPD, AdamL2SP
from demo import stages
from demo.data import DEMO_CLASSES

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(glob.glob(osp.join(REPO, 'demo', 'configs', '*.py')))
TARGET = {
    optimizer: path
    for path in CONFIGS if 'demo-target' in path
    for optimizer in ('adamw', 'adaml2sp', 'adamspd')
    if f'_{optimizer}_' in osp.basename(path)
}


def _load(path, data_root):
    cfg = Config.fromfile(path)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = data_root
    init_default_scope(cfg.default_scope)
    return cfg


def test_one_pretraining_and_three_finetuning_configs():
    names = [osp.basename(p) for p in CONFIGS]
    assert len(names) == 4
    assert sum('demo-broad' in n for n in names) == 1
    assert sorted(TARGET) == ['adaml2sp', 'adamspd', 'adamw']


def test_the_demo_uses_these_configs():
    used = [stages.PRETRAIN_CONFIG] + [m.config for m in stages.METHODS]
    assert sorted(used) == CONFIGS


def test_pascal_context_class_ids_match_mmseg(demo_roots):
    cfg = _load(CONFIGS[0], demo_roots['target'])
    classes = DATASETS.get(cfg.train_dataloader.dataset.type).METAINFO[
        'classes']
    for name, class_id in DEMO_CLASSES.items():
        # The files use PASCAL-Context ids: 0 background, class k at k + 1.
        assert classes[class_id - 1] == name


@pytest.mark.parametrize('config', CONFIGS, ids=osp.basename)
def test_config_trains_one_step_on_demo_data(config, demo_roots):
    domain = 'broad' if 'demo-broad' in config else 'target'
    cfg = _load(config, demo_roots[domain])
    assert cfg.custom_imports == {
        'imports': ['mmspd'],
        'allow_failed_imports': False
    }

    train_set = DATASETS.build(cfg.train_dataloader.dataset)
    val_set = DATASETS.build(cfg.val_dataloader.dataset)
    assert (len(train_set), len(val_set)) == (4, 2)
    sample = val_set[0]
    assert tuple(sample['inputs'].shape) == (3, 64, 64)
    labels = set(np.unique(sample['data_samples'].gt_sem_seg.data).tolist())
    # reduce_zero_label: ids shift down by one, background becomes 255.
    assert labels <= {i - 1 for i in DEMO_CLASSES.values()} | {255}

    model = MODELS.build(cfg.model)
    assert model.decode_head.num_classes == 59
    assert all(type(m).__name__ != 'SyncBatchNorm' for m in model.modules())
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    assert type(optim_wrapper.optimizer).__name__ == (
        cfg.optim_wrapper.optimizer.type)

    samples = [train_set[i] for i in range(2)]  # random crops: fetch once
    batch = model.data_preprocessor(
        {
            'inputs': [s['inputs'] for s in samples],
            'data_samples': [s['data_samples'] for s in samples]
        },
        training=True)
    before = [p.detach().clone() for p in model.parameters()]
    losses = model(**batch, mode='loss')
    loss = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(loss)
    optim_wrapper.update_params(loss)
    changed = [not torch.equal(b, p) for b, p in zip(before,
                                                     model.parameters())]
    assert sum(changed) > len(changed) // 2


def test_finetune_configs_differ_only_in_optimizer():
    adamw = Config.fromfile(TARGET['adamw'])
    assert adamw.optim_wrapper.optimizer.type == 'AdamW'
    for optimizer, type_name in (('adaml2sp', 'AdamL2SP'),
                                 ('adamspd', 'AdamSPD')):
        other = Config.fromfile(TARGET[optimizer])
        assert other.optim_wrapper.optimizer.type == type_name
        for key in ('model', 'train_dataloader', 'val_dataloader',
                    'test_dataloader', 'param_scheduler', 'train_cfg',
                    'load_from', 'randomness'):
            assert adamw[key] == other[key], (optimizer, key)
        assert other.optim_wrapper.paramwise_cfg == (
            adamw.optim_wrapper.paramwise_cfg)
        assert other.optim_wrapper.type == adamw.optim_wrapper.type
        for key in ('lr', 'betas'):
            assert (other.optim_wrapper.optimizer[key] ==
                    adamw.optim_wrapper.optimizer[key]), (optimizer, key)
