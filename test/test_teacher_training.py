"""Foreign teachers inside the trainer: transformers folders distilled with static_kd and
jointdistill (features and all), a relative depth teacher, the configuration errors that name
the teacher option, and a test-sized comparison of a student distilled through the adapters
with one distilled through the built-in path.
"""
from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import load_file

from jointdistill_core.config import ConfigError
from jointdistill_core.distill import build_method
from jointdistill_core.training import load_train_config
from jointdistill_core.training.trainer import Trainer
from teacher_fixtures import CATEGORY_POSITIONS, export_onnx, save_hf_model, widen_seg_onnx
from test_trainer import read_csv, save_tiny_teachers, tiny_config

HF_TEACHERS = {'seg': ('segformer', {'class_map': 'cityscapes19_to_7'}),
               'depth': ('depth_anything', {})}


@pytest.fixture(scope='module')
def hf_teachers(tmp_path_factory) -> dict:
    """The `teachers` config section: SegFormer (19 classes, through the Cityscapes map) and
    Depth Anything (relative inverse depth), saved as transformers folders."""
    root = tmp_path_factory.mktemp('hf_teachers')
    return {task: {'path': str(save_hf_model(name, root / name)), **options}
            for task, (name, options) in HF_TEACHERS.items()}


def run(tmp_path, name: str, method: dict, teachers: dict, **sections) -> Trainer:
    path = tiny_config(tmp_path, name=f'{name}.yaml', method=method, teachers=teachers,
                       out=str(tmp_path / name), **{'steps': 2, 'val_every': 2,
                                                    'log_every': 1, **sections})
    trainer = Trainer(load_train_config(path), progress=False)
    trainer.run()
    return trainer


@pytest.mark.slow  # trains through the trainer
def test_static_kd_distils_transformers_features_and_a_relative_depth_teacher(
        tmp_path, hf_teachers):
    trainer = run(tmp_path, 'static_kd', {'name': 'static_kd',
                                          'params': {'logit_kd_weight': 0.5}}, hf_teachers)
    adaptors = trainer.method.adaptors
    # Sized from the teachers' features: SegFormer's last encoder stage (32 channels) and
    # decoder (32); Depth Anything's coarsest reassembled map (32) and fusion output (16).
    assert {key: conv.out_channels for key, conv in adaptors.items()} == \
        {'seg_enc': 32, 'seg_dec': 32, 'depth_enc': 32, 'depth_dec': 16}
    rows = read_csv(tmp_path / 'static_kd' / 'metrics.csv')
    for term in ('kd/feat_seg', 'kd/feat_depth', 'kd/logit_seg', 'kd/logit_depth'):
        values = [float(row[f'loss/{term}']) for row in rows if row.get(f'loss/{term}')]
        assert values and all(math.isfinite(v) and v > 0 for v in values), term
    # Every synthetic frame has depth, so the relative teacher's term is anchored to it
    # (test_distill_losses.py has its arithmetic); kd/logit_depth is then in metres.


@pytest.mark.slow  # trains through the trainer
def test_jointdistill_fuses_transformers_teachers_and_aligns_the_relative_one(
        tmp_path, hf_teachers):
    params = {'eval_every': 1, 'probe_size': 2}
    trainer = run(tmp_path, 'jointdistill', {'name': 'jointdistill', 'params': params},
                  hf_teachers)
    method = trainer.method
    assert method.connector.trunk[0].in_channels == 32 + 16  # SegFormer + Depth Anything
    assert method.depth_kind == 'relative_inverse'
    teacher_miou, teacher_abs_rel = method.teacher_metrics
    # Aligned per image to the labels, even a random disparity network has a finite error.
    assert 0 <= teacher_miou <= 1 and 0 < teacher_abs_rel < 10
    rows = read_csv(tmp_path / 'jointdistill' / 'metrics.csv')
    for term in ('kd/seg', 'kd/depth', 'connector/seg', 'connector/depth'):
        assert all(math.isfinite(float(row[f'loss/{term}'])) for row in rows
                   if row.get(f'loss/{term}')), term
    assert all(math.isfinite(float(row['method/ability/depth'])) for row in rows
               if row.get('method/ability/depth'))


