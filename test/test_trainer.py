"""The trainer: typed config, schedule, logs, checkpoints, divergence stop, teacher training.

Tiny networks at 64x128 and a handful of steps keep these fast. Helpers here are shared by
test_resume.py, test_ddp.py and test_evaluate_cli.py.
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from jointdistill_core.cli import main
from jointdistill_core.config import ConfigError
from jointdistill_core.training import TrainConfig, load_train_config, train
from jointdistill_core.training.trainer import lr_factor, nonfinite_tensors

TINY_STUDENT = {'arch': 'student', 'kwargs': {'width_mult': 0.25, 'decoder_channels': [16, 16, 16]}}
SIZE = '64x128'


def tiny_config(tmp_path: Path, name: str = 'tiny.yaml', **sections) -> Path:
    """Write a small multi-task `mtl` config; keyword sections replace top-level keys."""
    config = {
        'task': 'multi',
        'model': TINY_STUDENT,
        'method': {'name': 'mtl'},
        'data': {'spec': 'synthetic', 'size': SIZE, 'num_frames': 8, 'val_frames': 4,
                 'batch_size': 2},
        'optim': {'lr': 2e-3},
        'steps': 6, 'val_every': 3, 'log_every': 2, 'seed': 3,
        'out': str(tmp_path / 'run'),
    }
    config.update(sections)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return path


def write_nyuv2_like(root: Path, splits: dict[str, int], size=(64, 128), seed: int = 0) -> Path:
    """An mtan-layout NYUv2-style set (13 classes) where EVERY pixel has a label and a valid
    depth, so pooled per-pixel losses equal the mean of per-image losses."""
    rng = np.random.default_rng(seed)
    height, width = size
    rows = np.linspace(0, 1, height)[:, None]
    for split, count in splits.items():
        for kind in ('image', 'label', 'depth'):
            (root / split / kind).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            image = np.clip(rng.random((height, width, 3)) * 0.3
                            + rng.random(3) * rows[..., None], 0, 1).astype(np.float32)
            labels = (rng.integers(0, 13) + (rows * 4).astype(int)
                      + np.zeros((1, width), int)) % 13
            depth = (1.0 + 8.0 * rows + rng.random((height, width)) * 0.5).astype(np.float32)
            np.save(root / split / 'image' / f'{i}.npy', image)
            np.save(root / split / 'label' / f'{i}.npy', labels.astype(np.float32))
            np.save(root / split / 'depth' / f'{i}.npy', depth)
    return root


def save_tiny_teachers(directory: Path, num_classes: int = 7) -> dict:
    """Random-weight teacher checkpoints (width 8); returns the `teachers` config section."""
    from jointdistill_core.checkpoint import save_checkpoint
    from jointdistill_core.models.factory import build_model
    torch.manual_seed(11)
    section = {}
    for task, spec in (('seg', {'arch': 'seg_teacher', 'num_classes': num_classes}),
                       ('depth', {'arch': 'depth_teacher'})):
        model = build_model({**spec, 'width': 8, 'blocks': [1, 1, 1, 1]})
        save_checkpoint(directory / f'teacher_{task}', model, {'input_size': [64, 128]})
        section[task] = {'path': str(directory / f'teacher_{task}.safetensors')}
    return section


@pytest.fixture(scope='session')
def nyuv2_like(tmp_path_factory) -> Path:
    """A fast on-disk data set (no rendering): 8 train, 4 val, 4 test frames at 64x128."""
    return write_nyuv2_like(tmp_path_factory.mktemp('nyuv2_like'),
                            {'train': 8, 'val': 4, 'test': 4})


def on_disk_data(root: Path, **changes) -> dict:
    return {'spec': f'nyuv2:{root}', 'size': None, 'num_frames': 8, 'val_frames': 4,
            'batch_size': 2, **changes}


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline='') as handle:
        return list(csv.DictReader(handle))


# ---- configuration ------------------------------------------------------------------------
def test_unknown_key_is_an_error_naming_key_and_file(tmp_path):
    path = tiny_config(tmp_path, optim={'lr': 1e-3, 'momentum': 0.9})
    with pytest.raises(ConfigError, match=r'tiny\.yaml.*optim\.momentum'):
        load_train_config(path)


def test_wrong_type_and_bad_override_are_errors(tmp_path):
    path = tiny_config(tmp_path)
    with pytest.raises(ConfigError, match='steps'):
        load_train_config(path, ['steps=many'])
    with pytest.raises(ConfigError, match=r'data\.size'):
        load_train_config(path, ['data.size=64by128'])
    with pytest.raises(ConfigError, match='schedule.name'):
        load_train_config(path, ['schedule.name=linear'])


def test_override_changes_a_value(tmp_path):
    config = load_train_config(tiny_config(tmp_path), ['optim.lr=5e-4', 'data.augment=true'])
    assert config.optim.lr == 5e-4 and config.data.augment is True
    assert isinstance(config, TrainConfig)


def test_teacher_task_refuses_teachers(tmp_path):
    path = tiny_config(tmp_path, task='seg', teachers={'seg': {'path': 'x.safetensors'}})
    with pytest.raises(ConfigError, match='teachers'):
        load_train_config(path)


def test_method_needing_teachers_without_them_is_a_clear_error(tmp_path):
    path = tiny_config(tmp_path, method={'name': 'static_kd'})
    assert main(['train', '--config', str(path), '--no-progress']) == 2


# ---- schedule -----------------------------------------------------------------------------
def _schedule_config(**schedule) -> TrainConfig:
    from jointdistill_core.config import from_dict
    return from_dict(TrainConfig, {'steps': 11, 'schedule': schedule})


def test_cosine_schedule_hand_values():
    config = _schedule_config(name='cosine', warmup=0, min_factor=0.0)
    # span = steps - 1 = 10: factor = 0.5 (1 + cos(pi * step / 10))
    assert lr_factor(config, 0) == pytest.approx(1.0)
    assert lr_factor(config, 5) == pytest.approx(0.5)
    assert lr_factor(config, 10) == pytest.approx(0.0, abs=1e-12)
    floor = _schedule_config(name='cosine', min_factor=0.2)
    assert lr_factor(floor, 10) == pytest.approx(0.2)


def test_warmup_then_step_schedule_hand_values():
    config = _schedule_config(name='step', warmup=4, step_every=3, gamma=0.5)
    assert [lr_factor(config, s) for s in range(4)] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    # after warm-up: steps 4,5,6 -> 1; 7,8,9 -> 0.5; 10 -> 0.25
    assert [lr_factor(config, s) for s in (4, 6, 7, 9, 10)] == pytest.approx(
        [1.0, 1.0, 0.5, 0.5, 0.25])


# ---- a full small run ---------------------------------------------------------------------
def test_training_writes_checkpoints_logs_and_the_resolved_config(tmp_path):
    from jointdistill_core.checkpoint import load_checkpoint
    config = load_train_config(tiny_config(tmp_path))
    result = train(config, progress=False)
    out = Path(config.out)
    assert result.steps == 6
    for name in ('last.safetensors', 'last.json', 'best.safetensors', 'best.json',
                 'resume.safetensors', 'config.yaml', 'metrics.csv'):
        assert (out / name).is_file(), name
    assert list((out / 'tensorboard').glob('events.out.tfevents.*'))
    rows = read_csv(out / 'metrics.csv')
    assert [int(r['step']) for r in rows] == [2, 3, 4, 6]
    for column in ('loss/task/seg', 'loss/task/depth', 'loss/total', 'lr', 'images_per_s',
                   'val/miou', 'val/abs_rel', 'val/delta1', 'val/score'):
        assert column in rows[0], column
    logged = rows[0]
    assert float(logged['loss/total']) == pytest.approx(
        float(logged['loss/task/seg']) + float(logged['loss/task/depth']), rel=1e-5)
    # The step-6 validation is stored in last.json and equals the returned metrics.
    model, meta = load_checkpoint(out / 'last')
    assert meta['extra']['step'] == 6 and meta['input_size'] == [64, 128]
    assert meta['extra']['metrics']['miou'] == pytest.approx(result.last_metrics['miou'])
    assert float(rows[-1]['val/score']) == pytest.approx(
        result.last_metrics['miou'] - result.last_metrics['abs_rel'])
    # best = the higher val/score of the two validations
    scores = {int(r['step']): float(r['val/score']) for r in rows if r['val/score']}
    assert json.loads((out / 'best.json').read_text())['extra']['step'] == max(
        scores, key=scores.get)
    assert yaml.safe_load((out / 'config.yaml').read_text())['optim']['lr'] == 2e-3
    # the trained weights differ from a fresh network of the same spec
    from jointdistill_core.models.factory import build_model
    fresh = build_model(model.spec).state_dict()
    assert any(not torch.equal(fresh[k], v) for k, v in model.state_dict().items())


def test_teacher_training_seg_only_logs_only_its_task(tmp_path):
    path = tiny_config(tmp_path, task='seg',
                       model={'arch': 'seg_teacher',
                              'kwargs': {'width': 8, 'blocks': [1, 1, 1, 1]}},
                       steps=2, val_every=2, log_every=1)
    config = load_train_config(path)
    result = train(config, progress=False)
    assert set(result.last_metrics) == {'miou', 'pixel_acc'}
    rows = read_csv(Path(config.out) / 'metrics.csv')
    assert 'loss/task/seg' in rows[0] and 'loss/task/depth' not in rows[0]


def test_teacher_task_with_a_network_lacking_that_output_is_refused(tmp_path):
    path = tiny_config(tmp_path, task='depth',
                       model={'arch': 'seg_teacher',
                              'kwargs': {'width': 8, 'blocks': [1, 1, 1, 1]}})
    with pytest.raises(ConfigError, match='produces no depth'):
        train(load_train_config(path), progress=False)


def test_nonfinite_loss_stops_with_step_and_terms_and_keeps_last_good_checkpoint(
        tmp_path, capsys, nyuv2_like):
    from jointdistill_core.checkpoint import load_checkpoint
    path = tiny_config(tmp_path, steps=40, val_every=1, data=on_disk_data(nyuv2_like))
    code = main(['train', '--config', str(path), '--no-progress', '--set', 'optim.lr=1e6'])
    message = capsys.readouterr().err
    assert code == 2
    assert 'training diverged at step' in message and 'loss/total=' in message
    assert 'loss/task/seg=' in message and 'last good checkpoint' in message
    failed_step = int(message.split('diverged at step ')[1].split(':')[0])
    model, meta = load_checkpoint(tmp_path / 'run' / 'last')
    assert meta['extra']['step'] == failed_step - 1
    assert all(torch.isfinite(v).all() for v in model.state_dict().values()
               if v.is_floating_point())


def test_cli_rejects_bad_config_with_one_line(tmp_path, capsys):
    path = tiny_config(tmp_path, stepz=3)
    assert main(['train', '--config', str(path)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and 'stepz' in error and 'tiny.yaml' in error


@pytest.mark.parametrize('name', ['static_kd', 'jointdistill', 'amalgamation'])
def test_teacher_methods_train_through_the_trainer(tmp_path, nyuv2_like, name):
    """Methods with teachers run inside the trainer: teachers loaded from checkpoints, the
    method's own parameters (adaptors, connector) in their own optimizer group at adaptor_lr,
    set-up batches and per-step logs (teacher weights) for jointdistill."""
    from jointdistill_core.training.trainer import Trainer
    teachers = save_tiny_teachers(tmp_path, num_classes=13)
    params = {'eval_every': 1, 'probe_size': 2} if name == 'jointdistill' else {}
    path = tiny_config(tmp_path, name=f'{name}.yaml', method={'name': name, 'params': params},
                       teachers=teachers, data=on_disk_data(nyuv2_like),
                       steps=2, val_every=2, log_every=1,
                       out=str(tmp_path / name), optim={'lr': 1e-3, 'adaptor_lr': 5e-3})
    trainer = Trainer(load_train_config(path), progress=False)
    result = trainer.run()
    assert result.steps == 2 and math.isfinite(result.best_score), name
    groups = {g['name']: g for g in trainer.optimizer.param_groups}
    assert groups['method']['base_lr'] == 5e-3
    assert len(groups['method']['params']) == sum(1 for _ in trainer.method.parameters())
    assert groups['model']['base_lr'] == 1e-3
    if name == 'jointdistill':
        rows = read_csv(tmp_path / name / 'metrics.csv')
        assert {'method/omega/seg', 'method/omega/depth'} <= set(rows[0])
        omega = float(rows[-1]['method/omega/seg']) + float(rows[-1]['method/omega/depth'])
        assert omega == pytest.approx(2.0)  # renormalised to N = 2 teachers


def test_infinite_loss_at_the_first_step_says_no_checkpoint_exists(tmp_path, capsys):
    # 1e39 overflows float32: the weighted depth term is +inf at once.
    path = tiny_config(tmp_path, method={'name': 'mtl', 'params': {'depth_weight': 1e39}})
    assert main(['train', '--config', str(path), '--no-progress']) == 2
    message = capsys.readouterr().err
    assert 'diverged at step 1: the loss is not finite' in message
    assert 'loss/task/depth=inf' in message and 'No checkpoint had been written yet' in message
    assert not (tmp_path / 'run' / 'last.safetensors').exists()


def test_methods_without_labels_never_receive_labels_or_depth():
    from jointdistill_core.distill.base import DistillMethod
    from jointdistill_core.models.factory import build_model
    from jointdistill_core.training.trainer import LossModule

    class RecordingMethod(DistillMethod):
        name = 'recording'
        uses_labels = False

        def losses(self, batch, student_out, teacher_outs):
            self.seen = sorted(batch)
            return {'zero': student_out.depth.sum() * 0}

    student = build_model({'arch': 'student', **TINY_STUDENT['kwargs']})
    method = RecordingMethod(None, student, 7, 80.0)
    batch = {'image': torch.rand(1, 3, 64, 128), 'labels': torch.zeros(1, 64, 128).long(),
             'depth': torch.ones(1, 1, 64, 128)}
    LossModule(student, method)(batch, {})
    assert method.seen == ['image']
    method.uses_labels = True
    LossModule(student, method)(batch, {})
    assert method.seen == ['depth', 'image', 'labels']


def test_a_missing_cuda_device_is_an_error_not_a_cpu_fallback(tmp_path):
    absent = f'cuda:{torch.cuda.device_count()}'  # one index past the last device, if any
    with pytest.raises(ConfigError, match=f"device: device '{absent}' requested but CUDA"):
        train(load_train_config(tiny_config(tmp_path, device=absent)), progress=False)
    assert not (tmp_path / 'run').exists()


def _logged_losses(out_dir: Path) -> list[float]:
    with open(out_dir / 'metrics.csv') as handle:
        return [float(row['loss/total']) for row in csv.DictReader(handle)
                if row.get('loss/total')]


def test_cpu_mixed_precision_follows_the_fp32_loss_curve(tmp_path):
    """amp on CPU is bf16 autocast where the CPU has native bf16, refused elsewhere; with
    channels_last it tracks the fp32 run's losses step by step."""
    from jointdistill_core.training.trainer import cpu_has_bf16
    fast = tiny_config(tmp_path, 'fast.yaml', amp=True, channels_last=True, device='cpu',
                       out=str(tmp_path / 'fast'), log_every=1)
    if not cpu_has_bf16():
        with pytest.raises(ConfigError, match='bf16'):
            train(load_train_config(fast), progress=False)
        return
    train(load_train_config(fast), progress=False)
    train(load_train_config(tiny_config(tmp_path, 'fp32.yaml', device='cpu', log_every=1,
                                        out=str(tmp_path / 'fp32'))), progress=False)
    bf16, fp32 = _logged_losses(tmp_path / 'fast'), _logged_losses(tmp_path / 'fp32')
    assert len(bf16) == len(fp32) == 6
    assert bf16[0] != fp32[0]  # the bf16 run really computed in another precision
    np.testing.assert_allclose(bf16, fp32, rtol=0.05)


