"""Conditions, test-pipeline edits and the setup fingerprint of the
robustness loop."""
from __future__ import annotations

import copy

import pytest

from mmspd.evaluation.conditions import (
    add_corruption,
    fingerprint_test_setup,
    plan_conditions,
)


def dataloader(pipeline=None):
    return {
        'batch_size': 1,
        'num_workers': 2,
        'persistent_workers': True,
        'dataset': {
            'type': 'PascalContextDataset59',
            'data_root': 'data/x',
            'pipeline': pipeline if pipeline is not None else [
                {'type': 'LoadImageFromFile'},
                {'type': 'Resize', 'scale': (64, 64), 'keep_ratio': True},
                {'type': 'LoadAnnotations', 'reduce_zero_label': True},
                {'type': 'PackSegInputs'}
            ]}}


def test_plan_has_clean_first_then_every_condition():
    plan = plan_conditions(['fog', 'noise'], [3, 1, 3])
    assert plan[0] == ('clean', None)
    assert plan[1:] == [(name, s) for name in
                        ['fog', 'gaussian_noise', 'shot_noise',
                         'impulse_noise'] for s in (1, 3)]


@pytest.mark.parametrize('severities', [[0], [1, 6], [], [-1], [True]])
def test_plan_rejects_bad_severities(severities):
    with pytest.raises(ValueError, match='1, 2, 3, 4, 5'):
        plan_conditions(['fog'], severities)


def test_severity_0_is_clean():
    assert plan_conditions(['fog'], [0, 2]) == [('clean', None), ('fog', 2)]


def test_holdout_group():
    plan = plan_conditions(['holdout'], [1])
    assert [c for c, _ in plan[1:]] == ['speckle_noise', 'gaussian_blur',
                                        'spatter', 'saturate']


def test_plan_rejects_unknown_corruptions():
    with pytest.raises(ValueError, match=r"'fgo'.*accepted groups"):
        plan_conditions(['fog', 'fgo'], [1])


def test_corruption_goes_right_after_image_loading():
    original = dataloader()
    snapshot = copy.deepcopy(original)
    cfg = add_corruption(original, 'fog', 2, seed=7)
    assert original == snapshot
    types = [t['type'] for t in cfg['dataset']['pipeline']]
    assert types == ['LoadImageFromFile', 'ImageCorruption', 'Resize',
                     'LoadAnnotations', 'PackSegInputs']
    assert cfg['dataset']['pipeline'][1] == {
        'type': 'ImageCorruption', 'corruption': 'fog', 'severity': 2,
        'seed': 7, 'key': 'relative', 'root': 'data/x'}
    assert cfg['persistent_workers'] is False


def test_every_wrapped_dataset_is_corrupted():
    inner = dataloader()['dataset']
    cfg = {'dataset': {'type': 'ConcatDataset', 'datasets': [
        inner, {'type': 'RepeatDataset', 'times': 2, 'dataset': inner}
    ]}}
    out = add_corruption(cfg, 'snow', 1)
    for leaf in (out['dataset']['datasets'][0],
                 out['dataset']['datasets'][1]['dataset']):
        assert leaf['pipeline'][1]['type'] == 'ImageCorruption'


def test_pipeline_without_image_loading_is_rejected():
    cfg = dataloader([{'type': 'LoadAnnotations'},
                      {'type': 'PackSegInputs'}])
    with pytest.raises(ValueError, match='LoadImageFromFile'):
        add_corruption(cfg, 'fog', 1)


def test_fingerprint_tracks_data_and_model_but_not_workers():
    base = {'model': {'type': 'EncoderDecoder'},
                'test_dataloader': dataloader(), 'test_evaluator': {},
                'test_cfg': {}}
    same = copy.deepcopy(base)
    same['test_dataloader']['num_workers'] = 0
    other_data = copy.deepcopy(base)
    other_data['test_dataloader']['dataset']['data_root'] = 'data/y'
    other_model = copy.deepcopy(base)
    other_model['model']['type'] = 'CascadeEncoderDecoder'
    assert fingerprint_test_setup(same) == fingerprint_test_setup(base)
    assert fingerprint_test_setup(other_data) != fingerprint_test_setup(base)
    assert fingerprint_test_setup(other_model) != fingerprint_test_setup(base)


def test_fingerprint_ignores_which_conditions_the_loop_runs():
    # A work dir started by tools/test_corruption.py, by tools/test.py with
    # test_cfg.type=CorruptionTestLoop, or with other corruptions, is the
    # same setup; fp16 is not.
    plain = {'model': {'type': 'EncoderDecoder'},
             'test_dataloader': dataloader(), 'test_evaluator': {},
             'test_cfg': {'type': 'TestLoop'}}
    loop = dict(copy.deepcopy(plain), test_cfg={
        'type': 'CorruptionTestLoop', 'corruptions': ['fog'],
        'severities': [1], 'seed': 0, 'key': 'relative',
        'overwrite': True, 'show_dir': 'x', 'show_num': 2})
    assert fingerprint_test_setup(loop) == fingerprint_test_setup(plain)
    loop['test_cfg']['fp16'] = True
    assert fingerprint_test_setup(loop) != fingerprint_test_setup(plain)
