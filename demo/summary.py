"""The demo's results: ``summary.md``, ``summary.json`` and two figures.

Numbers come from the files the stages wrote: ``robustness.json`` of
``tools/test_corruption.py`` (ID, per corruption, mPC, rPC, read with
:class:`mmspd.evaluation.RobustnessResults`), the OOD test metrics, the
grid's val mIoU, and the checkpoints (deviation from the pre-trained
weights). ``corruptions.png`` is drawn by mmspd's comparison plot;
``ood_vs_deviation.png`` by this module.
"""
from __future__ import annotations

import math
import statistics
import warnings

from demo.scheduler import DemoError, read_json, write_json
from demo.stages import METHODS, PRETRAIN, PRETRAIN_CONFIG, Plan

PRETRAINED = 'pre-trained'  # its row in the table
# Matplotlib's first colours, in the order the comparison plot uses them.
COLOURS = ('C0', 'C1', 'C2', 'C3')


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (NaN where undefined)."""
    if not values:
        return math.nan, math.nan
    if len(values) < 2:
        return values[0], math.nan
    return statistics.mean(values), statistics.stdev(values)


def parameter_deviation(pretrained: str, finetuned: list[str],
                        config: str) -> list[dict[str, float]]:
    """L2 distance of fine-tuned parameters from the pre-trained ones.

    Only the model's parameters count (not BN statistics or other buffers).

    Args:
        pretrained (str): Checkpoint fine-tuning started from.
        finetuned (list[str]): Checkpoints fine-tuning ended with.
        config (str): Config that builds the model, to know which
            state-dict entries are parameters.

    Returns:
        list[dict[str, float]]: Per fine-tuned checkpoint, ``abs`` =
        |theta - theta_pre| over all parameters and ``rel`` = ``abs`` /
        |theta_pre|.
    """
    import torch
    with warnings.catch_warnings():
        # The libraries' deprecation notices while importing and building
        # say nothing here.
        warnings.simplefilter('ignore', UserWarning)
        from mmengine.config import Config
        from mmengine.registry import init_default_scope
        from mmseg.registry import MODELS

        from mmspd.utils import mmengine_safe_globals

        cfg = Config.fromfile(config)
        init_default_scope(cfg.get('default_scope', 'mmseg'))
        model = MODELS.build(cfg.model)

    def load(path: str) -> dict:
        with mmengine_safe_globals():
            return torch.load(path, map_location='cpu')['state_dict']

    names = [name for name, _ in model.named_parameters()]
    start = load(pretrained)
    start_sq = sum(float((start[n].double()**2).sum()) for n in names)
    result = []
    for path in finetuned:
        end = load(path)
        missing = [n for n in names if n not in start or n not in end]
        if missing:
            raise DemoError(f'checkpoints lack parameters {missing[:3]}...; '
                            f'were {pretrained} and {path} trained with '
                            f'{config}?')
        diff_sq = sum(
            float(((end[n].double() - start[n].double())**2).sum())
            for n in names)
        result.append({'abs': diff_sq**0.5, 'rel': (diff_sq / start_sq)**0.5})
    return result


def model_numbers(plan: Plan, model: str) -> dict:
    """ID, OOD, per-corruption means, per severity, mPC and rPC."""
    from mmspd.evaluation import RobustnessResults
    results = RobustnessResults.load(plan.robustness(model))
    summary = results.summary()
    return {
        'ID': results.clean['mIoU'],
        'OOD': read_json(plan.ood(plan.run_of(model)))['mIoU'],
        'corruptions': {
            c: v['mIoU'] for c, v in summary['per_corruption'].items()
        },
        'severity': {
            corruption: {
                str(c['severity']): c['mIoU']
                for c in results.conditions if c['corruption'] == corruption
            }
            for corruption in results.corruptions
        },
        'mPC': summary['mPC']['mIoU'],
        'rPC': summary['rPC']['mIoU'],
    }


def collect(plan: Plan) -> dict:
    """Every model's numbers per seed, and the lambda grids."""
    s = plan.settings
    first = s['seeds'][0]
    models = [plan.model_name(m, seed) for m in METHODS
              for seed in s['seeds']]
    grid_runs = [plan.grid_run(m, lam, first) for m in METHODS if m.tuned
                 for lam in s['grids'][m.key]]
    runs = [plan.run_of(model) for model in models] + grid_runs
    deviations = parameter_deviation(
        plan.checkpoint(PRETRAIN), [plan.checkpoint(r) for r in runs],
        PRETRAIN_CONFIG)
    dev = dict(zip(runs, deviations))

    rows = {PRETRAINED: [dict(model_numbers(plan, PRETRAIN), deviation=0.0)]}
    grids = {}
    for method in METHODS:
        rows[method.name] = []
        for seed in s['seeds']:
            model = plan.model_name(method, seed)
            run = plan.run_of(model)
            record = read_json(plan.result(run))
            rows[method.name].append(
                dict(model_numbers(plan, model), seed=seed, run=run,
                     lam=record['lambda'], val_mIoU=record['val_mIoU'],
                     deviation=100 * dev[run]['rel'],
                     deviation_abs=dev[run]['abs']))
        if method.tuned:
            grid = read_json(plan.selection(method))
            grid['runs'] = [{
                'lam': lam,
                'val_mIoU': grid['val_mIoU'][str(lam)],
                'OOD': read_json(plan.ood(run))['mIoU'],
                'deviation': 100 * dev[run]['rel'],
            } for lam in s['grids'][method.key]
                for run in [plan.grid_run(method, lam, first)]]
            grids[method.name] = grid
    return {'rows': rows, 'grids': grids}