def test_relative_teacher_losses_are_zero_on_frames_without_depth(tmp_path, hf_teachers):
    """Label-free frames carry all-zero depth: the connector's and the task's depth terms
    are 0 and finite; the student still distils the relative teacher's shape."""
    from jointdistill_core.teachers import build_teacher
    from jointdistill_core.training.config import TeacherConfig
    from test_distill_methods import street_batch, tiny_models
    student, _ = tiny_models()
    teachers = {task: build_teacher(TeacherConfig(**spec), task)
                for task, spec in hf_teachers.items()}
    method = build_method('jointdistill', {'adaptive_weights': False, 'trajectory': False},
                          student, 7, 20.0)
    batch = street_batch(2)
    method.setup(batch, batch, teachers)
    unlabelled = {**batch, 'depth': torch.zeros_like(batch['depth'])}
    student_out = student(batch['image'])
    teacher_outs = {task: t(batch['image']) for task, t in teachers.items()}
    terms = method.losses(unlabelled, student_out, teacher_outs)
    assert terms['connector/depth'].item() == 0.0 and terms['task/depth'].item() == 0.0
    assert terms['kd/depth'].item() > 0
    sum(terms.values()).backward()
    assert all(torch.isfinite(p.grad).all() for p in student.parameters() if p.grad is not None)


@pytest.mark.slow  # trains through the trainer
def test_amalgamation_takes_a_relative_depth_teacher_only_with_depth_labels(tmp_path,
                                                                          hf_teachers):
    with pytest.raises(ConfigError, match='teachers.depth.depth_kind: amalgamation with '
                                          'depth_label_weight 0 reads no ground truth, so '
                                          'with a relative_inverse'):
        run(tmp_path, 'amalgamation', {'name': 'amalgamation'}, hf_teachers)
    run(tmp_path, 'scaled', {'name': 'amalgamation', 'params': {'depth_label_weight': 1.0}},
        hf_teachers)
    rows = read_csv(tmp_path / 'scaled' / 'metrics.csv')
    label_terms = [float(row['loss/amal/depth_labels']) for row in rows
                   if row.get('loss/amal/depth_labels')]
    assert label_terms and all(v > 0 for v in label_terms)  # synthetic frames have depth


@pytest.mark.slow  # trains through the trainer
def test_feature_methods_with_prediction_only_teachers_name_the_methods(tmp_path):
    checkpoints = save_tiny_teachers(tmp_path)
    seg_onnx = export_onnx(tmp_path / 'teacher_seg.safetensors', tmp_path / 'seg.onnx', '64x128')
    teachers = {**checkpoints, 'seg': {'path': str(seg_onnx)}}
    with pytest.raises(ConfigError, match=r"teachers.seg: the seg teacher \(onnx.*returns no "
                                          r"feature\(s\) \['enc', 'dec_seg'\].*static_kd, "
                                          'jointdistill with fusion'):
        run(tmp_path, 'static_kd', {'name': 'static_kd'}, teachers)
    trainer = run(tmp_path, 'jd_nofusion', {'name': 'jointdistill',
                                            'params': {'fusion': False, 'eval_every': 1,
                                                       'probe_size': 2}}, teachers)
    assert trainer.method.connector is None and trainer.step == 2


