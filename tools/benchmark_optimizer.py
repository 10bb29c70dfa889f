"""Time SPD optimizers on the Swin-T UperNet (59 classes) parameter set.

Builds the model of a Swin-T UperNet config (no weights needed; SyncBN
becomes BN), fills every gradient with fixed random values, and prints, in
one run and as ratios to ``torch.optim.AdamW(foreach=True)``:

- step time (median and minimum over ``--steps`` steps after warm-up,
  the optimizers taking turns step by step) of AdamSPD
  (multi-tensor and per-tensor), SPDOptimWrapper(AdamW), a per-tensor
  re-implementation of the authors' algorithm, and AdamW foreach / fused;
- optimizer state bytes per parameter byte;
- operators dispatched per step, counted with ``TorchDispatchMode`` for the
  whole parameter set and for a subset of it, to show how the count scales
  with the number of tensors. View ops (no kernel) are counted apart.

Parameter groups come from the config's ``paramwise_cfg`` through
MMEngine's optimizer-wrapper constructor, as in training (one group per
parameter), unless ``--single-group`` is given.

Example:
    python tools/benchmark_optimizer.py --steps 10
"""
import argparse
import copy
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(REPO))
DEFAULT_CONFIG = (REPO / 'configs' / 'swin' /
                  'upernet_swin-t_adamw_8xb2-80k_pascal-context-59-480x480.py')
LR, LAM = 6e-5, 0.5


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', default=str(DEFAULT_CONFIG),
                        help='Swin-T UperNet config whose model is built')
    parser.add_argument('--steps', type=int, default=10,
                        help='timed steps per optimizer (median reported)')
    parser.add_argument('--warmup', type=int, default=2,
                        help='untimed steps before timing')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch threads (default: torch default)')
    parser.add_argument('--single-group', action='store_true',
                        help='one param group instead of paramwise_cfg')
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup < 0:
        parser.error(f'--steps must be >= 1 and --warmup >= 0, got '
                     f'{args.steps} and {args.warmup}')
    if args.threads is not None and args.threads < 1:
        parser.error(f'--threads must be >= 1, got {args.threads}')
    return args


def _bn_instead_of_syncbn(cfg):
    if isinstance(cfg, dict):
        if cfg.get('type') == 'SyncBN':
            cfg['type'] = 'BN'
        for value in cfg.values():
            _bn_instead_of_syncbn(value)
    elif isinstance(cfg, (list, tuple)):
        for value in cfg:
            _bn_instead_of_syncbn(value)


def build_model(config):
    """The config's segmentor with random weights, SyncBN replaced by BN."""
    try:
        import mmcv.ops  # noqa: F401
    except ImportError as exc:
        sys.exit(f'Building the Swin-T UperNet model needs mmcv with its '
                 f'compiled ops ({exc}); install mmcv 2.1.0 first.')
    from mmengine.config import Config
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    if not Path(config).is_file():
        sys.exit(f'Config not found: {config}')
    register_all_modules()
    cfg = Config.fromfile(config)
    model_cfg = copy.deepcopy(cfg.model.to_dict())
    _bn_instead_of_syncbn(model_cfg)
    model_cfg['backbone']['init_cfg'] = None  # no weights needed
    model_cfg['pretrained'] = None
    model = MODELS.build(model_cfg)
    paramwise = cfg.optim_wrapper.get('paramwise_cfg')
    return model, None if paramwise is None else paramwise.to_dict()


def fill_grads(model, seed=0):
    gen = torch.Generator().manual_seed(seed)
    for param in model.parameters():
        param.grad = torch.randn(param.shape, generator=gen) * 1e-3


def make_optimizers(paramwise):
    """name -> function(model) returning an object with a ``step()``."""
    from mmengine.optim import build_optim_wrapper

    from mmspd.optim import AdamSPD  # noqa: F401 (registers)
    from mmspd.optim.adam_spd_reference import ReferenceAdamSPD

    def wrapper(optim_cfg, wrapper_type='OptimWrapper'):
        def build(model):
            cfg = {'type': wrapper_type, 'optimizer': optim_cfg}
            if paramwise is not None:
                cfg['paramwise_cfg'] = copy.deepcopy(paramwise)
            return build_optim_wrapper(model, cfg)
        return build

    def authors(model):
        params = [p for p in model.parameters() if p.requires_grad]
        return ReferenceAdamSPD(
            [{'params': params, 'pre': [p.detach().clone() for p in params]}],
            lr=LR, weight_decay=LAM)

    def cfg(type_, **kwargs):
        return {'type': type_, 'lr': LR, **kwargs}

    return {
        'AdamW foreach':
        wrapper(cfg('AdamW', weight_decay=0.01, foreach=True)),
        'AdamW fused':
        wrapper(cfg('AdamW', weight_decay=0.01, fused=True)),
        'AdamSPD multi-tensor':
        wrapper(cfg('AdamSPD', weight_decay=LAM)),
        'AdamSPD per-tensor':
        wrapper(cfg('AdamSPD', weight_decay=LAM, foreach=False)),
        'SPDOptimWrapper(AdamW)':
        wrapper(cfg('AdamW', weight_decay=LAM, foreach=True),
                'SPDOptimWrapper'),
        'authors (per-tensor)':
        authors,
    }