def _cell(values: list[float], digits: int = 1) -> str:
    mean, std = mean_std(values)
    if math.isnan(mean):
        return '-'
    if math.isnan(std):
        return f'{mean:.{digits}f}'
    return f'{mean:.{digits}f} ± {std:.{digits}f}'


def _label(corruption: str) -> str:
    return corruption.replace('_', ' ')


def format_summary(data: dict, settings: dict) -> str:
    """``summary.md``: the table, the lambda choice, what it means."""
    rows, grids = data['rows'], data['grids']
    corruptions = list(rows[PRETRAINED][0]['corruptions'])
    header = (['Model', 'λ', 'ID', 'OOD'] + [_label(c) for c in corruptions]
              + ['mPC', 'rPC (%)', 'deviation (%)'])
    lines = ['| ' + ' | '.join(header) + ' |',
             '|---|---|' + '---:|' * (len(header) - 2)]
    for name, runs in rows.items():
        lam = f'{grids[name]["chosen"]:g}' if name in grids else '-'
        cells = [name, lam, _cell([r['ID'] for r in runs]),
                 _cell([r['OOD'] for r in runs])]
        cells += [_cell([r['corruptions'][c] for r in runs])
                  for c in corruptions]
        cells += [_cell([r['mPC'] for r in runs]),
                  _cell([r['rPC'] for r in runs]),
                  _cell([r['deviation'] for r in runs], 2)]
        lines.append('| ' + ' | '.join(cells) + ' |')
    first = settings['seeds'][0]
    seeds = ', '.join(map(str, settings['seeds']))
    severities = ', '.join(map(str, settings['severities']))
    legend = (
        f'Fine-tuned rows: mean ± sample std over seeds {seeds}; the '
        "pre-trained row is one model. mIoU in %. ID: the target's clean "
        'test split. OOD: scenes in held-out appearances. Corruption '
        'columns: mIoU on the target test split averaged over severities '
        f'{severities}; mPC: their mean; rPC = 100 mPC / ID. Deviation: '
        '|theta - theta_pre| / |theta_pre| over all parameters, in %.')
    choice = (f'Seed {first}, every grid value. Only the val mIoU chose '
              'lambda; the OOD column is shown, not used.')
    out = [
        '# mmspd demo: broad pre-training, narrow fine-tuning', '', *lines,
        '', legend, '', '## Lambda, chosen on the target val split', '',
        choice, '', '| Method | λ | val mIoU | OOD | deviation (%) | |',
        '|---|---:|---:|---:|---:|---|'
    ]
    for name, grid in grids.items():
        for run in grid['runs']:
            mark = 'chosen' if run['lam'] == grid['chosen'] else ''
            out.append(f'| {name} | {run["lam"]:g} | '
                       f'{run["val_mIoU"]:.2f} | {run["OOD"]:.2f} | '
                       f'{run["deviation"]:.2f} | {mark} |')
    out += ['', ('Figures: corruptions.png (mean mIoU: clean, per '
                 'corruption, mPC), ood_vs_deviation.png (OOD mIoU against '
                 'deviation); eval/<model>/corruption/robustness.png (one '
                 "model's mIoU against severity). Every run's numbers: "
                 'summary.json.')]
    return '\n'.join(out) + '\n'


