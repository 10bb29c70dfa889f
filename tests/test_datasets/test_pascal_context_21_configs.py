"""The Swin-T configs on the 21-class PASCAL-Context split: each trains two
iterations on a generated PASCAL_MT folder and its evaluation reports
21-class mIoU.

The configs are used as shipped except for what makes them run in seconds on
a CPU: a narrower, shallower Swin (same modules), 64x64 instead of 512x512
in the pipelines and the data preprocessor, BN instead of SyncBN, no
pre-trained checkpoint, two iterations, no worker processes.
"""
from __future__ import annotations

import glob
import math
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.hooks import Hook

pytestmark = pytest.mark.usefixtures('mmseg_ready')

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_DIR = osp.join(REPO, 'configs', 'swin')
ALGOS = ('adamw', 'adamspd', 'adaml2sp', 'bitfit', 'llrd')
CONFIGS = {
    algo: osp.join(
        CONFIG_DIR, f'upernet_swin-t_{algo}_8xb2-80k_pascal-context-21-'
        '512x512.py')
    for algo in ALGOS
}
DEPTHS = [2, 1, 1, 1]
SHRINK = {
    'model.backbone.embed_dims': 16,
    'model.backbone.depths': DEPTHS,
    'model.backbone.num_heads': [1, 1, 1, 1],
    'model.backbone.init_cfg': None,
    'model.decode_head.in_channels': [16, 32, 64, 128],
    'model.decode_head.channels': 16,
    'model.decode_head.norm_cfg.type': 'BN',
    'model.auxiliary_head.in_channels': 64,
    'model.auxiliary_head.channels': 16,
    'model.auxiliary_head.norm_cfg.type': 'BN',
    'train_cfg.max_iters': 2,
    'train_cfg.val_interval': 2,
    'default_hooks.logger.interval': 1,
    'default_hooks.checkpoint.save_last': False,
}


def test_every_algorithm_has_a_config():
    shipped = set(glob.glob(osp.join(CONFIG_DIR, '*pascal-context-21*.py')))
    assert shipped == set(CONFIGS.values())


@pytest.mark.parametrize('algo', ALGOS)
def test_protocol_settings(algo):
    from mmengine.config import Config
    cfg = Config.fromfile(CONFIGS[algo])
    assert cfg.model.decode_head.num_classes == 21
    assert cfg.model.auxiliary_head.num_classes == 21
    assert cfg.model.data_preprocessor.seg_pad_val == 255
    assert cfg.custom_imports.imports == ['mmspd']
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = cfg[loader].dataset
        assert dataset.type == 'PascalContext21Dataset'
        assert dataset.data_root == 'data/PASCAL_MT/'
        steps = [t.type for t in dataset.pipeline]
        load = dataset.pipeline[steps.index('LoadAnnotations')]
        assert not load.get('reduce_zero_label')
    # Labels are loaded after Resize: scored at the original size.
    steps = [t.type for t in cfg.val_dataloader.dataset.pipeline]
    assert steps.index('Resize') < steps.index('LoadAnnotations')
    tta = cfg.tta_pipeline[1].transforms
    assert [t.type for t in tta[2]] == ['LoadAnnotations']
    assert not tta[2][0].get('reduce_zero_label')
    assert cfg.train_dataloader.batch_size == 2
    assert cfg.train_cfg.max_iters == 80000
    if algo in ('adamspd', ):
        hooks = [h.type for h in cfg.custom_hooks]
        assert hooks[:2] == ['SPDHook', 'SPDStatsHook']
        assert cfg.optim_wrapper.type == 'OptimWrapper'


def _shrink_sizes(node, old=(512, 512), new=(64, 64)) -> int:
    """Replace every ``old`` size in a config subtree; return how many."""
    count = 0
    items = (node.items() if isinstance(node, dict) else enumerate(node)
             if isinstance(node, list) else ())
    for key, value in list(items):
        if isinstance(value, (list, tuple)) and tuple(value) == old:
            node[key] = new
            count += 1
        else:
            count += _shrink_sizes(value, old, new)
    return count