def test_teacher_options_are_checked_when_the_config_loads(tmp_path):
    bad = [({'path': 'x', 'output_stride': 0}, 'teachers.seg.output_stride: must be >= 1'),
           ({'path': 'x', 'depth_kind': 'relative'}, 'teachers.seg.depth_kind: applies to depth'),
           ({'path': 'x', 'depth_kind': 'disparity'}, "teachers.seg.depth_kind: 'disparity' is "
                                                      'not one of'),
           ({'path': 'x', 'input_size': '64by128'}, 'teachers.seg.input_size'),
           ({'path': 'x', 'kind': 'pickle'}, "teachers.seg.kind: 'pickle' is not one of"),
           ({'path': 'x', 'mean': [0.5]}, 'teachers.seg.mean: must list 3 values')]
    for teacher, message in bad:
        path = tiny_config(tmp_path, method={'name': 'xdistill'}, teachers={'seg': teacher})
        with pytest.raises(ConfigError, match=message):
            load_train_config(path)


def test_build_time_errors_name_the_teacher_option(tmp_path, hf_teachers):
    no_map = {**hf_teachers, 'seg': {'path': hf_teachers['seg']['path']}}
    with pytest.raises(ConfigError, match='teachers.seg.class_map: seg teacher .* returns 19 '
                                          'classes, the student has 7'):
        run(tmp_path, 'xdistill', {'name': 'xdistill'}, no_map)
    wrong_kind = {'seg': {'path': hf_teachers['seg']['path'], 'kind': 'onnx'}}
    with pytest.raises(ConfigError, match='teachers.seg.path: .*not a valid ONNX model'):
        run(tmp_path, 'xdistill', {'name': 'xdistill'}, wrong_kind)


@pytest.mark.slow  # trains through the trainer
def test_student_through_adapters_matches_the_builtin_path(tmp_path):
    """Test-sized: xdistill from the project's seg teacher, once as its checkpoint and once as
    a 19-class ONNX file through the Cityscapes class map. Same seed, same data: the
    students end equal up to ONNX's float rounding."""
    checkpoints = save_tiny_teachers(tmp_path)
    exported = export_onnx(tmp_path / 'teacher_seg.safetensors', tmp_path / 'seg.onnx', '64x128')
    wide = widen_seg_onnx(exported, tmp_path / 'seg19.onnx', CATEGORY_POSITIONS, 19, -1e4)
    students = {}
    for name, seg in (('builtin', checkpoints['seg']),
                      ('adapted', {'path': str(wide), 'class_map': 'cityscapes19_to_7'})):
        run(tmp_path, name, {'name': 'xdistill'}, {'seg': seg}, steps=4, val_every=4)
        students[name] = load_file(tmp_path / name / 'last.safetensors')
    differences = [(students['builtin'][key].float() - value.float()).abs().max().item()
                   for key, value in students['adapted'].items()]
    assert max(differences) < 1e-3
    logs = {name: [float(row['loss/total']) for row in read_csv(tmp_path / name / 'metrics.csv')]
            for name in students}
    assert logs['adapted'] == pytest.approx(logs['builtin'], rel=1e-4)
    assert len(set(logs['builtin'])) == len(logs['builtin']) == 4  # it did train


def test_a_canonical_student_takes_relative_teachers_but_not_foreign_metric_ones(
        tmp_path, hf_teachers):
    """Relative depth has no scale, so it fits any camera convention; a foreign metric
    teacher predicts depth for the input camera, which a canonical student does not."""
    from test_trainer import TINY_STUDENT
    model = {'arch': 'student', 'kwargs': {**TINY_STUDENT['kwargs'], 'canonical_focal_px': 300.0}}
    metric_depth = {'path': hf_teachers['depth']['path'], 'depth_kind': 'metric'}
    for name, depth in (('relative', hf_teachers['depth']), ('metric', metric_depth)):
        path = tiny_config(tmp_path, name=f'{name}.yaml', method={'name': 'static_kd'},
                           model=model, teachers={**hf_teachers, 'depth': depth})
        trainer = Trainer(load_train_config(path), progress=False)
        if name == 'relative':
            trainer.setup()
            assert trainer.teachers['depth'].depth_kind == 'relative_inverse'
            continue
        with pytest.raises(ConfigError, match='teachers.depth.path: the teacher predicts depth '
                                              'for the input as given .* but the student for a '
                                              'canonical camera'):
            trainer.setup()
