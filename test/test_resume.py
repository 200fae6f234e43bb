"""`--resume` continues exactly: N steps straight == N/2 steps, stop, resume, N/2 steps."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from jointdistill_core.cli import main
from jointdistill_core.training import load_train_config, train
from jointdistill_core.training.state import (
    capture_rng,
    load_state,
    pack,
    restore_rng,
    save_state,
    unpack,
)
from test_trainer import nyuv2_like, on_disk_data, read_csv, save_tiny_teachers, tiny_config

__all__ = ['nyuv2_like']  # the fixture, imported so pytest finds it here


def _jointdistill_config(tmp_path, data_root, out_name):
    teachers = save_tiny_teachers(tmp_path, num_classes=13)
    # Adaptive weights and trajectory snapshots every 2 steps: method state changes before
    # and after the interruption; augmentation exercises the per-sample seeding.
    return tiny_config(tmp_path, name=f'{out_name}.yaml', teachers=teachers,
                       method={'name': 'jointdistill',
                               'params': {'eval_every': 2, 'probe_size': 2, 'buffer_size': 2}},
                       data=on_disk_data(data_root, augment=True, num_frames=6),
                       steps=6, val_every=2, log_every=1, out=str(tmp_path / out_name))


def test_resume_reproduces_a_straight_run_exactly(tmp_path, nyuv2_like):
    straight = _jointdistill_config(tmp_path, nyuv2_like, 'straight')
    split = _jointdistill_config(tmp_path, nyuv2_like, 'split')
    assert main(['train', '--config', str(straight), '--no-progress']) == 0
    assert main(['train', '--config', str(split), '--no-progress', '--stop-at', '3']) == 0
    halfway = load_state(tmp_path / 'split' / 'resume.safetensors')
    assert halfway['step'] == 3
    # the second half loads its data with a worker process: the data order must not change
    assert main(['train', '--config', str(split), '--no-progress', '--resume',
                 '--set', 'data.workers=1']) == 0

    final_straight = load_state(tmp_path / 'straight' / 'resume.safetensors')
    final_split = load_state(tmp_path / 'split' / 'resume.safetensors')
    assert final_straight['step'] == final_split['step'] == 6
    for part in ('model', 'method'):
        a, b = final_straight[part], final_split[part]
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), f'{part}.{key}'
    assert not torch.equal(halfway['model']['seg_head.weight'],
                           final_split['model']['seg_head.weight'])
    optimizer_a, optimizer_b = final_straight['optimizer'], final_split['optimizer']
    for index, state in optimizer_a['state'].items():
        for key, value in state.items():
            assert torch.equal(value, optimizer_b['state'][index][key]), (index, key)
    # the logs of the resumed run read like the straight run's (no duplicated steps)
    rows_straight = read_csv(tmp_path / 'straight' / 'metrics.csv')
    rows_split = read_csv(tmp_path / 'split' / 'metrics.csv')
    assert [r['step'] for r in rows_split] == [r['step'] for r in rows_straight]
    for a, b in zip(rows_straight, rows_split):
        for column in ('loss/total', 'loss/task/seg', 'lr', 'method/omega/seg'):
            assert a[column] == b[column], (a['step'], column)
        if a['val/miou']:  # the split run also validated where it stopped (step 3)
            assert a['val/miou'] == b['val/miou'], a['step']
    assert [r['step'] for r in rows_split if r['val/miou']] == ['2', '3', '4', '6']


def test_resume_refuses_a_changed_configuration(tmp_path, capsys):
    path = tiny_config(tmp_path, steps=2, val_every=1)
    assert main(['train', '--config', str(path), '--no-progress', '--stop-at', '1']) == 0
    capsys.readouterr()
    assert main(['train', '--config', str(path), '--no-progress', '--resume',
                 '--set', 'optim.lr=0.5']) == 2
    error = capsys.readouterr().err
    assert 'optim.lr' in error and 'resume' in error
    # steps may grow: the finished run continues
    assert main(['train', '--config', str(path), '--no-progress', '--resume']) == 0
    assert load_state(tmp_path / 'run' / 'resume.safetensors')['step'] == 2
    assert main(['train', '--config', str(path), '--no-progress', '--resume']) == 2
    assert 'raise steps' in capsys.readouterr().err


def test_resume_without_a_state_is_a_clear_error(tmp_path, capsys):
    path = tiny_config(tmp_path)
    assert main(['train', '--config', str(path), '--resume', '--no-progress']) == 2
    assert 'resume.safetensors' in capsys.readouterr().err


def test_state_round_trip_keeps_types_and_values(tmp_path):
    state = {
        'step': 7, 'score': -1.5, 'name': 'x', 'none': None, 'flag': True,
        'nested': {3: {'exp_avg': torch.arange(4.0), 'step': torch.tensor(2.0)}},
        'groups': [{'lr': 0.1, 'params': [0, 1, 2]}],
        'array': np.arange(6, dtype=np.uint32).reshape(2, 3),
        'tuple': (1, 'two', torch.ones(2, dtype=torch.uint8)),
    }
    save_state(tmp_path / 'state.safetensors', state)
    loaded = load_state(tmp_path / 'state.safetensors')
    assert loaded['step'] == 7 and loaded['score'] == -1.5 and loaded['none'] is None
    assert list(loaded['nested']) == [3]  # integer keys stay integers
    assert torch.equal(loaded['nested'][3]['exp_avg'], torch.arange(4.0))
    assert loaded['groups'] == [{'lr': 0.1, 'params': [0, 1, 2]}]
    assert loaded['array'].dtype == np.uint32 and loaded['array'].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert isinstance(loaded['tuple'], tuple) and loaded['tuple'][1] == 'two'


def test_unsupported_values_and_foreign_files_are_refused(tmp_path):
    with pytest.raises(TypeError, match='s.bad'):
        pack({'bad': object()}, {})
    foreign = tmp_path / 'other.safetensors'
    from safetensors.torch import save_file
    save_file({'w': torch.zeros(1)}, str(foreign))
    with pytest.raises(ValueError, match='not a jointdistill resume state'):
        load_state(foreign)
    garbage = tmp_path / 'garbage.safetensors'
    garbage.write_bytes(b'\x80\x04 not safetensors')
    with pytest.raises(ValueError, match='not a readable safetensors'):
        load_state(garbage)


def test_rng_capture_and_restore_replays_all_generators():
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    tensors: dict = {}
    skeleton = pack(capture_rng(), tensors)
    first = (torch.rand(3), np.random.rand(3), random.random())
    restore_rng(unpack(skeleton, tensors))
    second = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(first[0], second[0])
    assert np.array_equal(first[1], second[1]) and first[2] == second[2]


def test_train_api_stop_at_must_be_positive(tmp_path):
    from jointdistill_core.config import ConfigError
    with pytest.raises(ConfigError, match='stop_at'):
        train(load_train_config(tiny_config(tmp_path)), stop_at=0)
