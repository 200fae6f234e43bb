"""Provenance in checkpoints and the model card: teachers by hash, data, command."""
from __future__ import annotations

import hashlib
import json
import shutil

from jointdistill_core.checkpoint import load_checkpoint, save_checkpoint
from jointdistill_core.cli import main
from jointdistill_core.model_card import model_card
from jointdistill_core.models.factory import build_model
from jointdistill_core.provenance import folder_sha256
from test_trainer import TINY_STUDENT, save_tiny_teachers, tiny_config


def sha256_of(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_train_records_teachers_data_and_command_and_the_card_shows_them(tmp_path):
    teachers = save_tiny_teachers(tmp_path)
    config = tiny_config(tmp_path, method={'name': 'static_kd'}, teachers=teachers,
                         steps=2, val_every=2)
    assert main(['train', '--config', str(config), '--no-progress',
                 '--set', 'optim.lr=1e-3']) == 0
    record = json.loads((tmp_path / 'run' / 'best.json').read_text())['extra']['provenance']
    assert record['command'] == (f'jointdistill train --config {config} --no-progress '
                                 '--set optim.lr=1e-3')
    assert record['data'] == {'spec': 'synthetic', 'val_spec': None, 'train_split': 'train',
                              'val_split': 'val', 'size': '64x128'}
    for task in ('seg', 'depth'):
        teacher = record['teachers'][task]
        assert teacher['sha256'] == sha256_of(tmp_path / f'teacher_{task}.safetensors')
        assert (teacher['name'], teacher['kind']) == (f'teacher_{task}', 'checkpoint')
        assert teacher['architecture'] == f'{task}_teacher'
    assert record['teachers']['depth']['depth_kind'] == 'metric'
    assert record['teachers']['seg']['depth_kind'] is None

    card = (tmp_path / 'run' / 'model_card.md').read_text()
    assert record['command'] in card
    assert record['teachers']['seg']['sha256'] in card
    assert record['teachers']['depth']['sha256'] in card
    assert '`synthetic`' in card and '## Validation metrics (step 2)' in card
    assert '`static_kd`' in card


def test_a_checkpoint_without_provenance_still_loads_and_its_card_says_so(tmp_path):
    model = build_model({'arch': 'student', **TINY_STUDENT['kwargs']})
    save_checkpoint(tmp_path / 'old', model, {'input_size': [64, 128], 'step': 5})
    loaded, config = load_checkpoint(tmp_path / 'old')
    assert 'provenance' not in config['extra']
    card = model_card(tmp_path / 'old')
    assert 'Provenance: not recorded' in card
    assert '## Teachers' not in card


def test_folder_hash_follows_the_content_not_the_folder_name(tmp_path):
    folder = tmp_path / 'model'
    (folder / 'sub').mkdir(parents=True)
    (folder / 'config.json').write_text('{"a": 1}')
    (folder / 'sub' / 'weights.bin').write_bytes(b'\0\1\2')
    first = folder_sha256(folder)
    shutil.copytree(folder, tmp_path / 'renamed')
    assert folder_sha256(tmp_path / 'renamed') == first
    (folder / 'sub' / 'weights.bin').write_bytes(b'\0\1\3')
    assert folder_sha256(folder) != first
    (folder / 'sub' / 'weights.bin').write_bytes(b'\0\1\2')
    (folder / 'sub' / 'weights.bin').rename(folder / 'sub' / 'other.bin')
    assert folder_sha256(folder) != first  # names count, not only bytes