def test_shipped_configs_load_and_name_existing_teachers():
    from conftest import REPO_ROOT
    from jointdistill_core.distill import METHODS, method_params
    configs = sorted((REPO_ROOT / 'config' / 'train').glob('*.yaml'))
    names = {path.stem for path in configs}
    assert {'teacher_seg', 'teacher_depth'} | set(METHODS) <= names
    for path in configs:
        config = load_train_config(path)
        method_params(config.method.name, config.method.params, str(path))
        needed = METHODS[config.method.name].teachers_needed if config.task == 'multi' else ()
        for task in needed:
            teacher = getattr(config.teachers, task)
            assert teacher is not None, (path.name, task)
            assert (REPO_ROOT / teacher.path).is_file(), (path.name, teacher.path)
    students = [load_train_config(p) for p in configs if not p.stem.startswith('teacher_')]
    budgets = {(c.steps, c.data.batch_size, c.data.size, c.optim.lr, c.seed) for c in students}
    assert len(budgets) == 1  # every method gets the same budget


def test_real_camera_recipe_configs_agree_on_the_camera_and_the_data():
    """config/train/real: the teachers, the shipped student and the ablation baseline share
    the canonical camera, the data size and the mixed data (the depth teacher: synthetic
    only, the only source of metric depth)."""
    from conftest import REPO_ROOT
    from jointdistill_core.data.mixed import split_mixed_spec
    from jointdistill_core.distill import method_params
    folder = REPO_ROOT / 'config' / 'train' / 'real'
    configs = {path.stem: load_train_config(path) for path in folder.glob('*.yaml')}
    assert set(configs) == {'teacher_seg', 'teacher_depth', 'mtl', 'jointdistill'}
    for name, config in configs.items():
        method_params(config.method.name, config.method.params, name)
        assert config.data.size == '192x256' and config.amp and config.channels_last, name
    for name in ('teacher_depth', 'mtl', 'jointdistill'):
        kwargs = configs[name].model.kwargs
        assert kwargs['canonical_focal_px'] == 300.0 and kwargs['max_depth'] == 400.0, name
    assert configs['teacher_depth'].data.spec == 'synthetic:data/synth'
    sources = [part for part, _ in split_mixed_spec(configs['jointdistill'].data.spec)]
    assert sources == ['synthetic:data/synth', 'camvid:data/CamVid']
    assert configs['teacher_seg'].data.spec == configs['jointdistill'].data.spec
    student = configs['jointdistill']
    assert student.teachers.seg.path == 'models/teacher_seg.safetensors'
    assert student.teachers.depth.path == 'models/teacher_depth.safetensors'


def test_nonfinite_tensors_names_exactly_the_broken_tensors():
    big = torch.full((4,), 3e38)  # finite float32 near its maximum: a float32 sum would overflow
    state = {'ok': torch.ones(3), 'big': big, 'count': torch.tensor(7),
             'half': torch.ones(2, dtype=torch.float16)}
    assert nonfinite_tensors(state) == [] and nonfinite_tensors({}) == []
    broken = {**state, 'nan': torch.tensor([1.0, math.nan]), 'up': torch.tensor([math.inf]),
              'down': torch.tensor([-math.inf, 2.0]),
              'half_inf': torch.tensor([math.inf], dtype=torch.float16)}
    # +inf and -inf in different tensors must not cancel out.
    assert nonfinite_tensors(broken) == ['nan', 'up', 'down', 'half_inf']
    assert nonfinite_tensors({'up': torch.tensor([math.inf]),
                              'down': torch.tensor([-math.inf])}) == ['up', 'down']
