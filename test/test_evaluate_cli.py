"""`jointdistill evaluate`: metrics equal an independent computation; JSON, Markdown, PNG."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from jointdistill_core.checkpoint import save_checkpoint
from jointdistill_core.cli import main
from jointdistill_core.models.factory import build_model
from test_trainer import nyuv2_like

__all__ = ['nyuv2_like']  # the fixture, imported so pytest finds it here


@pytest.fixture
def tiny_student(tmp_path):
    torch.manual_seed(5)
    model = build_model({'arch': 'student', 'width_mult': 0.25, 'decoder_channels': [16, 16, 16],
                         'num_classes': 13, 'max_depth': 12.0}).eval()
    save_checkpoint(tmp_path / 'student', model, {'input_size': [64, 128]})
    return model


def _reference_metrics(model, root, split: str, count: int) -> dict:
    """Pooled metrics computed here with plain numpy from the .npy files (not via the
    metrics module): a confusion matrix for mIoU, sums for depth."""
    confusion = np.zeros((13, 13), np.int64)
    abs_sum = rel_sum = sq_sum = 0.0
    within = valid = 0
    for i in range(count):
        image = np.load(root / split / 'image' / f'{i}.npy')
        labels = np.load(root / split / 'label' / f'{i}.npy').astype(np.int64)
        depth = np.load(root / split / 'depth' / f'{i}.npy').astype(np.float64)
        with torch.no_grad():
            out = model(torch.from_numpy(image).permute(2, 0, 1)[None].float())
        predicted = out.seg_logits.argmax(1)[0].numpy()
        np.add.at(confusion, (labels.ravel(), predicted.ravel()), 1)
        prediction = out.depth[0, 0].double().numpy()
        error = np.abs(prediction - depth)
        abs_sum += error.sum()
        rel_sum += (error / depth).sum()
        sq_sum += (error ** 2).sum()
        within += (np.maximum(prediction / depth, depth / prediction) < 1.25).sum()
        valid += depth.size
    tp = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - tp
    present = union > 0
    return {'miou': (tp[present] / union[present]).mean(), 'pixel_acc': tp.sum() / valid,
            'abs_err': abs_sum / valid, 'abs_rel': rel_sum / valid,
            'rmse': np.sqrt(sq_sum / valid), 'delta1': within / valid}


def test_evaluate_writes_metrics_table_and_samples(tmp_path, nyuv2_like, tiny_student, capsys):
    out = tmp_path / 'eval'
    code = main(['evaluate', '--checkpoint', str(tmp_path / 'student.safetensors'),
                 '--data', f'nyuv2:{nyuv2_like}', '--split', 'val', '--num', '3',
                 '--batch-size', '2', '--out', str(out)])
    assert code == 0
    report = json.loads((out / 'metrics.json').read_text())
    assert report['frames'] == 3 and report['split'] == 'val'
    expected = _reference_metrics(tiny_student, nyuv2_like, 'val', 3)
    for key, value in expected.items():
        assert report['metrics'][key] == pytest.approx(value, rel=1e-5), key
    markdown = (out / 'metrics.md').read_text()
    assert '| miou |' in markdown and f'{100 * expected["miou"]:.2f} %' in markdown
    printed = capsys.readouterr().out
    assert '| abs_rel |' in printed
    picture = cv2.imread(str(out / 'samples.png'))
    # 3 frames (rows) x 5 tiles (image, gt labels, labels, gt depth, depth) of 64x128
    assert picture.shape == (3 * 64, 5 * 128, 3)
    assert picture.std() > 0


def test_evaluate_a_depth_teacher_reports_depth_only(tmp_path, nyuv2_like):
    torch.manual_seed(0)
    teacher = build_model({'arch': 'depth_teacher', 'width': 8, 'blocks': [1, 1, 1, 1]})
    save_checkpoint(tmp_path / 'depth', teacher, {'input_size': [64, 128]})
    out = tmp_path / 'eval'
    assert main(['evaluate', '--checkpoint', str(tmp_path / 'depth'), '--data',
                 f'nyuv2:{nyuv2_like}', '--split', 'test', '--out', str(out)]) == 0
    metrics = json.loads((out / 'metrics.json').read_text())['metrics']
    assert set(metrics) == {'abs_err', 'abs_rel', 'rmse', 'delta1', 'delta2', 'delta3'}
    assert cv2.imread(str(out / 'samples.png')).shape[1] == 3 * 128


def test_evaluate_errors_are_one_line_and_name_the_culprit(tmp_path, nyuv2_like, tiny_student,
                                                           capsys):
    checkpoint = str(tmp_path / 'student.safetensors')
    assert main(['evaluate', '--checkpoint', str(tmp_path / 'missing.safetensors'),
                 '--data', 'synthetic', '--out', str(tmp_path / 'e1')]) == 2
    assert 'missing.safetensors' in capsys.readouterr().err
    assert main(['evaluate', '--checkpoint', checkpoint, '--data', 'nowhere:/x',
                 '--out', str(tmp_path / 'e2')]) == 2
    assert 'nowhere' in capsys.readouterr().err
    # the synthetic set has 7 classes, the checkpoint predicts 13
    assert main(['evaluate', '--checkpoint', checkpoint, '--data', 'synthetic', '--num', '1',
                 '--size', '64x128', '--out', str(tmp_path / 'e3')]) == 2
    assert '13 classes' in capsys.readouterr().err
    assert main(['evaluate', '--checkpoint', checkpoint, '--data', f'nyuv2:{nyuv2_like}',
                 '--size', '64by128', '--out', str(tmp_path / 'e4')]) == 2
    assert '--size' in capsys.readouterr().err
    assert not (tmp_path / 'e4').exists()


def _write_depth_folder(root, sizes, depth_per_frame) -> None:
    """A folder dataset of frames of different sizes, each with one constant ground-truth
    depth and its own K."""
    rng = np.random.default_rng(2)
    for name in ('rgb', 'depth', 'K'):
        (root / name).mkdir(parents=True)
    for i, ((height, width), metres) in enumerate(zip(sizes, depth_per_frame)):
        cv2.imwrite(str(root / 'rgb' / f'{i}.png'),
                    rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
        np.save(root / 'depth' / f'{i}.npy', np.full((height, width), metres, np.float32))
        np.save(root / 'K' / f'{i}.npy', np.array([[200.0 + 100 * i, 0, width / 2],
                                                   [0, 200.0 + 100 * i, height / 2],
                                                   [0, 0, 1]]))


def test_predictor_protocol_scores_each_frame_at_its_size_with_its_K(tmp_path):
    from jointdistill_core.inference import Predictor
    torch.manual_seed(3)
    model = build_model({'arch': 'student', 'width_mult': 0.25, 'decoder_channels': [16, 16, 16],
                         'canonical_focal_px': 150.0}).eval()
    save_checkpoint(tmp_path / 'canonical', model, {'input_size': [64, 128]})
    root = tmp_path / 'frames'
    _write_depth_folder(root, [(60, 200), (90, 120)], [4.0, 9.0])
    data = f'folder:{root}'
    assert main(['evaluate', '--checkpoint', str(tmp_path / 'canonical'), '--data', data,
                 '--out', str(tmp_path / 'batched')]) == 2  # sizes differ: cannot batch
    assert main(['evaluate', '--checkpoint', str(tmp_path / 'canonical'), '--data', data,
                 '--protocol', 'predictor', '--out', str(tmp_path / 'eval')]) == 0
    metrics = json.loads((tmp_path / 'eval' / 'metrics.json').read_text())['metrics']
    assert 'miou' not in metrics  # the folder has no labels
    assert metrics['constant_abs_rel'] == pytest.approx(0.0)  # depth is constant per frame
    predictor = Predictor.from_model(model, (64, 128), device='cpu')
    relative, ratios, aligned = [], [], []
    for i, truth in enumerate((4.0, 9.0)):
        image = cv2.cvtColor(cv2.imread(str(root / 'rgb' / f'{i}.png')), cv2.COLOR_BGR2RGB)
        depth = predictor.predict(image, np.load(root / 'K' / f'{i}.npy')).depth
        relative.append(np.abs(depth - truth).ravel() / truth)
        ratios.append(np.median(depth) / truth)
        aligned.append(np.abs(depth / ratios[-1] - truth).ravel() / truth)
    assert metrics['abs_rel'] == pytest.approx(float(np.concatenate(relative).mean()), rel=1e-5)
    # Scale and shape apart: the median of the two frames' ratios (the mean of two), and the
    # error left once each frame is divided by its own.
    assert metrics['scale_ratio'] == pytest.approx(float(np.mean(ratios)), rel=1e-5)
    assert metrics['scale_aligned_abs_rel'] == pytest.approx(
        float(np.concatenate(aligned).mean()), rel=1e-4)
    assert metrics['scale_aligned_abs_rel'] < metrics['abs_rel']
    assert (tmp_path / 'eval' / 'samples.png').is_file()


def test_camera_height_rescales_each_frame_to_its_ground_under_the_predictor_protocol(
        tmp_path, capsys):
    """The shipped student on two rendered streets (a road to fit in each): the metrics with
    --camera-height are those of the Predictor's rescaled depth, not of its plain depth."""
    from conftest import REPO_ROOT
    from jointdistill_core.data.synthetic import SceneMix, render_scene
    from jointdistill_core.inference import Predictor
    root = tmp_path / 'frames'
    for name in ('rgb', 'depth', 'K'):
        (root / name).mkdir(parents=True)
    scenes = [render_scene(seed, 192, 256, SceneMix.parse('road=1'), (60.0, 60.0),
                           camera_effects=False) for seed in (21, 22)]
    for i, scene in enumerate(scenes):
        cv2.imwrite(str(root / 'rgb' / f'{i}.png'), cv2.cvtColor(scene.image, cv2.COLOR_RGB2BGR))
        np.save(root / 'depth' / f'{i}.npy', scene.depth.astype(np.float32))
        np.save(root / 'K' / f'{i}.npy', scene.K)
    checkpoint = str(REPO_ROOT / 'models' / 'jointdistill_student')
    data = f'folder:{root}'
    assert main(['evaluate', '--checkpoint', checkpoint, '--data', data, '--camera-height', '1.5',
                 '--out', str(tmp_path / 'network')]) == 2
    assert '--camera-height belongs to the predictor protocol' in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: usage and the reason, exit status 2
        main(['evaluate', '--checkpoint', checkpoint, '--data', data, '--camera-height', '-1',
              '--out', str(tmp_path / 'negative')])
    assert 'must be > 0' in capsys.readouterr().err
    assert main(['evaluate', '--checkpoint', checkpoint, '--data', data, '--protocol',
                 'predictor', '--camera-height', '1.5', '--out', str(tmp_path / 'eval')]) == 0
    report = json.loads((tmp_path / 'eval' / 'metrics.json').read_text())
    assert report['camera_height'] == 1.5
    predictor = Predictor.from_checkpoint(checkpoint, device='cpu')
    scaled, plain = [], []
    for i, scene in enumerate(scenes):
        image = cv2.cvtColor(cv2.imread(str(root / 'rgb' / f'{i}.png')), cv2.COLOR_BGR2RGB)
        K, valid = np.load(root / 'K' / f'{i}.npy'), scene.depth > 0
        prediction = predictor.predict(image, K, 1.5)
        assert prediction.ground_scale is not None  # the road fitted in this frame
        scaled.append(np.abs(prediction.depth - scene.depth)[valid] / scene.depth[valid])
        unscaled = predictor.predict(image, K).depth
        plain.append(np.abs(unscaled - scene.depth)[valid] / scene.depth[valid])
    metrics = report['metrics']
    assert metrics['ground_scaled_frames'] == 1.0
    assert metrics['abs_rel'] == pytest.approx(float(np.concatenate(scaled).mean()), rel=1e-4)
    assert abs(metrics['abs_rel'] - float(np.concatenate(plain).mean())) > 1e-3


def test_sparse_ground_truth_grows_to_patches_and_leaves_the_rest_invalid():
    from jointdistill_core.cli.evaluate import visible_sparse_depth
    depth = np.zeros((12, 12), np.float32)
    depth[5, 5], depth[5, 6] = 3.0, 7.0
    shown = visible_sparse_depth(depth)
    assert shown[3, 3] == 3.0 and shown[5, 8] == 7.0  # within 2 pixels: the nearest point
    assert shown[5, 6] == 3.0  # where patches overlap, the nearer surface wins
    assert shown[0, 0] == 0.0 and shown[11, 11] == 0.0  # no point nearby: stays invalid
