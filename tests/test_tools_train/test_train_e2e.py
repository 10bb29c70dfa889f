"""End-to-end runs of mmspd's tools/train.py (mmseg's) on tiny data.

Each run is a separate process, as a user would start it, training the tiny
Swin-UperNet of the demo with AdamSPD for a few iterations on the CPU.
``rank_state_dump.RankStateDumpHook`` saves the weights, anchors and
optimizer state when training ends. The runs that load a checkpoint also
use a config without ``SafeLoadHook``, as a config of mmseg's model zoo is:
mmspd's tools add the hook (torch >= 2.6 refuses MMEngine's checkpoints
without it).
"""
from __future__ import annotations

import glob
import json
import os.path as osp

import pytest
import torch


def load(path) -> dict:
    # Files written by these tests; the full unpickler is safe here.
    return torch.load(path, map_location='cpu', weights_only=False)


def assert_same_tensors(a: dict, b: dict, what: str) -> None:
    assert a.keys() == b.keys(), what
    for name, value in a.items():
        assert torch.equal(value, b[name]), f'{what}: {name} differs'


def assert_same_optimizer_state(a: dict, b: dict) -> None:
    assert a['state'].keys() == b['state'].keys()
    for index, state in a['state'].items():
        other = b['state'][index]
        assert state.keys() == other.keys(), index
        for key, value in state.items():
            if torch.is_tensor(value):
                assert torch.equal(value, other[key]), (index, key)
            else:
                assert value == other[key], (index, key)
    lrs = [group['lr'] for group in a['param_groups']]
    assert lrs == [group['lr'] for group in b['param_groups']]


@pytest.fixture(scope='module')
def straight_run(mmcv_ops, tools, demo_root, tmp_path_factory) -> str:
    """Four iterations without interruption (checkpoints at 2 and 4)."""
    work_dir = str(tmp_path_factory.mktemp('straight'))
    tools.run_tool(tools.train_cmd(work_dir, demo_root))
    return work_dir


def test_resume_continues_exactly_as_an_uninterrupted_run(
        straight_run, tools, demo_root, tmp_path):
    work_dir = str(tmp_path / 'split')
    tools.run_tool(
        tools.train_cmd(work_dir, demo_root, 'train_cfg.max_iters=2'))
    tools.run_tool(tools.train_cmd(work_dir, demo_root) + ['--resume'])

    resumed = load(osp.join(work_dir, 'rank0_state.pth'))
    # The second process ran only the last two iterations.
    assert resumed['iters_run'] == 2
    straight = load(osp.join(straight_run, 'rank0_state.pth'))
    assert straight['iters_run'] == 4
    assert_same_tensors(straight['params'], resumed['params'], 'weights')
    assert straight['anchors'], 'AdamSPD kept no anchors'
    assert_same_tensors(straight['anchors'], resumed['anchors'], 'anchors')
    assert_same_optimizer_state(straight['optimizer'], resumed['optimizer'])

    a = load(osp.join(straight_run, 'iter_4.pth'))
    b = load(osp.join(work_dir, 'iter_4.pth'))
    assert_same_tensors(a['state_dict'], b['state_dict'], 'checkpoint')
    assert_same_optimizer_state(a['optimizer'], b['optimizer'])


@pytest.mark.parametrize('zoo_style', [False, True],
                         ids=['tiny', 'zoo_style'])
def test_load_from_anchors_are_the_loaded_weights(zoo_style, straight_run,
                                                  tools, demo_root,
                                                  tmp_path):
    source = osp.join(straight_run, 'iter_2.pth')
    work_dir = str(tmp_path / 'finetune')
    config = tools.zoo_style_config if zoo_style else tools.tiny_config
    tools.run_tool(
        tools.train_cmd(work_dir, demo_root, 'train_cfg.max_iters=1',
                        f'load_from={source}', config=config))

    anchors = load(osp.join(work_dir, 'rank0_state.pth'))['anchors']
    loaded = load(source)['state_dict']
    # The same config and seed give the straight run's random init, which
    # its anchors hold.
    random_init = load(osp.join(straight_run, 'rank0_state.pth'))['anchors']
    assert anchors, 'AdamSPD kept no anchors'
    assert anchors.keys() == random_init.keys()
    for name, anchor in anchors.items():
        assert torch.equal(anchor, loaded[name]), name
    assert sum(not torch.equal(anchors[name], random_init[name])
               for name in anchors) > len(anchors) // 2


def test_test_tool_loads_a_checkpoint_for_a_config_without_the_hook(
        straight_run, tools, demo_root, tmp_path):
    checkpoint = osp.join(straight_run, 'iter_4.pth')
    work_dir = str(tmp_path / 'test')
    log = tools.run_tool(
        tools.tool_cmd('tools/test.py',
                       [tools.zoo_style_config, checkpoint], work_dir,
                       demo_root))
    assert f'Load checkpoint from {checkpoint}' in log
    (metrics_file, ) = glob.glob(osp.join(work_dir, '*', '*.json'))
    with open(metrics_file) as f:
        assert 0.0 <= json.load(f)['mIoU'] <= 100.0
