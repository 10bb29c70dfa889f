"""Time SPD optimizers on the Swin-T UperNet parameter set, CPU or CUDA.

Builds the model of a Swin-T UperNet config (no weights needed; SyncBN
becomes BN), fills every gradient with fixed random values, and prints, in
one run, for one param group and for the config's ``paramwise_cfg`` layout
(one group per parameter, as MMEngine builds it in training):

- step time of each optimizer, median and minimum over ``--steps`` steps
  after warm-up, the optimizers taking turns step by step, as ratios to
  ``AdamW(foreach=True)`` and ``AdamW(fused=True)``;
- kernels per step, counted from the dispatched operators with CUDA's
  foreach fast-route rule (:class:`mmspd.optim.profiling.StepRecorder`), and
  on CUDA also the kernels ``torch.profiler`` saw;
- host syncs per step: on CUDA counted with
  ``torch.cuda.set_sync_debug_mode('warn')``; on CPU the operators that
  would sync on a GPU;
- operators per step whose CUDA kernels are nondeterministic on
  floating-point data (``index_add_``, ``scatter_add_``, floating
  ``cumsum``, ...; :data:`mmspd.optim.profiling.NONDETERMINISTIC_OPS`);
- optimizer state bytes per parameter byte, and on CUDA the memory a step
  allocates beyond its inputs (scratch).

Then kernels per step for 1 M elements split into 64 and 1024 tensors, in
float32 and bfloat16, in one param group and in a group per tensor (as
``paramwise_cfg`` builds them): AdamSPD's count does not grow with the
number of tensors or groups; SPD attached to a torch optimizer adds a
count that does not either, but torch's own step runs group by group.
``--kernels-only`` prints these tables alone (no model, so no mmcv needed,
and no timing).

Example:
    python tools/benchmark_optimizer.py --device cpu --threads 1 --steps 5
    python tools/benchmark_optimizer.py --device cuda --steps 50
    python tools/benchmark_optimizer.py --kernels-only
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

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
    parser.add_argument('--device', default='cpu', choices=('cpu', 'cuda'),
                        help='where the parameters live')
    parser.add_argument('--steps', type=int, default=10,
                        help='timed steps per optimizer')
    parser.add_argument('--warmup', type=int, default=3,
                        help='untimed steps before timing')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch CPU threads (default: torch default)')
    parser.add_argument('--layout', default='both',
                        choices=('one', 'paramwise', 'both'),
                        help='param groups: one group, the config\'s '
                        'paramwise_cfg, or both')
    parser.add_argument('--per-tensor', action='store_true',
                        help='also time the per-tensor reference paths '
                        '(slow)')
    parser.add_argument('--kernels-only', action='store_true',
                        help='only the kernel counts of synthetic parameter '
                        'sets (no model, no timing)')
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup < 0:
        parser.error(f'--steps must be >= 1 and --warmup >= 0, got '
                     f'{args.steps} and {args.warmup}')
    if args.threads is not None and args.threads < 1:
        parser.error(f'--threads must be >= 1, got {args.threads}')
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: no CUDA device is available')
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
        grad = torch.randn(param.shape, generator=gen) * 1e-3
        param.grad = grad.to(param.device, param.dtype)


def make_optimizers(paramwise, per_tensor):
    """name -> function(model) returning an optimizer wrapper."""
    from mmengine.optim import build_optim_wrapper

    import mmspd.optim  # noqa: F401 (registers)

    def wrapper(optimizer, spd=False):

        def build(model):
            cfg = {'type': 'OptimWrapper', 'optimizer': optimizer}
            if spd:
                cfg['constructor'] = 'SPDOptimWrapperConstructor'
            if paramwise is not None:
                cfg['paramwise_cfg'] = copy.deepcopy(paramwise)
            return build_optim_wrapper(model, cfg)

        return build

    def cfg(type_, **kwargs):
        return {'type': type_, 'lr': LR, **kwargs}

    optimizers = {
        'AdamW foreach': wrapper(cfg('AdamW', weight_decay=0.01,
                                     foreach=True)),
        'AdamW fused': wrapper(cfg('AdamW', weight_decay=0.01, fused=True)),
        'AdamSPD': wrapper(cfg('AdamSPD', weight_decay=LAM)),
        'AdamW fused + SPD': wrapper(
            cfg('AdamW', weight_decay=LAM, fused=True), spd=True),
        'AdamW foreach + SPD': wrapper(
            cfg('AdamW', weight_decay=LAM, foreach=True), spd=True),
        'SGD foreach': wrapper(cfg('SGD', momentum=0.9, weight_decay=1e-4,
                                   foreach=True)),
        'SGD foreach + SPD': wrapper(
            cfg('SGD', momentum=0.9, weight_decay=LAM, foreach=True),
            spd=True),
    }
    if per_tensor:
        optimizers['AdamSPD per-tensor'] = wrapper(
            cfg('AdamSPD', weight_decay=LAM, foreach=False))
    return optimizers


def state_bytes(optimizer):
    """Bytes of per-parameter optimizer tensors (anchors included)."""
    return sum(value.numel() * value.element_size()
               for state in optimizer.state.values()
               for value in state.values()
               if torch.is_tensor(value) and value.dim() > 0)


def copy_model(model, keep=None):
    """A copy sharing ``model``'s gradients, for the first ``keep`` tensors
    only (all by default)."""
    copied = copy.deepcopy(model)
    for i, (param, source) in enumerate(
            zip(copied.parameters(), model.parameters())):
        param.grad = source.grad if keep is None or i < keep else None
    return copied


def _sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize()


def time_steps(optimizers, model, steps, warmup, device):
    """Step times of each optimizer, steps interleaved so that a change of
    the machine's load hits all of them alike."""
    built = {name: build(copy_model(model))
             for name, build in optimizers.items()}
    times = {name: [] for name in optimizers}
    for round_ in range(warmup + steps):
        for name, optim in built.items():
            _sync(device)
            start = time.perf_counter()
            optim.step()
            _sync(device)
            if round_ >= warmup:
                times[name].append(time.perf_counter() - start)
    return built, times


