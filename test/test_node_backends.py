"""perception_node's runtime options: `backend` (torch | onnxruntime | auto) and
`num_threads`, the Predictor's thread settings, and the strided point-cloud back-projection.

The ROS test runs the node twice in its own process (onnxruntime and eager PyTorch, in two
namespaces of one isolated domain) on the same image and compares what each publishes: the
two runtimes must agree within float tolerance.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sensor_msgs.msg import Image

from jointdistill_core.geometry import backproject, stride_intrinsics
from jointdistill_core.inference import Predictor, _labels_from_logits, resolve_backend
from jointdistill_core.openmp import passive_openmp_waiting
from jointdistill_ros.parameters import PARAMETERS, ConfigureError, settings_from_values
from node_helpers import NodeProcess, TestNode, pattern_image, rgb_image_message, save_tiny_student

HEIGHT, WIDTH = 96, 128


def values(**changes) -> dict:
    defaults = {spec.name: spec.default for spec in PARAMETERS}
    defaults.update(changes)
    return defaults


def test_backend_and_thread_parameters_are_validated_and_resolved():
    with pytest.raises(ConfigureError, match="'backend' is 'onnx'"):
        settings_from_values(values(backend='onnx'))
    settings = settings_from_values(values(device='cuda', backend='onnxruntime', num_threads=3))
    assert (settings.backend, settings.num_threads) == ('onnxruntime', 3)
    assert resolve_backend('cpu') == 'onnxruntime'
    assert resolve_backend('cpu', 'torch') == 'torch'
    assert resolve_backend('cuda', 'onnxruntime') == 'onnxruntime'
    # auto picks PyTorch exactly when the network will run on CUDA.
    on_cuda = torch.cuda.is_available()
    assert resolve_backend('auto') == ('torch' if on_cuda else 'onnxruntime')
    assert resolve_backend('cuda:0') == ('torch' if on_cuda else 'onnxruntime')
    threads = next(spec for spec in PARAMETERS if spec.name == 'num_threads')
    assert threads.default == 0 and threads.descriptor().integer_range[0].from_value == 0


def test_openmp_threads_wait_passively_unless_the_user_chose_a_policy():
    environ: dict[str, str] = {}
    passive_openmp_waiting(environ)
    assert environ == {'OMP_WAIT_POLICY': 'PASSIVE'}
    chosen = {'OMP_WAIT_POLICY': 'ACTIVE'}
    passive_openmp_waiting(chosen)
    assert chosen == {'OMP_WAIT_POLICY': 'ACTIVE'}


def test_strided_back_projection_equals_subsampling_the_full_one():
    rng = np.random.default_rng(1)
    depth = rng.uniform(0.5, 40.0, (48, 64)).astype(np.float32)
    depth[3, 5] = np.nan
    K = np.array([[52.0, 0.0, 31.7], [0.0, 50.0, 24.2], [0.0, 0.0, 1.0]])
    for stride in (1, 2, 3, 5):
        full = backproject(depth, K)[::stride, ::stride]
        strided = backproject(depth[::stride, ::stride], stride_intrinsics(K, stride))
        np.testing.assert_allclose(strided, full, rtol=1e-5, atol=1e-6, equal_nan=True)
    # Hand-worked: stride 2 halves fx, fy, cx, cy; the last row stays (0, 0, 1).
    np.testing.assert_allclose(stride_intrinsics(K, 2),
                               [[26.0, 0.0, 15.85], [0.0, 25.0, 12.1], [0.0, 0.0, 1.0]])


def test_label_arg_max_takes_the_first_of_tied_classes():
    logits = torch.zeros(1, 4, 2, 3)
    logits[0, 2, 0, 0] = 1.0
    logits[0, 1, 1, 2] = logits[0, 3, 1, 2] = 5.0  # tie between classes 1 and 3
    expected = np.array([[2, 0, 0], [0, 0, 1]], np.uint8)
    np.testing.assert_array_equal(_labels_from_logits(logits).numpy(), expected[None])


def test_predictor_num_threads(tmp_path):
    checkpoint = save_tiny_student(tmp_path / 'student')
    with pytest.raises(ValueError, match='num_threads'):
        Predictor.from_checkpoint(checkpoint, device='cpu', num_threads=-1)
    before = torch.get_num_threads()
    try:
        Predictor.from_checkpoint(checkpoint, device='cpu', backend='torch', num_threads=1)
        assert torch.get_num_threads() == 1
        ort_predictor = Predictor.from_checkpoint(checkpoint, device='cpu',
                                                  backend='onnxruntime', num_threads=1)
        session = ort_predictor._runner(ort_predictor.input_size).session
        assert session.get_session_options().intra_op_num_threads == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.ros
def test_onnxruntime_and_torch_backends_publish_the_same_outputs(ros_env, tmp_path):
    from jointdistill_ros.image_codec import imgmsg_to_numpy

    checkpoint = save_tiny_student(tmp_path / 'student', (64, 96))
    message = rgb_image_message(pattern_image(HEIGHT, WIDTH, seed=3), 1_700_000_000_000_000_000,
                                'camera_optical_frame')
    backends = ('onnxruntime', 'torch')
    nodes = [NodeProcess(ros_env, {'model_path': str(checkpoint), 'autostart': True,
                                   'device': 'cpu', 'backend': backend, 'num_threads': 1},
                         namespace=f'/{backend}', log_path=tmp_path / f'{backend}.log')
             for backend in backends]
    received: dict[tuple[str, str], Image] = {}
    try:
        with TestNode('probe') as probe:
            cameras = {}
            for backend in backends:
                cameras[backend] = probe.node.create_publisher(Image, f'/{backend}/image', 5)
                for topic in ('depth/image', 'segmentation/labels'):
                    probe.node.create_subscription(
                        Image, f'/{backend}/{topic}',
                        lambda msg, key=(backend, topic): received.setdefault(key, msg), 5)
            probe.spin_until(lambda: all(c.get_subscription_count() > 0
                                         for c in cameras.values())
                             or any(node.exited() for node in nodes), 90,
                             'both nodes to subscribe (logs: ' +
                             ', '.join(str(n.log_path) for n in nodes) + ')')
            assert not any(node.exited() for node in nodes), [n.log_tail() for n in nodes]
            for _ in range(60):
                if len(received) == 4:
                    break
                for camera in cameras.values():
                    camera.publish(message)
                probe.spin_for(0.5)
        assert len(received) == 4, f'missing outputs; logs: {[n.log_tail() for n in nodes]}'
        logs = {backend: node.log() for backend, node in zip(backends, nodes)}
    finally:
        for node in nodes:
            node.stop()
    for backend in backends:
        assert f'backend {backend}' in logs[backend], logs[backend]
    depth = {b: imgmsg_to_numpy(received[(b, 'depth/image')]) for b in backends}
    labels = {b: imgmsg_to_numpy(received[(b, 'segmentation/labels')]) for b in backends}
    assert depth['torch'].shape == (HEIGHT, WIDTH) and np.ptp(depth['torch']) > 0
    np.testing.assert_allclose(depth['onnxruntime'], depth['torch'], rtol=1e-4, atol=1e-4)
    assert len(np.unique(labels['torch'])) > 1
    assert (labels['onnxruntime'] == labels['torch']).mean() > 0.999  # near-ties may flip
