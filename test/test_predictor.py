"""Predictor: resolution, dtypes, the documented resize pipeline, devices, bad input."""
from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from jointdistill_core.checkpoint import CheckpointError, save_checkpoint
from jointdistill_core.device import DeviceUnavailableError, resolve_device
from jointdistill_core.inference import Predictor
from jointdistill_core.models import JointStudent, SegTeacher
from jointdistill_core.models.factory import build_model

torch.set_num_threads(1)
NO_CUDA = not torch.cuda.is_available()


def _student() -> JointStudent:
    torch.manual_seed(0)
    model = JointStudent(width_mult=0.5, decoder_channels=(32, 24, 16), max_depth=40.0)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return model.eval()


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory) -> tuple[JointStudent, Path]:
    model = _student()
    path = tmp_path_factory.mktemp('predictor') / 'student'
    save_checkpoint(path, model, extra={'input_size': [64, 128]})
    return model, path


@pytest.fixture(scope='module')
def image() -> np.ndarray:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    return cv2.resize(base, (640, 480), interpolation=cv2.INTER_LINEAR)  # some structure


def test_output_resolution_and_dtypes_480x640_with_128x256_model(checkpoint, image) -> None:
    _, path = checkpoint
    predictor = Predictor.from_checkpoint(path, device='cpu', input_size=(128, 256))
    assert predictor.input_size == (128, 256) and predictor.backend == 'torch'
    assert predictor.num_classes == 7 and predictor.max_depth == 40.0
    assert predictor.device.type == 'cpu' and predictor.precision == 'fp32'
    prediction = predictor.predict(image)
    depth, labels = prediction.depth, prediction.labels
    assert depth.shape == (480, 640) and depth.dtype == np.float32
    assert labels.shape == (480, 640) and labels.dtype == np.uint8
    assert (depth > 0).all() and (depth <= 40.0).all()
    assert labels.max() < 7


def test_predict_equals_the_documented_pipeline(checkpoint, image) -> None:
    """Resize to the model size that keeps the aspect (INTER_AREA when shrinking), run the
    unfused network, resize depth bilinearly and the arg-max labels with nearest neighbour.
    A 480x640 (4:3) image with the 64x128 budget of 8192 pixels: about 78x105, so 64x96."""
    model, path = checkpoint
    predictor = Predictor.from_checkpoint(path, device='cpu')  # input size from the checkpoint
    assert predictor.input_size == (64, 128)
    assert predictor.input_size_for((480, 640)) == (64, 96)
    prediction = predictor.predict(image)
    depth, labels = prediction.depth, prediction.labels

    small = cv2.resize(image, (96, 64), interpolation=cv2.INTER_AREA)
    x = torch.from_numpy(small).permute(2, 0, 1)[None].float() / 255.0
    with torch.no_grad():
        out = model(x)
    expected_depth = cv2.resize(out.depth[0, 0].numpy(), (640, 480), interpolation=cv2.INTER_LINEAR)
    expected_labels = cv2.resize(out.seg_logits[0].argmax(0).numpy().astype(np.uint8), (640, 480),
                                 interpolation=cv2.INTER_NEAREST)
    np.testing.assert_allclose(depth, expected_depth, atol=1e-4)
    assert np.mean(labels == expected_labels) > 0.999  # BN folding may flip exact ties only


def test_image_at_model_size_is_not_resized(checkpoint) -> None:
    model, path = checkpoint
    predictor = Predictor.from_checkpoint(path, device='cpu')
    image = np.random.default_rng(1).integers(0, 256, (64, 128, 3), dtype=np.uint8)
    prediction = predictor.predict(image)
    depth, labels = prediction.depth, prediction.labels
    with torch.no_grad():
        out = model(torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0)
    np.testing.assert_allclose(depth, out.depth[0, 0].numpy(), atol=1e-4)
    assert depth.shape == (64, 128) and labels.shape == (64, 128)


def test_odd_and_upscaled_input_sizes_come_back_at_input_size(checkpoint) -> None:
    _, path = checkpoint
    predictor = Predictor.from_checkpoint(path, device='cpu')
    for shape in ((37, 23, 3), (200, 90, 3)):
        prediction = predictor.predict(np.zeros(shape, dtype=np.uint8))
        depth, labels = prediction.depth, prediction.labels
        assert depth.shape == labels.shape == shape[:2]