def meta_twin(model):
    """A copy of ``model`` on the ``meta`` device, with gradients."""
    twin = copy.deepcopy(model).to('meta')
    for param in twin.parameters():
        param.grad = torch.empty_like(param)
    return twin


def count_kernels(build, model, device):
    """Kernels, host syncs and nondeterministic ops of one steady-state
    step, by the dispatch rule.

    On CPU the step runs on a ``meta`` twin of the model, so that reading a
    CPU step counter (host-side on a GPU too) is not taken for a sync; an
    optimizer without meta support (fused) is recorded on the CPU, marked
    with ``*``.
    """
    from mmspd.optim.profiling import StepRecorder
    where, mark = device.type, ''
    try:
        optim = build(meta_twin(model) if where == 'cpu' else copy_model(
            model))
        optim.step()  # state initialisation is not a steady-state step
        where = 'meta' if where == 'cpu' else where
    except RuntimeError:
        optim, mark = build(copy_model(model)), '*'
    with _gpu_batches(mark == '*'):
        if mark:
            optim.step()
        recorder = StepRecorder(where)
        with recorder:
            optim.step()
    return (recorder.kernels, len(recorder.syncs),
            len(recorder.nondeterministic), mark)


@contextlib.contextmanager
def _gpu_batches(enabled):
    """SPD batches as on a GPU while a step is recorded on the CPU.

    On the CPU SPD works in cache-sized batches, whose number grows with the
    model's size; the kernel counts describe the GPU plan, so a step
    recorded on the CPU (``*``) uses the GPU's batch size.
    """
    from mmspd.optim import _segments
    saved = _segments._CPU_BATCH_ELEMENTS
    if enabled:
        _segments._CPU_BATCH_ELEMENTS = _segments._BATCH_ELEMENTS
    try:
        yield
    finally:
        _segments._CPU_BATCH_ELEMENTS = saved


def cuda_counts(optim, device):
    """Syncs (sync debug mode), profiled kernels and scratch bytes of one
    step on CUDA."""
    _sync(device)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        torch.cuda.set_sync_debug_mode('warn')
        try:
            optim.step()
            _sync(device)
        finally:
            torch.cuda.set_sync_debug_mode('default')
    syncs = sum('synchroniz' in str(w.message) for w in caught)
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        optim.step()
        _sync(device)
    kernels = sum(1 for event in prof.events()
                  if event.device_type == torch.autograd.DeviceType.CUDA)
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    optim.step()
    _sync(device)
    return syncs, kernels, torch.cuda.max_memory_allocated() - before