class SnapshotHook(Hook):
    """Copies the weights training starts from (after initialisation)."""

    def before_train(self, runner) -> None:
        self.weights = {
            n: p.detach().clone()
            for n, p in runner.model.named_parameters()
        }


def train_tiny(algo: str, root, work_dir, **overrides):
    """Train the config ``algo`` for two iterations (with ``overrides``
    merged into it); return the runner and the weights it started from."""
    from mmengine.config import Config
    from mmengine.runner import Runner
    cfg = Config.fromfile(CONFIGS[algo])
    cfg.merge_from_dict({**SHRINK, **overrides})
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = str(root)
        cfg[loader].num_workers = 0
        cfg[loader].persistent_workers = False
    shrunk = sum(
        _shrink_sizes(cfg[key]) for key in ('train_dataloader',
                                            'val_dataloader', 'model'))
    assert shrunk >= 4  # preprocessor, resize, crop, test resize
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = algo
    runner = Runner.from_cfg(cfg)
    snapshot = SnapshotHook()
    runner.register_hook(snapshot)
    runner.train()
    return runner, snapshot.weights


@pytest.mark.parametrize('algo', ALGOS)
def test_trains_two_iterations_and_reports_21_class_miou(
        algo, pascal_mt, pascal_data, tmp_path):
    root, _ = pascal_mt
    runner, start = train_tiny(algo, root, tmp_path)

    assert runner.iter == 2
    assert math.isfinite(
        runner.message_hub.get_scalar('train/loss').current())
    # Validation ran at the end of training, over the 21 classes.
    miou = runner.message_hub.get_scalar('val/mIoU').current()
    assert 0 <= miou <= 100
    metric = runner.val_evaluator.metrics[0]
    assert tuple(metric.dataset_meta['classes']) == pascal_data.VOC21_CLASSES

    optimizer = runner.optim_wrapper.optimizer
    expected = {'adamspd': 'AdamSPD', 'adaml2sp': 'AdamL2SP'}
    assert type(optimizer).__name__ == expected.get(algo, 'AdamW')
    named = dict(runner.model.named_parameters())
    if algo == 'adamspd':
        assert {type(h).__name__
                for h in runner.hooks} >= {'SPDHook', 'SPDStatsHook'}
    if algo == 'bitfit':
        check_bitfit(named, start)
    if algo == 'llrd':
        check_llrd(named, optimizer)


def check_bitfit(named: dict, start: dict) -> None:
    """Only backbone biases and the heads were trained; nothing else moved,
    not even by AdamW's weight decay."""
    moved = {n for n, p in named.items() if not torch.equal(p, start[n])}
    backbone = {n for n in named if n.startswith('backbone.')}
    biases = {n for n in backbone if n.endswith('.bias')}
    assert not (backbone - biases) & moved
    assert all(not named[n].requires_grad for n in backbone - biases)
    assert all(named[n].requires_grad for n in biases)
    assert biases & moved
    assert {n for n in moved if n.startswith('decode_head.')}


def check_llrd(named: dict, optimizer) -> None:
    """Each group started at 6e-5 * 0.9 ** (L + 1 - layer), L = blocks."""
    lr = {
        id(p): g['initial_lr']
        for g in optimizer.param_groups for p in g['params']
    }
    top = sum(DEPTHS) + 1

    def ratio(name):
        return lr[id(named[name])] / 6e-5

    assert ratio('decode_head.conv_seg.weight') == pytest.approx(1.0)
    assert ratio('backbone.patch_embed.projection.weight') == pytest.approx(
        0.9**top)
    # Stage 1, block 0 is the third block (layer 3).
    assert ratio('backbone.stages.1.blocks.0.ffn.layers.1.weight'
                 ) == pytest.approx(0.9**(top - 3))