def test_strided_views_give_the_same_result_as_copies(checkpoint, image) -> None:
    """A node hands over views: channel-reversed (BGR->RGB) or cropped from padded rows."""
    _, path = checkpoint
    predictor = Predictor.from_checkpoint(path, device='cpu')
    padded = np.zeros((480, 704, 3), np.uint8)
    padded[:, :640] = image[..., ::-1]
    for view in (image[..., ::-1], padded[:, :640, ::-1]):
        assert not view.flags.c_contiguous
        prediction = predictor.predict(view)
        depth_view, labels_view = prediction.depth, prediction.labels
        prediction = predictor.predict(np.ascontiguousarray(view))
        depth_copy, labels_copy = prediction.depth, prediction.labels
        np.testing.assert_array_equal(depth_view, depth_copy)
        np.testing.assert_array_equal(labels_view, labels_copy)


def test_timings_report_the_last_call(checkpoint, image) -> None:
    _, path = checkpoint
    predictor = Predictor.from_checkpoint(path, device='cpu')
    assert predictor.last_forward_ms is None
    predictor.predict(image)
    timings = predictor.timings
    assert set(timings) == {'preprocess_ms', 'forward_ms', 'postprocess_ms', 'total_ms'}
    assert all(value > 0 for value in timings.values())
    assert timings['total_ms'] >= timings['forward_ms']
    assert predictor.last_forward_ms == timings['forward_ms']


def test_channels_last_gives_the_same_outputs(checkpoint, image) -> None:
    _, path = checkpoint
    plain = Predictor.from_checkpoint(path, device='cpu')
    nhwc = Predictor.from_checkpoint(path, device='cpu', channels_last=True)
    prediction = plain.predict(image)
    depth_a, labels_a = prediction.depth, prediction.labels
    prediction = nhwc.predict(image)
    depth_b, labels_b = prediction.depth, prediction.labels
    np.testing.assert_allclose(depth_b, depth_a, atol=1e-4)
    assert np.mean(labels_a == labels_b) > 0.999


def test_onnxruntime_backend_matches_torch_backend(checkpoint, image) -> None:
    _, path = checkpoint
    torch_backend = Predictor.from_checkpoint(path, device='cpu')
    ort_backend = Predictor.from_checkpoint(path, device='cpu', backend='onnxruntime')
    assert ort_backend.backend == 'onnxruntime' and ort_backend.precision == 'fp32'
    assert ort_backend.input_size == (64, 128) and ort_backend.max_depth == 40.0
    prediction = torch_backend.predict(image)
    depth_a, labels_a = prediction.depth, prediction.labels
    prediction = ort_backend.predict(image)
    depth_b, labels_b = prediction.depth, prediction.labels
    np.testing.assert_allclose(depth_b, depth_a, atol=1e-4)
    assert np.mean(labels_a == labels_b) > 0.999
    with pytest.raises(ValueError, match='channels_last applies to the torch backend only'):
        Predictor.from_checkpoint(path, device='cpu', backend='onnxruntime', channels_last=True)
    with pytest.raises(ValueError, match=r"backend must be one of \('torch', 'onnxruntime'\)"):
        Predictor.from_checkpoint(path, device='cpu', backend='tensorrt')


def test_from_model_leaves_the_model_untouched() -> None:
    model = _student().train()
    predictor = Predictor.from_model(model, (64, 64), device='cpu')
    assert model.training
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert predictor.predict(np.zeros((64, 64, 3), np.uint8)).depth.shape == (64, 64)


def test_segmentation_teacher_has_no_depth(tmp_path) -> None:
    save_checkpoint(tmp_path / 'seg', SegTeacher(num_classes=4, width=8),
                    extra={'input_size': [64, 64]})
    predictor = Predictor.from_checkpoint(tmp_path / 'seg', device='cpu')
    prediction = predictor.predict(np.zeros((50, 70, 3), np.uint8))
    depth, labels = prediction.depth, prediction.labels
    assert depth is None and labels.shape == (50, 70) and predictor.max_depth is None


@pytest.mark.parametrize('bad, message', [
    (np.zeros((48, 64, 3), np.float32), 'uint8 RGB, got dtype float32'),
    (np.zeros((48, 64), np.uint8), r'shape \(H, W, 3\), got \(48, 64\)'),
    (np.zeros((48, 64, 4), np.uint8), r'got \(48, 64, 4\)'),
    (np.zeros((0, 64, 3), np.uint8), r'got \(0, 64, 3\)'),
    ([[0, 1, 2]], 'numpy array, got list'),
])
def test_bad_images_are_rejected(checkpoint, bad, message: str) -> None:
    _, path = checkpoint
    predictor = Predictor.from_checkpoint(path, device='cpu')
    with pytest.raises(ValueError, match=message):
        predictor.predict(bad)


@pytest.mark.skipif(not NO_CUDA, reason='this machine has CUDA: there is no fallback to test')
def test_cuda_request_without_cuda_falls_back_to_cpu_with_a_warning(checkpoint) -> None:
    _, path = checkpoint
    with pytest.warns(RuntimeWarning, match='CUDA is not available.*falling back to CPU'):
        predictor = Predictor.from_checkpoint(path, device='cuda')
    assert predictor.device.type == 'cpu' and predictor.precision == 'fp32'
    assert predictor.requested_device == 'cuda'
    with pytest.raises(DeviceUnavailableError, match="'cuda:0' requested"):
        Predictor.from_checkpoint(path, device='cuda:0', strict_device=True)


