"""Checkpoints: round trip, atomic writes, and every way a checkpoint can be refused."""
from __future__ import annotations

import hashlib
import json
import os
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from jointdistill_core.checkpoint import (
    CheckpointError,
    atomic_save_tensors,
    atomic_write_bytes,
    load_checkpoint,
    save_checkpoint,
)
from jointdistill_core.models import DepthTeacher, JointStudent, SegTeacher

torch.set_num_threads(1)


def _small_student(seed: int = 0) -> JointStudent:
    torch.manual_seed(seed)
    model = JointStudent(width_mult=0.35, decoder_channels=(16, 16, 8), num_classes=5,
                         max_depth=30.0)
    with torch.no_grad():  # non-default BN statistics must survive the round trip too
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
    return model.eval()


@pytest.fixture
def saved(tmp_path: Path) -> tuple[JointStudent, Path]:
    model = _small_student()
    save_checkpoint(tmp_path / 'ckpt', model, extra={'input_size': [64, 128], 'step': 12,
                                                     'metrics': {'miou': 0.5}})
    return model, tmp_path / 'ckpt'


def test_round_trip_gives_identical_outputs(saved) -> None:
    model, stem = saved
    x = torch.rand(1, 3, 64, 96)
    for path in (stem, f'{stem}.safetensors', f'{stem}.json'):
        loaded, meta = load_checkpoint(path)
        assert not loaded.training
        with torch.no_grad():
            expected, got = model(x), loaded(x)
        assert torch.equal(got.depth, expected.depth)
        assert torch.equal(got.seg_logits, expected.seg_logits)
    assert meta['format'] == 'jointdistill-checkpoint' and meta['version'] == 1
    assert meta['model'] == model.spec
    assert meta['input_size'] == [64, 128]
    assert meta['extra'] == {'step': 12, 'metrics': {'miou': 0.5}}


def test_files_on_disk_have_the_documented_layout(saved) -> None:
    model, stem = saved
    weights = Path(f'{stem}.safetensors')
    meta = json.loads(Path(f'{stem}.json').read_text())
    assert meta['weights_sha256'] == hashlib.sha256(weights.read_bytes()).hexdigest()
    # Readable by the plain safetensors library: the file is a standard state_dict.
    tensors = load_file(weights)
    assert set(tensors) == set(model.state_dict())
    assert sorted(p.name for p in weights.parent.iterdir()) == ['ckpt.json', 'ckpt.safetensors']


def test_teachers_round_trip_and_default_input_size(tmp_path: Path) -> None:
    for model in (SegTeacher(num_classes=3, width=8), DepthTeacher(max_depth=9.0, width=8)):
        save_checkpoint(tmp_path / model.spec['arch'], model)
        loaded, meta = load_checkpoint(tmp_path / model.spec['arch'])
        assert type(loaded) is type(model) and meta['input_size'] == [256, 512]
        for name, tensor in model.state_dict().items():
            assert torch.equal(loaded.state_dict()[name], tensor)


def test_missing_files(tmp_path: Path, saved) -> None:
    with pytest.raises(CheckpointError,
                       match=r'nothing\.safetensors: checkpoint weights not found'):
        load_checkpoint(tmp_path / 'nothing')
    _, stem = saved
    os.unlink(f'{stem}.json')
    with pytest.raises(CheckpointError, match=r'ckpt\.json: checkpoint config not found'):
        load_checkpoint(stem)


@pytest.mark.parametrize('content, message', [
    ('{"format": "jointdistill-checkpoint", ', 'not valid JSON'),
    ('[1, 2]', 'not a jointdistill checkpoint config'),
    ('{"format": "jointdistill-checkpoint", "version": 7}', 'unsupported checkpoint version 7'),
    ('{"format": "jointdistill-checkpoint", "version": 1}', 'missing "model" spec'),
    ('{"format": "jointdistill-checkpoint", "version": 1, "model": {"arch": "student"}, '
     '"input_size": [64]}', '"input_size" must be'),
    ('{"format": "jointdistill-checkpoint", "version": 1, "model": {"arch": "vit"}, '
     '"input_size": [64, 64]}', "unknown arch 'vit'"),
])
def test_invalid_json_config(saved, content: str, message: str) -> None:
    _, stem = saved
    Path(f'{stem}.json').write_text(content)
    with pytest.raises(CheckpointError, match=rf'ckpt\.json: .*{message}'):
        load_checkpoint(stem)


def _strip_hash(stem: Path) -> None:
    """Drop the recorded SHA-256 so the weights file itself is what gets judged."""
    config_path = Path(f'{stem}.json')
    config = json.loads(config_path.read_text())
    config.pop('weights_sha256', None)
    config_path.write_text(json.dumps(config))


