"""`jointdistill distill`: the plan (method, metric scale, student camera, feature terms),
the end-to-end command from bags the project makes (Image and CompressedImage topics) with
transformers teachers built from configurations (random weights) and with labelled data, the
report, and torchrun (on a folder of frames)."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import REPO_ROOT
from jointdistill_core.cli import main
from jointdistill_core.config import ConfigError
from jointdistill_core.data.registry import build_dataset
from jointdistill_core.provenance import folder_sha256
from jointdistill_core.training.config import TeacherConfig
from jointdistill_core.training.distill import DistillRequest, mixed_with, plan_distillation
from teacher_fixtures import export_onnx, save_hf_model
from test_trainer import save_tiny_teachers

SIZE = (64, 128)
TINY = ['--set', 'model.kwargs.width_mult=0.25',
        '--set', 'model.kwargs.decoder_channels=[16,16,16]']


def write_frames(root: Path, count: int = 12) -> Path:
    """An image folder of unlabelled frames (synthetic street scenes), named in time order."""
    (root / 'rgb').mkdir(parents=True)
    dataset, _ = build_dataset('synthetic', 'val', size=SIZE, num_frames=count)
    for index in range(count):
        image = (dataset[index]['image'].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        cv2.imwrite(str(root / 'rgb' / f'{index:04d}.png'), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return root


@pytest.fixture(scope='module')
def setting(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp('distill')
    teachers = save_tiny_teachers(root)
    return {'root': root, 'frames': write_frames(root / 'frames'),
            'seg': teachers['seg']['path'], 'depth': teachers['depth']['path'],
            'segformer': save_hf_model('segformer', root / 'segformer'),
            'depth_anything': save_hf_model('depth_anything', root / 'depth_anything')}


def request(data: str, seg: dict, depth: dict, **changes) -> DistillRequest:
    return DistillRequest(data=data, seg=TeacherConfig(**seg), depth=TeacherConfig(**depth),
                          out='unused', size=SIZE, **changes)


def test_unlabelled_frames_with_a_relative_teacher_mix_in_synthetic_depth(setting):
    data = f'folder:{setting["frames"]}?val=0.25'
    plan = plan_distillation(request(
        data, {'path': str(setting['segformer']), 'class_map': 'cityscapes19_to_7'},
        {'path': str(setting['depth_anything'])}))
    config = plan.config
    assert config.method.name == 'amalgamation'
    assert config.method.params['depth_label_weight'] == 1.0
    # 30 % synthetic: weight 1 * 0.3 / 0.7 next to the frames' 1.
    assert config.data.spec == f'{data},synthetic@0.428571'
    assert config.data.val_spec == data  # evaluated on the held-back frames only
    assert config.model.kwargs['canonical_focal_px'] == 300.0
    assert 'synthetic, mixed in as 30% of the training samples' in plan.depth_scale
    assert (plan.held_back.labels, plan.held_back.depth) == (False, False)


def test_a_metric_teacher_gives_the_scale_and_a_student_of_the_recordings_camera(setting):
    plan = plan_distillation(request(f'folder:{setting["frames"]}?val=0.25',
                                     {'path': setting['seg']}, {'path': setting['depth']}))
    assert plan.config.method.name == 'amalgamation'
    assert plan.config.data.spec == f'folder:{setting["frames"]}?val=0.25'  # nothing mixed in
    assert 'canonical_focal_px' not in plan.config.model.kwargs
    assert 'depth_label_weight' not in plan.config.method.params
    assert plan.depth_scale == 'the metric depth teacher teacher_depth.safetensors'


def test_labelled_data_selects_jointdistill_and_onnx_teachers_drop_the_feature_terms(
        setting, tmp_path):
    plan = plan_distillation(request('synthetic', {'path': setting['seg']},
                                     {'path': setting['depth']}))
    assert plan.config.method.name == 'jointdistill'
    assert 'fusion' not in plan.config.method.params
    onnx_seg = export_onnx(Path(setting['seg']), tmp_path / 'seg.onnx', '64x128')
    plan = plan_distillation(request('synthetic', {'path': str(onnx_seg)},
                                     {'path': setting['depth']}))
    assert plan.config.method.params['fusion'] is False
    plan = plan_distillation(request(f'folder:{setting["frames"]}?val=0.25',
                                     {'path': str(onnx_seg)}, {'path': setting['depth']}))
    assert plan.config.method.params['lambda_feat'] == 0.0


def test_plan_errors_name_the_option(setting):
    teachers = ({'path': setting['seg']}, {'path': setting['depth']})
    with pytest.raises(ConfigError, match='--scale-weight must be in'):
        plan_distillation(request('synthetic', *teachers, scale_weight=1.0))
    with pytest.raises(ConfigError, match='depth teacher: path: .*nowhere.onnx: not found'):
        plan_distillation(request('synthetic', teachers[0], {'path': 'nowhere.onnx'}))
    with pytest.raises(ConfigError, match='--data: .*option val must be a fraction'):
        plan_distillation(request(f'folder:{setting["frames"]}?val=2', *teachers))
    with pytest.raises(ConfigError, match='--method jointdistill weighs its teachers'):
        plan_distillation(request(f'folder:{setting["frames"]}?val=0.25', *teachers,
                                  method='jointdistill'))
    with pytest.raises(ConfigError, match='optim.lr'):
        plan_distillation(request('synthetic', *teachers, overrides=['optim.lr=-1']))
    assert mixed_with('a@2,b', 'synthetic', 0.5) == 'a@2,b,synthetic@3'


@pytest.fixture(scope='module')
def bags(setting) -> dict[str, Path]:
    """Bags the project makes: the image as a raw Image topic and as a JPEG CompressedImage
    topic, with camera_info and ground truth."""
    made = {}
    for name, extra in (('image', []), ('compressed', ['--compressed', 'jpeg'])):
        made[name] = setting['root'] / f'bag_{name}'
        assert main(['bag', 'make', '--out', str(made[name]), '--frames', '12', '--size',
                     '64x128', *extra]) == 0
    return made


@pytest.mark.slow  # trains through the trainer
@pytest.mark.parametrize('topic', ['image', 'compressed'])
def test_distill_transformers_teachers_label_free_from_a_bag(setting, bags, topic, tmp_path,
                                                             capsys):
    """SegFormer (19 classes through the Cityscapes map) and Depth Anything (relative inverse)
    from transformers folders, trained from a bag the project makes with its ground truth
    ignored: label-free, the scale from synthetic frames, evaluated by agreement on the
    held-back quarter; provenance, card, report and the launch line."""
    out = tmp_path / 'out'
    data = f'bag:{bags[topic]}?depth=none&labels=none&val=0.25'
    assert main(['distill', '--data', data, '--seg-teacher', str(setting['segformer']),
                 '--seg-opt', 'class_map=cityscapes19_to_7',
                 '--depth-teacher', str(setting['depth_anything']), '--out', str(out),
                 '--steps', '2', '--size', '64x128', '--batch-size', '2', '--no-progress',
                 *TINY]) == 0
    printed = capsys.readouterr().out
    assert printed.rstrip().endswith(f'ros2 launch jointdistill_ros jointdistill.launch.py '
                                     f'model_path:={out / "best.safetensors"}')
    record = json.loads((out / 'best.json').read_text())['extra']['provenance']
    seg, depth = record['teachers']['seg'], record['teachers']['depth']
    assert (seg['kind'], seg['architecture']) == ('transformers',
                                                  'SegformerForSemanticSegmentation')
    assert seg['sha256'] == folder_sha256(setting['segformer'])
    class_map = REPO_ROOT / 'config' / 'class_maps' / 'cityscapes19_to_7.yaml'
    assert seg['class_map'] == 'cityscapes19_to_7'
    assert seg['class_map_sha256'] == hashlib.sha256(class_map.read_bytes()).hexdigest()
    assert depth['depth_kind'] == 'relative_inverse'
    assert record['data']['val_spec'] == data and 'synthetic@' in record['data']['spec']
    assert 'synthetic' in record['depth_scale'] and record['command'].startswith(
        'jointdistill distill --data')

    evaluation = json.loads((out / 'evaluation.json').read_text())
    (heading, metrics), = evaluation.items()  # no ground truth: agreement only
    assert heading.startswith('Agreement with the teachers on the held-back frames (3 frames')
    assert set(metrics) == {'agreement_miou', 'agreement_pixel_acc', 'agreement_ssi'}
    assert 0 <= metrics['agreement_pixel_acc'] <= 1 and 0 <= metrics['agreement_ssi'] <= 2
    figure = cv2.imread(str(out / 'report.png'))
    assert figure.shape[0] == 6 * SIZE[0] + 7 * 4  # 3 held-back frames x (teachers, student)
    card = (out / 'model_card.md').read_text()
    for text in (seg['sha256'], depth['sha256'], 'relative_inverse', 'cityscapes19_to_7',
                 'agreement_ssi', 'model_path:=', record['depth_scale']):
        assert text in card
    assert '## Validation metrics' not in card  # nothing to validate against
    assert '![held-back frames](report.png)' in (out / 'report.md').read_text()


@pytest.mark.slow  # trains through the trainer
def test_distill_from_a_labelled_bag_evaluates_against_its_ground_truth(setting, bags,
                                                                       tmp_path):
    out = tmp_path / 'out'
    data = f'bag:{bags["compressed"]}?val=0.25'
    assert main(['distill', '--data', data, '--seg-teacher', setting['seg'],
                 '--depth-teacher', setting['depth'], '--out', str(out), '--steps', '2',
                 '--size', '64x128', '--batch-size', '2', '--no-progress', *TINY,
                 '--set', 'method.params.eval_every=1', '--set', 'method.params.probe_size=2',
                 '--set', 'method.params.topk=8', '--set', 'method.params.buffer_size=2',
                 '--set', 'method.params.connector_channels=8']) == 0
    evaluation = json.loads((out / 'evaluation.json').read_text())
    truth = next(m for h, m in evaluation.items() if h.startswith('Held-back ground truth'))
    assert {'miou', 'abs_rel', 'delta1', 'constant_abs_rel'} <= set(truth)
    agreement = next(m for h, m in evaluation.items() if h.startswith('Agreement'))
    assert {'agreement_abs_rel', 'agreement_delta1'} <= set(agreement)  # a metric teacher
    config = json.loads((out / 'best.json').read_text())['extra']['train_config']
    assert config['method']['name'] == 'jointdistill'  # the bag has labels and depth
    assert config['data']['spec'] == data  # nothing mixed in: a metric teacher
    assert main(['distill', '--data', data, '--seg-teacher', setting['seg'],
                 '--depth-teacher', setting['depth'], '--out', str(out)]) == 2  # no overwrite


@pytest.mark.slow  # two processes
def test_distill_under_torchrun_reports_once(setting, tmp_path):
    out = tmp_path / 'ddp'
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONUNBUFFERED': '1'}
    command = [sys.executable, '-m', 'torch.distributed.run', '--standalone',
               '--nproc_per_node=2', '-m', 'jointdistill_core', 'distill', '--data',
               f'folder:{setting["frames"]}?val=0.25', '--seg-teacher', setting['seg'],
               '--depth-teacher', setting['depth'], '--out', str(out), '--steps', '2',
               '--size', '64x128', '--batch-size', '2', '--no-progress', *TINY]
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stdout.count('ros2 launch jointdistill_ros') == 1  # rank 0 only
    assert result.stdout.count('distill: method amalgamation') == 1
    assert len((out / 'metrics.csv').read_text().splitlines()) == 2 + 1  # rank 0 logs
    assert (out / 'report.png').is_file() and (out / 'model_card.md').is_file()
