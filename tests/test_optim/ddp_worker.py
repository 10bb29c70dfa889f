"""Train a small DDP model on 2 gloo processes along every SPD route.

Each route is an MMEngine optimizer-wrapper config, built with
``build_optim_wrapper`` as the runner builds it; the ``hook_*`` routes
build a plain ``OptimWrapper`` and let ``SPDHook`` attach SPD, as it does
in a run (``before_run``, then the ``before_train`` check). Every route
steps with ``update_params``. Rank 0 writes, per route, the largest
cross-rank difference of the weights, anchors and SPD statistics, and its
own final weights (to compare routes).

Usage: python ddp_worker.py OUT_JSON STORE_FILE
"""
import gc
import json
import sys
from types import SimpleNamespace

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

ADAMW = dict(type='AdamW', lr=0.05, weight_decay=0.5)
SGD = dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=0.5)
CONSTRUCTOR = 'SPDOptimWrapperConstructor'
ROUTES = {
    'adam_spd': dict(optimizer=dict(ADAMW, type='AdamSPD')),
    'wrapper_adamw': dict(type='SPDOptimWrapper', optimizer=ADAMW),
    'constructor_adamw': dict(constructor=CONSTRUCTOR, optimizer=ADAMW),
    'hook_adamw': dict(optimizer=ADAMW),
    'constructor_sgd': dict(constructor=CONSTRUCTOR, optimizer=SGD),
    'hook_sgd': dict(optimizer=SGD),
}


def flat(tensors):
    return torch.cat([t.detach().reshape(-1) for t in tensors])


def spread(tensor, world_size):
    gathered = [torch.empty_like(tensor) for _ in range(world_size)]
    dist.all_gather(gathered, tensor)
    return max(float((g - gathered[0]).abs().max()) for g in gathered)


def build(route, model):
    """The optimizer wrapper of ``route``, with SPD attached."""
    from mmengine.logging import MMLogger
    from mmengine.optim import build_optim_wrapper

    from mmspd.hooks import SPDHook  # registers mmspd's modules
    optim_wrapper = build_optim_wrapper(model, ROUTES[route])
    if route.startswith('hook_'):
        # What SPDHook sees of a runner.
        runner = SimpleNamespace(optim_wrapper=optim_wrapper,
                                 logger=MMLogger.get_current_instance())
        hook = SPDHook()
        hook.before_run(runner)
        hook.before_train(runner)
    return optim_wrapper


def train(route, rank, world_size):
    """Train one route; its DDP model is freed when this returns."""
    from mmspd.optim import applies_spd, get_anchors, spd_statistics
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3))
    ddp = nn.parallel.DistributedDataParallel(model)
    optim_wrapper = build(route, model)
    assert applies_spd(optim_wrapper), route
    gen = torch.Generator().manual_seed(100 + rank)  # per-rank data
    selected = 0.0
    statistics = []
    for _ in range(8):
        x = torch.randn(16, 6, generator=gen)
        y = torch.randn(16, 3, generator=gen)
        optim_wrapper.update_params(nn.functional.mse_loss(ddp(x), y))
        stats = spd_statistics(optim_wrapper)
        selected += float(stats['selected'])
        statistics += [stats[key].reshape(1) for key in sorted(stats)]
    params = list(model.parameters())
    anchors = get_anchors(optim_wrapper)
    return {
        'weights': spread(flat(params), world_size),
        'anchors': spread(flat([anchors[p] for p in params]), world_size),
        'statistics': spread(torch.cat(statistics), world_size),
        'moved': float((flat(params) - flat(
            [anchors[p] for p in params])).abs().max()),
        'selected': selected,
        'final': flat(params).tolist(),
    }


def run(rank, world_size, out, store):
    torch.set_num_threads(1)
    # A file store: no TCP port that a concurrent job could take.
    dist.init_process_group('gloo', init_method=f'file://{store}',
                            rank=rank, world_size=world_size)
    results = {route: train(route, rank, world_size) for route in ROUTES}
    # Free every DDP reducer while the process group is still registered:
    # a gloo group whose last reference goes with a reducer after
    # destroy_process_group() can deadlock its own teardown (the destructor
    # waits on a work item that needs the interpreter lock).
    gc.collect()
    dist.barrier()
    if rank == 0:
        with open(out, 'w') as f:
            json.dump(results, f)
    dist.destroy_process_group()


if __name__ == '__main__':
    mp.spawn(run, args=(2, sys.argv[1], sys.argv[2]), nprocs=2)