def test_labels_derived_from_context_annotations_train(pascal_data,
                                                       tmp_path):
    """The other layout: a folder written by tools/prepare_pascal_mt.py
    derive from PASCAL-Context annotations trains and evaluates."""
    train = ['2008_000002', '2008_000003', '2008_000007']
    val = ['2008_000010', '2008_000012']
    voc, annotations, labels_txt, _, _ = pascal_data.write_release(
        tmp_path / 'release', train, val, annotated=train + val)
    root = tmp_path / 'PASCAL_MT'
    subprocess.run([
        sys.executable,
        osp.join(REPO, 'tools', 'prepare_pascal_mt.py'), 'derive', voc,
        '--annotations', annotations, '--labels', labels_txt, '--out', root,
        '--nproc', '1', '--force'  # the fixture's vocabulary is shuffled
    ], check=True, capture_output=True)
    runner, _ = train_tiny('adamw', root, tmp_path / 'work')
    assert runner.iter == 2
    assert 0 <= runner.message_hub.get_scalar('val/mIoU').current() <= 100
    dataset = runner.val_dataloader.dataset
    assert len(dataset) == 2
    assert all('semseg/pascal-context' in dataset.get_data_info(i)
               ['seg_map_path'] for i in range(2))


def test_corruption_benchmark_runs_on_the_split(pascal_mt, tmp_path):
    """tools/test_corruption.py evaluates a checkpoint of these configs as
    it is (here: fog at severity 1 on the shrunk model)."""
    import json
    root, _ = pascal_mt
    train_tiny('adamw', root, tmp_path / 'work',
               **{'default_hooks.checkpoint.save_last': True})
    shrink = [
        f'{key}={value}'.replace(' ', '')
        for key, value in SHRINK.items() if key.startswith('model.')
    ] + [
        'model.data_preprocessor.size=(64,64)',
        'test_dataloader.dataset.pipeline.1.scale=(64,64)',
        f'test_dataloader.dataset.data_root={root}',
        'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False',
    ]
    result = subprocess.run([
        sys.executable,
        osp.join(REPO, 'tools', 'test_corruption.py'), CONFIGS['adamw'],
        str(tmp_path / 'work' / 'iter_2.pth'), '--corruptions', 'fog',
        '--severities', '1', '--work-dir', str(tmp_path / 'robustness'),
        '--cfg-options', *shrink
    ], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    results = json.loads(
        (tmp_path / 'robustness' / 'robustness.json').read_text())
    assert results['meta']['images'] == 2
    assert 0 <= results['clean']['mIoU'] <= 100
    assert [(c['corruption'], c['severity'])
            for c in results['conditions']] == [('fog', 1)]


def test_bitfit_trains_under_distributed_data_parallel(tmp_path):
    """The frozen parameters are frozen before DDP is built, so DDP expects
    no gradient for them: two steps run (a parameter that requires a
    gradient and gets none makes the second one fail) and move only the
    trainable ones."""
    import torch.distributed as dist
    from mmengine.config import Config
    from mmengine.model import MMDistributedDataParallel
    from mmengine.optim import build_optim_wrapper
    from mmengine.structures import PixelData
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample

    cfg = Config.fromfile(CONFIGS['bitfit'])
    cfg.merge_from_dict(SHRINK)
    _shrink_sizes(cfg.model)
    generator = torch.Generator().manual_seed(0)
    samples = []
    for _ in range(2):
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(
            data=torch.randint(0, 21, (1, 64, 64), generator=generator))
        samples.append(sample)
    batch = dict(
        inputs=[torch.rand(3, 64, 64, generator=generator) * 255] * 2,
        data_samples=samples)

    dist.init_process_group(
        'gloo', init_method=f'file://{tmp_path}/store', rank=0,
        world_size=1)
    try:
        model = MODELS.build(cfg.model)
        start = {n: p.detach().clone() for n, p in model.named_parameters()}
        ddp = MMDistributedDataParallel(module=model)
        optim_wrapper = build_optim_wrapper(ddp, cfg.optim_wrapper)
        for _ in range(2):
            ddp.train_step(batch, optim_wrapper)
    finally:
        dist.destroy_process_group()
    check_bitfit(dict(model.named_parameters()), start)
