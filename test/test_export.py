"""Export: ONNX and TorchScript match PyTorch, sidecar, Predictor.from_exported, the CLI."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from jointdistill_core.checkpoint import save_checkpoint
from jointdistill_core.cli import main
from jointdistill_core.export import ExportError, export_model
from jointdistill_core.inference import Predictor
from jointdistill_core.models import DepthTeacher, JointStudent

torch.set_num_threads(1)
SIZE = (64, 128)


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    """A small student with non-trivial BN statistics, its checkpoint and both exports."""
    torch.manual_seed(0)
    model = JointStudent(width_mult=0.5, decoder_channels=(32, 24, 16), num_classes=6,
                         max_depth=50.0)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    model.eval()
    folder = tmp_path_factory.mktemp('export')
    save_checkpoint(folder / 'student', model, extra={'input_size': list(SIZE)})
    assert main(['export', '--checkpoint', str(folder / 'student'), '--format', 'onnx',
                 '--out', str(folder / 'student.onnx')]) == 0
    assert main(['export', '--checkpoint', str(folder / 'student.safetensors'),
                 '--format', 'torchscript', '--size', '64x128',
                 '--out', str(folder / 'student.pt')]) == 0
    return model, folder


def _reference(model: JointStudent, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        out = model(x)
    return out.depth.numpy(), out.seg_logits.numpy()


def test_onnx_matches_pytorch(exported) -> None:
    model, folder = exported
    x = torch.rand(1, 3, *SIZE)
    session = ort.InferenceSession(str(folder / 'student.onnx'), providers=['CPUExecutionProvider'])
    assert [i.name for i in session.get_inputs()] == ['image']
    depth, logits = session.run(['depth', 'seg_logits'], {'image': x.numpy()})
    ref_depth, ref_logits = _reference(model, x)
    assert depth.shape == (1, 1, *SIZE) and logits.shape == (1, 6, *SIZE)
    np.testing.assert_allclose(depth, ref_depth, atol=1e-4, rtol=0)
    np.testing.assert_allclose(logits, ref_logits, atol=1e-4, rtol=0)
    graph = onnx.load(str(folder / 'student.onnx'))
    opsets = {entry.domain: entry.version for entry in graph.opset_import}
    assert opsets.get('', opsets.get('ai.onnx')) >= 17


def test_torchscript_matches_pytorch(exported) -> None:
    model, folder = exported
    x = torch.rand(1, 3, *SIZE)
    with warnings.catch_warnings():  # TorchScript is deprecated upstream; files still load
        warnings.simplefilter('ignore', DeprecationWarning)
        module = torch.jit.load(str(folder / 'student.pt'))
    with torch.no_grad():
        depth, logits = module(x)
    ref_depth, ref_logits = _reference(model, x)
    np.testing.assert_allclose(depth.numpy(), ref_depth, atol=1e-4, rtol=0)
    np.testing.assert_allclose(logits.numpy(), ref_logits, atol=1e-4, rtol=0)


def test_sidecar_describes_the_export(exported) -> None:
    model, folder = exported
    meta = json.loads((folder / 'student.onnx.json').read_text())
    assert meta['format'] == 'jointdistill-export' and meta['backend'] == 'onnx'
    assert meta['input_size'] == [64, 128] and meta['outputs'] == ['depth', 'seg_logits']
    assert meta['num_classes'] == 6 and meta['max_depth'] == 50.0
    assert meta['model'] == model.spec and meta['opset'] >= 17
    assert json.loads((folder / 'student.pt.json').read_text())['backend'] == 'torchscript'


@pytest.mark.parametrize('filename, backend', [('student.onnx', 'onnxruntime'),
                                               ('student.pt', 'torchscript')])
def test_from_exported_equals_from_checkpoint(exported, filename: str, backend: str) -> None:
    _, folder = exported
    # An image of the export size's aspect: both predictors use the same model input.
    height, width = 3 * SIZE[0] // 2, 3 * SIZE[1] // 2
    image = np.random.default_rng(3).integers(0, 256, (height, width, 3), dtype=np.uint8)
    from_file = Predictor.from_exported(folder / filename, device='cpu')
    from_checkpoint = Predictor.from_checkpoint(folder / 'student', device='cpu')
    assert from_file.backend == backend and from_file.input_size == SIZE
    # Other aspects: an exported file keeps its one input size, a checkpoint follows.
    assert from_file.input_size_for((100, 400)) == SIZE
    assert from_checkpoint.input_size_for((100, 400)) != SIZE
    assert from_file.num_classes == 6 and from_file.max_depth == 50.0
    prediction = from_file.predict(image)
    depth_a, labels_a = prediction.depth, prediction.labels
    prediction = from_checkpoint.predict(image)
    depth_b, labels_b = prediction.depth, prediction.labels
    assert depth_a.shape == labels_a.shape == (height, width) and labels_a.dtype == np.uint8
    np.testing.assert_allclose(depth_a, depth_b, atol=1e-4)
    assert np.mean(labels_a == labels_b) > 0.999
    assert from_file.last_forward_ms > 0


def test_single_task_teacher_exports_its_one_output(tmp_path: Path) -> None:
    teacher = DepthTeacher(max_depth=9.0, width=8).eval()
    export_model(teacher, 'onnx', (32, 64), tmp_path / 'depth.onnx')
    meta = json.loads((tmp_path / 'depth.onnx.json').read_text())
    assert meta['outputs'] == ['depth'] and meta['num_classes'] == 0  # the file format's "none"
    predictor = Predictor.from_exported(tmp_path / 'depth.onnx', device='cpu')
    from_model = Predictor.from_model(teacher, (32, 64), device='cpu')
    assert predictor.num_classes is None and from_model.num_classes is None  # no segmentation
    prediction = predictor.predict(np.full((40, 50, 3), 128, np.uint8))
    assert prediction.labels is None and prediction.depth.shape == (40, 50)
    assert (prediction.depth <= 9.0).all()


def test_export_refuses_to_overwrite_without_force(exported, capsys) -> None:
    _, folder = exported
    before = (folder / 'student.onnx').read_bytes()
    args = ['export', '--checkpoint', str(folder / 'student'), '--format', 'onnx',
            '--out', str(folder / 'student.onnx')]
    assert main(args) == 2
    assert 'student.onnx exists; pass --force' in capsys.readouterr().err
    assert (folder / 'student.onnx').read_bytes() == before
    assert main(args + ['--force', '--size', '32x64']) == 0
    assert json.loads((folder / 'student.onnx.json').read_text())['input_size'] == [32, 64]
    assert main(args + ['--force']) == 0  # back to the checkpoint's size for the other tests


def test_cli_errors_name_the_problem(exported, tmp_path: Path, capsys) -> None:
    _, folder = exported
    assert main(['export', '--checkpoint', str(tmp_path / 'absent'), '--format', 'onnx',
                 '--out', str(tmp_path / 'x.onnx')]) == 2
    assert 'absent.safetensors: checkpoint weights not found' in capsys.readouterr().err
    assert main(['export', '--checkpoint', str(folder / 'student'), '--format', 'onnx',
                 '--size', '100x128', '--out', str(tmp_path / 'x.onnx')]) == 2
    assert 'multiples of 32' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(['export', '--checkpoint', 'c', '--format', 'onnx', '--size', 'big', '--out', 'x'])
    assert 'size must be HxW' in capsys.readouterr().err
    assert not (tmp_path / 'x.onnx').exists()


def test_export_model_and_from_exported_errors(tmp_path: Path) -> None:
    model = JointStudent(width_mult=0.35, decoder_channels=(16, 16, 8))
    with pytest.raises(ExportError, match='format must be one of'):
        export_model(model, 'tflite', (32, 32), tmp_path / 'm.tflite')
    (tmp_path / 'lonely.onnx').write_bytes(b'x')
    with pytest.raises(ValueError, match=r'lonely.onnx.json: sidecar .* not found'):
        Predictor.from_exported(tmp_path / 'lonely.onnx')
    (tmp_path / 'lonely.onnx.json').write_text('{"format": "something-else"}')
    with pytest.raises(ValueError, match='"format" must be "jointdistill-export"'):
        Predictor.from_exported(tmp_path / 'lonely.onnx')
    export_model(model, 'onnx', (32, 32), tmp_path / 'm.onnx')
    (tmp_path / 'm.onnx').write_bytes(b'corrupted')
    with pytest.raises(ValueError, match='m.onnx: not a loadable ONNX model'):
        Predictor.from_exported(tmp_path / 'm.onnx', device='cpu')


# ------------------------------------------------------------------ one loader, batches
def test_from_path_picks_the_loader_and_backend_of_each_file(exported) -> None:
    from jointdistill_core.inference import model_num_classes
    _, folder = exported
    image = np.random.default_rng(2).integers(0, 256, (64, 128, 3), np.uint8)
    expected = Predictor.from_checkpoint(folder / 'student', device='cpu').predict(image)
    cases = {'student.onnx': 'onnxruntime', 'student.pt': 'torchscript',
             'student': 'onnxruntime', 'student.safetensors': 'onnxruntime'}  # auto on a CPU
    for name, backend in cases.items():
        predictor = Predictor.from_path(folder / name, device='cpu')
        assert predictor.backend == backend, name
        assert (predictor.num_classes, predictor.max_depth) == (6, 50.0)
        np.testing.assert_allclose(predictor.predict(image).depth, expected.depth, atol=1e-4)
        assert model_num_classes(folder / name) == 6
    eager = Predictor.from_path(folder / 'student', device='cpu', backend='torch',
                                input_size=(32, 64))
    assert eager.backend == 'torch' and eager.input_size == (32, 64)
    assert eager._runner((32, 64)).memory_format == torch.channels_last  # NHWC on the CPU
    with pytest.raises(ValueError, match='fixed input size'):
        Predictor.from_path(folder / 'student.onnx', device='cpu', input_size=(32, 64))
    with pytest.raises(ValueError, match='backend must be one of'):
        Predictor.from_path(folder / 'student', backend='tensorrt')
    with pytest.raises(ValueError, match='not found'):
        Predictor.from_path(folder / 'missing.safetensors', device='cpu')


@pytest.mark.parametrize('name, backend', [('student', 'torch'), ('student', 'onnxruntime'),
                                           ('student.onnx', 'auto'), ('student.pt', 'auto')])
def test_predict_batch_equals_predict_with_one_forward_pass_per_input_size(exported, name,
                                                                          backend) -> None:
    _, folder = exported
    predictor = Predictor.from_path(folder / name, device='cpu', backend=backend)
    rng = np.random.default_rng(3)
    # Two cameras of the checkpoint's aspect (2:1), one of another (a KITTI-like strip).
    images = [rng.integers(0, 256, size, np.uint8) for size in
              ((64, 128, 3), (120, 240, 3), (40, 160, 3))]
    Ks = [np.array([[100.0 + 20 * i, 0, 60], [0, 100.0 + 20 * i, 30], [0, 0, 1]])
          for i in range(3)]
    singles = [predictor.predict(image, K) for image, K in zip(images, Ks)]
    batches = []
    for size, runner in list(predictor._runners.items()):
        predictor._runners[size] = lambda batch, run=runner: batches.append(len(batch)) or \
            run(batch)
    together = predictor.predict_batch(images, Ks)
    for single, joint, image in zip(singles, together, images):
        assert joint.depth.shape == joint.labels.shape == image.shape[:2]
        np.testing.assert_allclose(joint.depth, single.depth, rtol=1e-5, atol=1e-5)
        assert (joint.labels == single.labels).mean() > 0.999  # near-ties may flip
    # Checkpoints follow each camera's aspect: two input sizes, the 2:1 frames in one batch.
    # An exported file has one input size: one batch of three.
    assert sorted(batches) == ([1, 2] if name == 'student' else [3])
    with pytest.raises(ValueError, match='3 images but 2 Ks'):
        predictor.predict_batch(images, Ks[:2])