def plot_corruptions(data: dict, path: str) -> None:
    """Mean mIoU per method: clean, each corruption, mPC (mmspd's plot)."""
    from mmspd.evaluation.report import plot_comparison
    rows = data['rows']
    corruptions = list(rows[PRETRAINED][0]['corruptions'])
    columns = ['clean'] + [_label(c) for c in corruptions] + ['mPC']
    table = []
    for name, runs in rows.items():
        means = [mean_std([r['ID'] for r in runs])[0]]
        means += [mean_std([r['corruptions'][c] for r in runs])[0]
                  for c in corruptions]
        means.append(mean_std([r['mPC'] for r in runs])[0])
        table.append([name, *means])
    plot_comparison(columns, table, path)


def plot_ood_vs_deviation(data: dict, path: str) -> None:
    """OOD mIoU against deviation: every seed, the means, the grid runs."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = data['rows']
    colours = dict(zip(rows, COLOURS))
    figure = Figure(figsize=(5, 4))
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    for name, runs in rows.items():
        xs = [r['deviation'] for r in runs]
        ys = [r['OOD'] for r in runs]
        ax.scatter(xs, ys, color=colours[name], alpha=0.5, s=18)
        (mx, sx), (my, sy) = mean_std(xs), mean_std(ys)
        ax.errorbar(mx, my, xerr=0 if math.isnan(sx) else sx,
                    yerr=0 if math.isnan(sy) else sy, fmt='o',
                    color=colours[name], capsize=3, label=name)
    for name, grid in data['grids'].items():
        for run in grid['runs']:
            ax.scatter(run['deviation'], run['OOD'], s=40,
                       facecolors='none', edgecolors=colours[name])
            ax.annotate(f'λ={run["lam"]:g}', (run['deviation'], run['OOD']),
                        fontsize=6, xytext=(3, 3),
                        textcoords='offset points')
    ax.set_xlabel('deviation from pre-trained weights (%)')
    ax.set_ylabel('OOD mIoU (%)')
    ax.set_title('filled: chosen lambda, every seed; hollow: lambda grid, '
                 'first seed', fontsize=7)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def write_summary(plan: Plan, stage_record: dict) -> str:
    """Collect the numbers; write ``summary.md``, ``.json``, the figures.

    Args:
        plan (Plan): The finished demo.
        stage_record (dict): What the scheduler returned: ``seconds`` per
            stage and the ``skipped`` stages.

    Returns:
        str: The text of ``summary.md``.
    """
    data = collect(plan)
    text = format_summary(data, plan.settings)
    with open(plan.path('summary.md'), 'w', encoding='utf-8') as f:
        f.write(text)
    plot_corruptions(data, plan.path('corruptions.png'))
    plot_ood_vs_deviation(data, plan.path('ood_vs_deviation.png'))
    write_json(plan.path('summary.json'), {
        **data,
        'settings': plan.settings,
        'stage_seconds': stage_record['seconds'],
        'stages_skipped_this_run': stage_record['skipped'],
    })
    return text
