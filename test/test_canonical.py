"""The canonical camera: depth targets and predictions converted with each image's K."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from jointdistill_core.canonical import canonical_targets, metric_from_canonical, metric_predictions
from jointdistill_core.data.augment import RandomScaleCrop
from jointdistill_core.data.sample import make_sample
from jointdistill_core.geometry import default_intrinsics


def _K(fx: float, fy: float) -> torch.Tensor:
    return torch.tensor([[fx, 0.0, 10.0], [0.0, fy, 8.0], [0.0, 0.0, 1.0]])


def test_canonical_depth_scales_with_the_focal_length_hand_computed():
    depth = torch.tensor([[0.0, 2.0], [4.0, 8.0]]).reshape(1, 1, 2, 2)
    K = torch.stack([_K(150.0, 150.0)])
    # f_c / f = 300 / 150 = 2; invalid (0) stays 0.
    np.testing.assert_allclose(canonical_targets(depth, K, 300.0).flatten().tolist(),
                               [0.0, 4.0, 8.0, 16.0])
    # An anisotropic K uses sqrt(fx fy): sqrt(100 * 400) = 200, so metres = canonical * 2 / 3.
    K = torch.stack([_K(100.0, 400.0)])
    np.testing.assert_allclose(metric_predictions(torch.full((1, 1, 1, 1), 3.0), K, 300.0)
                               .item(), 2.0)
    assert metric_from_canonical(np.array([3.0]), _K(100.0, 400.0).numpy(), 300.0)[0] == \
        pytest.approx(2.0)
    assert canonical_targets(depth, K, None) is depth  # a metric network: unchanged


def test_zoom_augmentation_counts_once_for_canonical_networks():
    """Zooming by s multiplies the focal length by s; the canonical target then shrinks by s,
    exactly what dividing metric depth by s does for a metric network."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    depth = rng.uniform(1, 20, (48, 64)).astype(np.float32)
    K = default_intrinsics(48, 64, 70.0)
    sample = make_sample(image, depth, None, K)
    zoom = (1.5, 5, 7)
    metric_style = RandomScaleCrop(divide_depth=True).apply(sample, *zoom)
    canonical_style = RandomScaleCrop(divide_depth=False).apply(sample, *zoom)
    np.testing.assert_allclose(canonical_style['K'][0, 0] / K[0, 0], 1.5, rtol=0.03)
    focal_c = 300.0
    target = canonical_targets(canonical_style['depth'][None], canonical_style['K'][None],
                               focal_c)[0]
    expected = metric_style['depth'] * focal_c / K[0, 0]
    np.testing.assert_allclose(target.numpy(), expected.numpy(), rtol=0.03)


def test_validation_reports_metres_for_a_canonical_network():
    """A network that predicts a constant canonical depth c is scored as c * f / f_c metres."""
    from jointdistill_core.models.outputs import ModelOutput
    from jointdistill_core.training.evaluate import evaluate_model

    class Constant(torch.nn.Module):
        canonical_focal_px = 300.0

        def forward(self, x):
            return ModelOutput(depth=torch.full((x.shape[0], 1, *x.shape[-2:]), 6.0))

    samples = []
    for focal, truth in ((150.0, 3.0), (600.0, 12.0)):  # metres = 6 * f / 300
        K = np.array([[focal, 0, 31.5], [0, focal, 15.5], [0, 0, 1]])
        samples.append(make_sample(np.zeros((32, 64, 3), np.uint8),
                                   np.full((32, 64), truth, np.float32), None, K))
    metrics = evaluate_model(Constant(), samples, 7, torch.device('cpu'), tasks=('depth',))
    assert metrics['abs_rel'] == pytest.approx(0.0, abs=1e-6)
    assert metrics['delta1'] == 1.0


def test_a_depth_teacher_with_another_camera_convention_is_refused(tmp_path):
    from jointdistill_core.config import ConfigError
    from jointdistill_core.training import load_train_config, train
    from test_trainer import TINY_STUDENT, save_tiny_teachers
    teachers = save_tiny_teachers(tmp_path)  # metric-depth teachers (no canonical camera)
    config = {'task': 'multi', 'method': {'name': 'static_kd'}, 'teachers': teachers,
              'model': {'arch': 'student',
                        'kwargs': {**TINY_STUDENT['kwargs'], 'canonical_focal_px': 300.0}},
              'data': {'spec': 'synthetic', 'size': '64x128', 'num_frames': 4, 'val_frames': 2,
                       'batch_size': 2},
              'steps': 1, 'out': str(tmp_path / 'run')}
    path = tmp_path / 'c.yaml'
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match='canonical_focal_px'):
        train(load_train_config(path), progress=False)


