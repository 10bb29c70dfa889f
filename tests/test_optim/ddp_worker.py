"""Train a small DDP model on 2 gloo processes; report cross-rank spread.

Usage: python ddp_worker.py OUT_JSON STORE_FILE
"""
import gc
import json
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn


def flat(tensors):
    return torch.cat([t.detach().reshape(-1) for t in tensors])


def spread(tensor, world_size):
    gathered = [torch.empty_like(tensor) for _ in range(world_size)]
    dist.all_gather(gathered, tensor)
    return max(float((g - gathered[0]).abs().max()) for g in gathered)


def train(name, rank, world_size):
    """Train one variant; its DDP model is freed when this returns."""
    from mmspd.optim import AdamSPD, SPDOptimWrapper, get_anchors
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3))
    ddp = nn.parallel.DistributedDataParallel(model)
    if name == 'wrapper':
        optim = SPDOptimWrapper(torch.optim.AdamW(
            model.parameters(), lr=0.05, weight_decay=0.5))
        step = optim.update_params
    else:
        optimizer = AdamSPD(model.parameters(), lr=0.05, weight_decay=0.5)

        def step(loss, optimizer=optimizer):
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        optim = optimizer
    gen = torch.Generator().manual_seed(100 + rank)  # per-rank data
    selected = 0.0
    for _ in range(8):
        x = torch.randn(16, 6, generator=gen)
        y = torch.randn(16, 3, generator=gen)
        step(nn.functional.mse_loss(ddp(x), y))
        selected += float(optim.spd_statistics()['selected'])
    params = list(model.parameters())
    anchors = get_anchors(optim)
    return {
        'weights': spread(flat(params), world_size),
        'anchors': spread(flat([anchors[p] for p in params]), world_size),
        'moved': float((flat(params) - flat(
            [anchors[p] for p in params])).abs().max()),
        'selected': selected,
    }


def run(rank, world_size, out, store):
    torch.set_num_threads(1)
    # A file store: no TCP port that a concurrent job could take.
    dist.init_process_group('gloo', init_method=f'file://{store}',
                            rank=rank, world_size=world_size)
    results = {name: train(name, rank, world_size)
               for name in ('wrapper', 'adam_spd')}
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
