"""Test-only hook: each rank saves its weights, anchors and optimizer state.

Imported by the tiny test config through ``custom_imports`` (the tests put
this folder on ``PYTHONPATH``), so that a distributed run can be checked
rank by rank after it ends.
"""
from __future__ import annotations

import os.path as osp

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


def named_anchors(model: torch.nn.Module, optimizer) -> dict:
    """``{parameter name: anchor}`` for the parameters that have one."""
    from mmspd.optim import get_anchors
    anchors = get_anchors(optimizer)
    return {
        name: anchors[param].detach().cpu().clone()
        for name, param in model.named_parameters() if param in anchors
    }


@HOOKS.register_module()
class RankStateDumpHook(Hook):
    """Save ``rank{N}_state.pth`` in the work dir when training ends.

    It holds ``params`` (name -> tensor), ``anchors`` (name -> tensor),
    ``optimizer`` (the optimizer wrapper's state dict) and ``iters_run``
    (iterations this process trained, which tells a resumed run from a
    restarted one).
    """

    priority = 'LOWEST'

    def __init__(self) -> None:
        self.iters_run = 0

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        self.iters_run += 1

    def after_train(self, runner) -> None:
        model = runner.model
        if is_model_wrapper(model):
            model = model.module
        optimizer = runner.optim_wrapper.optimizer
        state = {
            'params': {
                name: param.detach().cpu().clone()
                for name, param in model.named_parameters()
            },
            'anchors': named_anchors(model, optimizer),
            'optimizer': runner.optim_wrapper.state_dict(),
            'iters_run': self.iters_run,
        }
        torch.save(state, osp.join(runner.work_dir,
                                   f'rank{get_rank()}_state.pth'))
