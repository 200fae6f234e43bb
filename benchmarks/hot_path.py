"""CPU time of each per-frame step of the perception node, one thread, no ROS transport:
what a 640x480 camera frame costs between the subscription and the publishers.

    .venv/bin/python -m benchmarks.hot_path [--repeats 30]

CPU time of this process (not wall time), so the figures hold on a shared machine; with one
thread it equals the time on an idle core. Steps: decoding a raw rgb8 message and a JPEG
CompressedImage (quality 90), the Predictor (480x640 rgb8 -> 256x512 model input -> depth and
labels at 480x640) on each backend, the ground-plane scale of `camera_height` (on the rendered
street's own depth and labels), the REP 117 depth image, the colourings, the overlay, and
the point cloud at the shipped stride 2. Only public functions
are timed, so the same script measures an older checkout for before/after comparisons.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
import torch
from std_msgs.msg import Header

from jointdistill_core.bags.codec import encode_compressed_image
from jointdistill_core.bags.compressed import compressed_to_rgb
from jointdistill_core.classes import DEFAULT_NUM_CLASSES
from jointdistill_core.data.synthetic import render_scene
from jointdistill_core.geometry import backproject, default_intrinsics
from jointdistill_core.ground_scale import ground_scale
from jointdistill_core.inference import Predictor
from jointdistill_core.models.factory import build_model
from jointdistill_core.visualize import colorize_depth, colorize_labels, overlay_labels
from jointdistill_ros.camera_stream import depth_for_publishing
from jointdistill_ros.image_codec import numpy_to_imgmsg, to_rgb8
from jointdistill_ros.pointcloud import make_pointcloud2

CAMERA = (480, 640)
MODEL_INPUT = (256, 512)
STRIDE = 2
JPEG_DECODE_STEP = 'decode JPEG CompressedImage (quality 90)'
GROUND_STEP = 'ground-plane scale (camera_height set)'


def cpu_ms(function: Callable[[], object], repeats: int) -> float:
    """Median CPU time of this process per call, milliseconds (after one untimed call)."""
    function()
    samples = []
    for _ in range(repeats):
        start = time.process_time()
        function()
        samples.append((time.process_time() - start) * 1e3)
    return statistics.median(samples)


def measure(repeats: int = 30) -> dict[str, float]:
    """Step name -> median CPU ms per 640x480 frame, one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _measure(repeats)
    finally:
        torch.set_num_threads(threads)


def _measure(repeats: int) -> dict[str, float]:
    torch.manual_seed(0)
    student = build_model({'arch': 'student'}).eval()
    scene = render_scene(7, *CAMERA)
    image = scene.image
    message = numpy_to_imgmsg(image, 'rgb8')
    compressed = encode_compressed_image(image, 'jpeg', 0)  # quality 90, as image_transport's
    steps: dict[str, float] = {
        'decode rgb8 message': cpu_ms(lambda: to_rgb8(message), repeats),
        JPEG_DECODE_STEP: cpu_ms(lambda: compressed_to_rgb(compressed), repeats)}
    for label, options in (('torch', {}), ('torch channels_last', {'channels_last': True}),
                           ('onnxruntime', {'backend': 'onnxruntime', 'num_threads': 1})):
        predictor = Predictor.from_model(student, MODEL_INPUT, device='cpu', **options)
        steps[f'Predictor ({label})'] = cpu_ms(lambda p=predictor: p.predict(image), repeats)
    steps[GROUND_STEP] = cpu_ms(
        lambda: ground_scale(scene.depth, scene.labels, scene.K, float(scene.camera_position[2])),
        repeats)
    prediction = predictor.predict(image)
    depth, labels = prediction.depth, prediction.labels
    depth = depth_for_publishing(depth, labels, None)
    K = default_intrinsics(*CAMERA)
    header = Header()
    steps.update({
        'depth image (REP 117) + message': cpu_ms(
            lambda: numpy_to_imgmsg(depth_for_publishing(depth, labels, None), '32FC1', header),
            repeats),
        'depth colour map': cpu_ms(lambda: colorize_depth(depth, 80.0), repeats),
        'label colours': cpu_ms(lambda: colorize_labels(labels, DEFAULT_NUM_CLASSES), repeats),
        'overlay': cpu_ms(lambda: overlay_labels(image, labels, DEFAULT_NUM_CLASSES, 0.5), repeats),
        'back-projection, full image then every 2nd pixel': cpu_ms(
            lambda: backproject(depth, K)[::STRIDE, ::STRIDE], repeats),
        'back-projection of every 2nd pixel only': cpu_ms(
            lambda: backproject(depth[::STRIDE, ::STRIDE], _strided(K)), repeats),
    })
    points = backproject(depth[::STRIDE, ::STRIDE], _strided(K))
    colors = colorize_labels(labels[::STRIDE, ::STRIDE], DEFAULT_NUM_CLASSES)
    steps['PointCloud2 message (stride 2)'] = cpu_ms(
        lambda: make_pointcloud2(points, colors, header), repeats)
    return steps


def _strided(K: np.ndarray) -> np.ndarray:
    scaled = np.array(K, np.float64)
    scaled[:2] /= STRIDE
    return scaled


def render_markdown(steps: dict[str, float]) -> list[str]:
    """Markdown lines of a table of per-step CPU milliseconds."""
    lines = ['## Per-frame steps of the node (CPU time, one thread)', '',
             'One 640x480 frame, model input 256x512, no ROS transport; '
             '`python -m benchmarks.hot_path`.', '',
             '| step | CPU ms |', '|---|---|']
    lines += [f'| {name} | {value:.2f} |' for name, value in steps.items()]
    return lines


def main(argv: list[str] | None = None) -> int:
    """The command line (module docstring); prints the table."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--repeats', type=int, default=30, help='timed calls per step')
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f'--repeats must be >= 1, got {args.repeats}')
    print('\n'.join(render_markdown(measure(args.repeats))))
    return 0


if __name__ == '__main__':
    sys.exit(main())