def synthetic_model(num_tensors, device, dtype=torch.float32,
                    total=1 << 20):
    """``num_tensors`` parameters of ``total`` elements in all, with grads."""
    module = torch.nn.Module()
    module.weights = torch.nn.ParameterList(
        torch.nn.Parameter(torch.randn(total // num_tensors) * 0.02)
        for _ in range(num_tensors))
    module.to(device, dtype)
    fill_grads(module)
    return module


# A group per tensor, as any paramwise_cfg makes MMEngine build them, with
# two strengths.
SYNTHETIC_PARAMWISE = {'custom_keys': {'weights.1': {'decay_mult': 0.0}}}


def kernel_tables(device):
    """Kernels per step for 1 M elements in 64 and in 1024 tensors."""
    counts = (64, 1024)
    dtypes = (torch.float32, torch.bfloat16)
    layouts = {'one param group': None,
               'a param group per tensor': SYNTHETIC_PARAMWISE}
    for title, paramwise in layouts.items():
        print(f'\nkernels/step, 1 M elements, {title}')
        print(f'{"":<24}' + ''.join(
            f'{str(dtype).split(".")[-1]:>26}' for dtype in dtypes))
        print(f'{"optimizer":<24}' + ''.join(
            f'{f"{n} tensors":>13}' for _ in dtypes for n in counts))
        for name, build in make_optimizers(paramwise, False).items():
            cells = []
            for dtype in dtypes:
                for num in counts:
                    try:
                        kernels, _, _, mark = count_kernels(
                            build, synthetic_model(num, device, dtype),
                            device)
                        cells.append(f'{f"{kernels}{mark}":>13}')
                    except RuntimeError:  # e.g. no fused kernel for dtype
                        cells.append(f'{"n/a":>13}')
            print(f'{name:<24}' + ''.join(cells))


def report(name_width, optimizers, model, args, device):
    built, times = time_steps(optimizers, model, args.steps, args.warmup,
                              device)
    param_bytes = sum(p.numel() * p.element_size()
                      for p in model.parameters())
    med = {name: statistics.median(t) for name, t in times.items()}
    low = {name: min(t) for name, t in times.items()}
    header = (f'{"optimizer":<{name_width}} {"median":>8} {"min":>8} '
              f'{"vs AdamW":>9} {"vs AdamW":>9} {"min vs":>8} '
              f'{"state/":>7} {"kernels":>8} {"syncs":>6} {"nondet":>6}')
    sub = (f'{"":<{name_width}} {"ms":>8} {"ms":>8} {"foreach":>9} '
           f'{"fused":>9} {"fused":>8} {"param":>7} {"/step":>8} '
           f'{"/step":>6} {"/step":>6}')
    if device.type == 'cuda':
        header += f' {"syncs":>6} {"profiler":>9} {"scratch":>8}'
        sub += f' {"(debug)":>6} {"kernels":>9} {"MiB":>8}'
    print(header)
    print(sub)
    for name, optim in built.items():
        kernels, syncs, nondet, mark = count_kernels(optimizers[name], model,
                                                     device)
        line = (f'{name:<{name_width}} {med[name] * 1e3:>8.2f} '
                f'{low[name] * 1e3:>8.2f} '
                f'{med[name] / med["AdamW foreach"]:>8.2f}x '
                f'{med[name] / med["AdamW fused"]:>8.2f}x '
                f'{low[name] / low["AdamW fused"]:>7.2f}x '
                f'{state_bytes(optim.optimizer) / param_bytes:>7.2f} '
                f'{f"{kernels}{mark}":>8} {syncs:>6d} {nondet:>6d}')
        if device.type == 'cuda':
            debug_syncs, profiled, scratch = cuda_counts(optim, device)
            line += (f' {debug_syncs:>6d} {profiled:>9d} '
                     f'{scratch / 2**20:>8.1f}')
        print(line)


def main(argv=None):
    args = parse_args(argv)
    warnings.filterwarnings('ignore', category=UserWarning, module='mmseg')
    from mmengine.logging import MMLogger

    # The optimizer constructor logs every parameter's settings.
    MMLogger.get_current_instance().setLevel('WARNING')
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f'device {device}; torch {torch.__version__}')
    if args.kernels_only:
        kernel_tables(device)
        return
    model, paramwise = build_model(args.config)
    model.to(device)
    fill_grads(model)
    params = list(model.parameters())
    numel = sum(p.numel() for p in params)
    print(f'config: {args.config}')
    print(f'parameters: {len(params)} tensors, {numel / 1e6:.1f} M '
          f'elements; device {device}; torch {torch.__version__}, '
          f'{torch.get_num_threads()} CPU threads; {args.steps} timed steps '
          f'after {args.warmup}')
    layouts = {'one': None, 'paramwise': paramwise}
    chosen = ['one', 'paramwise'] if args.layout == 'both' else [args.layout]
    titles = {'one': 'one param group',
              'paramwise': "the config's paramwise_cfg (a group per "
              'parameter)'}
    for layout in chosen:
        print(f'\n== {titles[layout]} ==')
        report(22, make_optimizers(layouts[layout], args.per_tensor), model,
               args, device)
    print('\nkernels/step: dispatched operators counted with CUDA\'s foreach '
          'rule (a list op\nruns one kernel when its tensor lists match in '
          'shape/stride/dtype); syncs/step:\n'
          'operators that read device values back (on CPU counted on a meta '
          'twin of the\nmodel, standing in for a GPU; * = recorded on the '
          'CPU: no meta support);\nnondet/step: operators with '
          'nondeterministic CUDA kernels on floating data')

    kernel_tables(device)


if __name__ == '__main__':
    main()