def optimizer_of(obj):
    return getattr(obj, 'optimizer', obj)


def state_bytes(optimizer):
    """Bytes of per-parameter optimizer tensors, anchors in groups too."""
    tensors = [
        value for state in optimizer.state.values()
        for value in state.values() if torch.is_tensor(value)
    ]
    for group in optimizer.param_groups:
        tensors.extend(group.get('pre') or [])  # the authors' anchors
    return sum(t.numel() * t.element_size() for t in tensors if t.dim() > 0)


class OpCounter(TorchDispatchMode):
    """Count dispatched operators, views apart."""

    def __init__(self):
        super().__init__()
        self.ops = 0
        self.views = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func._schema.is_mutable or not func.is_view:
            self.ops += 1
        else:
            self.views += 1
        return func(*args, **(kwargs or {}))


def copy_model(model, keep=None):
    """A copy sharing ``model``'s gradients, for the first ``keep`` tensors
    only (all by default)."""
    copied = copy.deepcopy(model)
    for i, (param, source) in enumerate(
            zip(copied.parameters(), model.parameters())):
        param.grad = source.grad if keep is None or i < keep else None
    return copied


def count_ops(build, model, keep):
    """Ops of one steady-state step over the first ``keep`` tensors."""
    model = copy_model(model, keep)
    optim = build(model)
    optim.step()  # state initialisation is not a steady-state step
    counter = OpCounter()
    with counter:
        optim.step()
    return counter.ops, counter.views


def synthetic_model(num_tensors, total=1 << 20):
    """``num_tensors`` parameters of ``total`` elements in all, with grads."""
    module = torch.nn.Module()
    module.weights = torch.nn.ParameterList(
        torch.nn.Parameter(torch.randn(total // num_tensors) * 0.02)
        for _ in range(num_tensors))
    fill_grads(module)
    return module


def time_steps(optimizers, model, steps, warmup):
    """Median and minimum step time of each optimizer, and state bytes per
    parameter byte. Steps are interleaved (one step of each optimizer in
    turn) so that a change of the machine's load hits all of them alike."""
    param_bytes = sum(p.numel() * p.element_size()
                      for p in model.parameters())
    built = {name: build(copy_model(model))
             for name, build in optimizers.items()}
    times = {name: [] for name in optimizers}
    for round_ in range(warmup + steps):
        for name, optim in built.items():
            start = time.perf_counter()
            optim.step()
            if round_ >= warmup:
                times[name].append(time.perf_counter() - start)
    return {
        name: (statistics.median(times[name]), min(times[name]),
               state_bytes(optimizer_of(optim)) / param_bytes)
        for name, optim in built.items()
    }


def main(argv=None):
    args = parse_args(argv)
    warnings.filterwarnings('ignore', category=UserWarning, module='mmseg')
    from mmengine.logging import MMLogger
    # The optimizer constructor logs every parameter's settings.
    MMLogger.get_current_instance().setLevel('WARNING')
    if args.threads:
        torch.set_num_threads(args.threads)
    model, paramwise = build_model(args.config)
    if args.single_group:
        paramwise = None
    fill_grads(model)
    params = list(model.parameters())
    numel = sum(p.numel() for p in params)
    print(f'config: {args.config}')
    print(f'parameters: {len(params)} tensors, {numel / 1e6:.1f} M '
          f'elements; groups: '
          f'{"one" if paramwise is None else "paramwise_cfg"}; '
          f'torch {torch.__version__}, {torch.get_num_threads()} threads')
    optimizers = make_optimizers(paramwise)

    results = time_steps(optimizers, model, args.steps, args.warmup)
    base = results['AdamW foreach'][0]
    subset = len(params) // 4
    print(f'\n{"optimizer":<24} {"median":>8} {"min":>8} {"median vs":>10} '
          f'{"state/param":>12} {"ops/step":>9} {"ops/step":>9}')
    print(f'{"":<24} {"ms":>8} {"ms":>8} {"AdamW fe.":>10} {"bytes":>12} '
          f'{f"{len(params)} t":>9} {f"{subset} t":>9}')
    for name, (median, fastest, state_ratio) in results.items():
        ops_all, views_all = count_ops(optimizers[name], model, len(params))
        ops_sub, views_sub = count_ops(optimizers[name], model, subset)
        print(f'{name:<24} {median * 1e3:>8.1f} {fastest * 1e3:>8.1f} '
              f'{median / base:>9.2f}x {state_ratio:>12.2f} {ops_all:>9d} '
              f'{ops_sub:>9d}   (+{views_all} / +{views_sub} views)')
    print('\nops/step: operators dispatched in one steady-state step over '
          'all tensors\nand over the first quarter of them; views (no '
          'kernel) in brackets.')

    # Same number of elements, different numbers of tensors, one group.
    counts = (64, 1024)
    plain = make_optimizers(None)
    print(f'\n{"ops/step, 1 M elements in":<32}' +
          ''.join(f'{f"{n} tensors":>14}' for n in counts))
    for name, build in plain.items():
        cells = []
        for num in counts:
            model = synthetic_model(num)
            ops, _ = count_ops(build, model, num)
            cells.append(f'{ops:>14d}')
        print(f'{name:<32}' + ''.join(cells))


if __name__ == '__main__':
    main()