def test_a_canonical_student_trains_on_canonical_targets(tmp_path):
    """The first logged depth loss of a canonical student equals the loss computed by hand on
    the converted ground truth of the same first batch."""
    from jointdistill_core.training import load_train_config, train
    from test_trainer import TINY_STUDENT
    kwargs = {**TINY_STUDENT['kwargs'], 'canonical_focal_px': 50.0}
    config = {'task': 'multi', 'method': {'name': 'mtl', 'params': {'depth_loss': 'log_l1'}},
              'model': {'arch': 'student', 'kwargs': kwargs},
              'data': {'spec': 'synthetic', 'size': '64x128', 'num_frames': 4, 'val_frames': 2,
                       'batch_size': 2},
              'steps': 1, 'val_every': 1, 'log_every': 1, 'seed': 5,
              'out': str(tmp_path / 'run')}
    path = tmp_path / 'c.yaml'
    path.write_text(yaml.safe_dump(config))
    result = train(load_train_config(path), progress=False)
    assert result.steps == 1
    import csv
    with open(tmp_path / 'run' / 'metrics.csv') as handle:
        logged = float(next(r for r in csv.DictReader(handle) if r.get('loss/task/depth'))
                       ['loss/task/depth'])
    # Rebuild the initial network and the first batch exactly as the trainer does.
    from jointdistill_core.data.registry import build_dataset
    from jointdistill_core.distill.losses import masked_log_l1
    from jointdistill_core.models.factory import build_model
    from jointdistill_core.training.sampling import SeededDataset, StepBatchSampler
    dataset, _ = build_dataset('synthetic', 'train', size=(64, 128), num_frames=4, seed=5,
                               canonical_depth=True)
    batch = torch.utils.data.default_collate(
        [SeededDataset(dataset)[item] for item in StepBatchSampler(4, 2, 5, 0, 1).batch(0)])
    torch.manual_seed(5)
    student = build_model({'arch': 'student', **kwargs}).train()
    prediction = student(batch['image']).depth.detach()
    canonical = masked_log_l1(prediction, canonical_targets(batch['depth'], batch['K'], 50.0))
    metric = masked_log_l1(prediction, batch['depth'])
    assert logged == pytest.approx(float(canonical), rel=1e-4)
    assert abs(float(canonical) - float(metric)) > 0.05  # the conversion changed the target


def test_the_shipped_student_gives_one_metric_depth_for_two_focal_lengths():
    """The same synthetic scene rendered at 50 and 80 degrees horizontal field of view (same
    camera pose, only the focal length differs): the shipped student's metric depth at
    corresponding pixels agrees, because the Predictor converts its canonical depth with each
    image's K. Without the conversion the two would differ by the focal-length ratio (1.7x)."""
    import cv2

    from conftest import REPO_ROOT
    from jointdistill_core.data.synthetic import SceneMix, render_scene
    from jointdistill_core.inference import Predictor
    predictor = Predictor.from_checkpoint(REPO_ROOT / 'models' / 'jointdistill_student',
                                          device='cpu', input_size=(192, 256))
    assert predictor.canonical_focal_px is not None
    ratios, unconverted = [], []
    for seed in (11, 12, 13):
        narrow, wide = (render_scene(seed, 192, 256, SceneMix.parse('road=1'), (fov, fov),
                                     camera_effects=False) for fov in (50.0, 80.0))
        np.testing.assert_allclose(narrow.camera_position, wide.camera_position)
        depth_narrow = predictor.predict(narrow.image, narrow.K).depth
        depth_wide = predictor.predict(wide.image, wide.K).depth
        # Narrow pixel (u, v) sees the ray of wide pixel K_w K_n^-1 (u, v, 1).
        mapping = wide.K @ np.linalg.inv(narrow.K)
        rows, cols = np.mgrid[0:192, 0:256].astype(np.float64)
        map_x = (mapping[0, 0] * cols + mapping[0, 2]).astype(np.float32)
        map_y = (mapping[1, 1] * rows + mapping[1, 2]).astype(np.float32)
        resampled = cv2.remap(depth_wide, map_x, map_y, cv2.INTER_LINEAR)
        valid = narrow.depth > 0
        ratios.append(np.log(depth_narrow[valid] / resampled[valid]))
        scale = predictor.metric_scale((192, 256), wide.K) / predictor.metric_scale(
            (192, 256), narrow.K)
        unconverted.append(np.log(depth_narrow[valid] / (resampled[valid] * scale)))
    agreement = float(np.exp(np.abs(np.median(np.concatenate(ratios)))))
    without_k = float(np.exp(np.abs(np.median(np.concatenate(unconverted)))))
    assert agreement < 1.15, agreement
    assert without_k > 1.4 and agreement < without_k