def test_truncated_weights(saved) -> None:
    _, stem = saved
    weights = Path(f'{stem}.safetensors')
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match='do not belong to the same checkpoint'):
        load_checkpoint(stem)
    _strip_hash(stem)
    with pytest.raises(CheckpointError, match=r'ckpt\.safetensors: not a valid safetensors file'):
        load_checkpoint(stem)


class _PlantMarker:
    """Unpickling this object would create a marker file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_malicious_pickle_is_refused_and_never_executed(saved, tmp_path: Path) -> None:
    _, stem = saved
    marker = tmp_path / 'pwned'
    payload = pickle.dumps({'state_dict': _PlantMarker(marker)})
    # torch.save-style zip pickle and a raw pickle, both under the .safetensors name.
    for data in (payload, _torch_save_bytes(tmp_path, _PlantMarker(marker))):
        Path(f'{stem}.safetensors').write_bytes(data)
        _strip_hash(stem)
        with pytest.raises(CheckpointError, match='not a valid safetensors file.*pickled'):
            load_checkpoint(stem)
        assert not marker.exists()


def _torch_save_bytes(tmp_path: Path, obj: object) -> bytes:
    path = tmp_path / 'zip_pickle.pt'
    torch.save(obj, path)
    return path.read_bytes()


def test_architecture_mismatch_names_the_problem(tmp_path: Path, saved) -> None:
    _, stem = saved
    config = json.loads(Path(f'{stem}.json').read_text())
    # Same weights, declared as a wider decoder: every decoder tensor mismatches in shape.
    config['model']['decoder_channels'] = [32, 16, 8]
    Path(f'{stem}.json').write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r'ckpt\.safetensors: .*shape mismatches: .*decoder'):
        load_checkpoint(stem)

    tensors = load_file(f'{stem}.safetensors')
    removed = 'seg_head.weight'
    del tensors[removed]
    tensors['extra_head.weight'] = torch.zeros(2)
    config['model']['decoder_channels'] = [16, 16, 8]
    config.pop('weights_sha256')
    Path(f'{stem}.json').write_text(json.dumps(config))
    save_file(tensors, f'{stem}.safetensors')
    with pytest.raises(CheckpointError,
                       match=rf'missing keys: {removed}; unexpected keys: extra_head.weight'):
        load_checkpoint(stem)


def test_wrapped_models_are_saved_as_the_bare_network(tmp_path: Path) -> None:
    model = _small_student()
    save_checkpoint(tmp_path / 'wrapped', torch.nn.DataParallel(model))
    loaded, meta = load_checkpoint(tmp_path / 'wrapped')
    assert meta['model'] == model.spec
    assert set(loaded.state_dict()) == set(model.state_dict())
    stored = load_file(tmp_path / 'wrapped.safetensors')
    assert all(not name.startswith('module.') for name in stored)


def test_save_refuses_models_without_spec_and_unserialisable_extra(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match='has no spec'):
        save_checkpoint(tmp_path / 'x', torch.nn.Linear(2, 2))
    with pytest.raises(CheckpointError, match='extra is not JSON-serialisable'):
        save_checkpoint(tmp_path / 'x', _small_student(), extra={'bad': object()})
    with pytest.raises(CheckpointError, match='multiples of 32'):
        save_checkpoint(tmp_path / 'x', _small_student(), extra={'input_size': [100, 128]})
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_failed_save_keeps_the_previous_checkpoint(saved, monkeypatch) -> None:
    model, stem = saved
    before = Path(f'{stem}.safetensors').read_bytes()

    def crash(*args, **kwargs):
        raise OSError('disk full')

    monkeypatch.setattr(os, 'fsync', crash)
    with pytest.raises(OSError, match='disk full'):
        save_checkpoint(stem, _small_student(seed=5))
    monkeypatch.undo()
    assert Path(f'{stem}.safetensors').read_bytes() == before
    assert sorted(p.name for p in Path(stem).parent.iterdir()) == ['ckpt.json', 'ckpt.safetensors']
    load_checkpoint(stem)  # still consistent


def test_atomic_helpers(tmp_path: Path) -> None:
    target = tmp_path / 'sub' / 'state.bin'
    atomic_write_bytes(target, b'one')
    atomic_write_bytes(target, b'two')
    assert target.read_bytes() == b'two'
    previous_umask = os.umask(0o022)
    try:  # a new file gets the mode open() would give it, not mkstemp's private 0o600
        atomic_write_bytes(tmp_path / 'fresh.bin', b'x')
    finally:
        os.umask(previous_umask)
    assert (tmp_path / 'fresh.bin').stat().st_mode & 0o777 == 0o644
    tensors = {'a': torch.arange(6).view(2, 3).t(), 'b': torch.ones(2)}  # a non-contiguous view
    atomic_save_tensors(tmp_path / 'state.safetensors', tensors)
    loaded = load_file(tmp_path / 'state.safetensors')
    assert torch.equal(loaded['a'], tensors['a']) and torch.equal(loaded['b'], tensors['b'])