def test_auto_device_and_argument_errors(checkpoint) -> None:
    _, path = checkpoint
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # 'auto' never warns
        assert resolve_device('auto').type == ('cpu' if NO_CUDA else 'cuda')
    with pytest.raises(ValueError, match="device must be 'auto', 'cpu' or 'cuda"):
        Predictor.from_checkpoint(path, device='tpu')
    with pytest.raises(ValueError, match='precision must be one of'):
        Predictor.from_checkpoint(path, device='cpu', precision='int8')
    with pytest.raises(ValueError, match="'fp16' needs a CUDA device and the torch backend"):
        Predictor.from_checkpoint(path, device='cpu', precision='fp16')
    with pytest.raises(ValueError, match=r'multiples of 32, got \(100, 128\)'):
        Predictor.from_checkpoint(path, device='cpu', input_size=(100, 128))
    with pytest.raises(CheckpointError, match='missing.safetensors'):
        Predictor.from_checkpoint(Path(path).parent / 'missing', device='cpu')


@pytest.mark.skipif(NO_CUDA, reason='needs a CUDA GPU')
def test_cuda_fp16_matches_cpu_fp32(checkpoint, image) -> None:
    _, path = checkpoint
    gpu = Predictor.from_checkpoint(path, device='cuda')
    cpu = Predictor.from_checkpoint(path, device='cpu')
    assert gpu.precision == 'fp16' and gpu.device.type == 'cuda'
    prediction = gpu.predict(image)
    depth_gpu, labels_gpu = prediction.depth, prediction.labels
    prediction = cpu.predict(image)
    depth_cpu, labels_cpu = prediction.depth, prediction.labels
    assert depth_gpu.dtype == np.float32
    np.testing.assert_allclose(depth_gpu, depth_cpu, rtol=2e-2, atol=5e-2)
    assert np.mean(labels_gpu == labels_cpu) > 0.98


def test_model_input_size_keeps_the_aspect_at_the_pixel_budget() -> None:
    from jointdistill_core.inference import model_input_size
    # KITTI 1242x375 (aspect 3.31) at 256x512 = 131072 px: height 199 -> 192, then
    # 192 * 3.31 = 636 -> 640.
    assert model_input_size((375, 1242), (256, 512)) == (192, 640)
    # 640x480 (4:3): height 313.5 -> 320, then 426.7 -> 416.
    assert model_input_size((480, 640), (256, 512)) == (320, 416)
    assert model_input_size((256, 512), (256, 512)) == (256, 512)
    assert model_input_size((720, 1280), (128, 256)) == (128, 224)  # 135.8 -> 128; 227.6


def test_canonical_depth_follows_the_focal_length_of_K(tmp_path, image) -> None:
    """A canonical-camera network's metric depth scales with the focal length of K: twice
    the focal length, twice the depth; without K, the default field of view is assumed."""
    from jointdistill_core.geometry import DEFAULT_HFOV_DEG, default_intrinsics
    torch.manual_seed(0)
    model = build_model({'arch': 'student', 'width_mult': 0.25, 'decoder_channels': [16, 16, 16],
                         'canonical_focal_px': 100.0}).eval()
    predictor = Predictor.from_model(model, (64, 128), device='cpu')
    K = np.array([[500.0, 0, 319.5], [0, 500.0, 239.5], [0, 0, 1]])
    near = predictor.predict(image, K).depth
    far = predictor.predict(image, K * np.array([[2], [2], [1]])).depth
    np.testing.assert_allclose(far, 2 * near, rtol=1e-5)
    # At the 64x96 model input, f = 500 * 96 / 640 = 75 px (fx) and 500 * 64 / 480 = 66.7 px
    # (fy): sqrt(fx fy) = 70.7, so metres = network output * 70.7 / 100.
    small = cv2.resize(image, (96, 64), interpolation=cv2.INTER_AREA)
    with torch.no_grad():
        raw = model(torch.from_numpy(small).permute(2, 0, 1)[None].float() / 255.0).depth
    expected = cv2.resize(raw[0, 0].numpy(), (640, 480)) * np.sqrt(75.0 * 500 * 64 / 480) / 100
    np.testing.assert_allclose(near, expected, rtol=1e-3)
    default = predictor.predict(image).depth
    assumed = predictor.predict(image, default_intrinsics(480, 640, DEFAULT_HFOV_DEG)).depth
    np.testing.assert_array_equal(default, assumed)
