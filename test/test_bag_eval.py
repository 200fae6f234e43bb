"""`jointdistill bag eval`: live (node in its own process, bag replayed over DDS, lock-step by
default) and offline (recorded outputs). Metrics must equal those computed here, with an
independent numpy implementation, from the Predictor run directly on the same frames. Also:
compressed input, a node slower than its camera, ground truth stamped apart from the images,
a bag without ground truth."""
from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
import yaml

from bag_fixtures import write_recorded_rgbd_bag
from conftest import REPO_ROOT
from jointdistill_core.bags import codec
from jointdistill_core.bags.evaluation import run_offline_eval
from jointdistill_core.bags.layout import CameraTopics
from jointdistill_core.bags.reader import iter_camera_frames
from jointdistill_core.bags.writer import BagWriter
from jointdistill_core.cli import main
from jointdistill_core.inference import Predictor
from jointdistill_core.shipped import default_model_path
from jointdistill_ros import cli as ros_cli
from node_helpers import save_tiny_student

FRAMES, HEIGHT, WIDTH, NUM_CLASSES = 6, 120, 160, 7
PNG_MAGIC = b'\x89PNG\r\n\x1a\n'


def reference_metrics(predictions, frames) -> dict[str, float]:
    """Literature definitions (DESIGN section 6), written out independently of metrics.py."""
    confusion = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    errors, ratios, gts = [], [], []
    for prediction, frame in zip(predictions, frames):
        depth, labels = prediction.depth, prediction.labels
        known = frame.labels != 255
        np.add.at(confusion, (frame.labels[known].astype(int), labels[known].astype(int)), 1)
        valid = np.isfinite(frame.depth) & (frame.depth > 0)
        errors.append(depth[valid].astype(np.float64) - frame.depth[valid])
        gts.append(frame.depth[valid].astype(np.float64))
        ratio = depth[valid] / frame.depth[valid]
        ratios.append(np.maximum(ratio, 1 / ratio))
    error, gt, ratio = np.concatenate(errors), np.concatenate(gts), np.concatenate(ratios)
    tp = np.diag(confusion).astype(np.float64)
    union = confusion.sum(0) + confusion.sum(1) - tp
    present = union > 0
    return {'miou': (tp[present] / union[present]).mean(), 'pixel_acc': tp.sum() / confusion.sum(),
            'abs_err': np.abs(error).mean(), 'abs_rel': (np.abs(error) / gt).mean(),
            'rmse': np.sqrt((error ** 2).mean()), 'delta1': (ratio < 1.25).mean()}


def assert_metrics_equal(report_metrics: dict, expected: dict) -> None:
    for key, value in expected.items():
        assert report_metrics[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key


@pytest.fixture(scope='module')
def material(tmp_path_factory):
    """A tiny synthetic bag, a tiny random student, and the Predictor's outputs per stamp."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp('bag_eval')
    bag = root / 'input'
    assert main(['bag', 'make', '--out', str(bag), '--frames', str(FRAMES), '--size',
                 f'{HEIGHT}x{WIDTH}', '--rate', '15']) == 0
    model = save_tiny_student(root / 'student', (64, 96))
    predictor = Predictor.from_checkpoint(model, 'cpu')
    frames = list(iter_camera_frames(bag))
    predictions = {frame.stamp_ns: predictor.predict(frame.image) for frame in frames}
    return root, bag, model, frames, predictions


@pytest.mark.ros
def test_live_eval_matches_direct_predictor_and_offline_replay(material, ros_env, tmp_path):
    _, bag, model, frames, predictions = material
    out, record = tmp_path / 'live', tmp_path / 'outputs'
    env = dict(ros_env, OMP_NUM_THREADS='1')
    env.pop('FASTDDS_DEFAULT_PROFILES_FILE', None)  # the command must set the shipped profile
    result = subprocess.run(
        [sys.executable, '-m', 'jointdistill_ros', 'bag', 'eval', '--bag', str(bag),
         '--model', str(model), '--out', str(out), '--record', str(record), '--device', 'cpu'],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'mIoU' in result.stdout and 'latency p95' in result.stdout
    report = json.loads((out / 'report.json').read_text())
    assert (report['mode'], report['replay'], report['rate']) == ('live', 'lock-step', None)
    assert report['device'] == 'cpu' and report['num_classes'] == NUM_CLASSES
    counts = report['frames']
    # Lock-step replay: every frame of the bag is evaluated.
    assert (counts['input'], counts['matched'], counts['dropped'], counts['unmatched']) == \
        (FRAMES, FRAMES, 0, 0)
    assert report['frames_timed_out'] == 0
    assert_metrics_equal(report['metrics'],
                         reference_metrics([predictions[f.stamp_ns] for f in frames], frames))
    assert set(report['metrics']['iou_per_class']) == {
        'flat', 'construction', 'object', 'nature', 'sky', 'human', 'vehicle'}

    latencies = [r['latency_ms'] for r in report['per_frame'] if r['status'] == 'matched']
    latency = report['latency_ms']
    assert all(0 < value < 60_000 for value in latencies)
    assert latency['mean'] == pytest.approx(np.mean(latencies))
    assert latency['max'] == pytest.approx(max(latencies))
    assert min(latencies) <= latency['p50'] <= latency['p95'] <= latency['max']
    assert report['fps'] is None or report['fps'] > 0
    for name in report['figures']:
        assert (out / name).read_bytes()[:8] == PNG_MAGIC
    assert {'latency_histogram.png', 'latency_per_frame.png'} <= set(report['figures'])
    assert any(name.startswith('sample_') for name in report['figures'])
    markdown = (out / 'report.md').read_text()
    assert '| mIoU |' in markdown and 'Replay: lock-step' in markdown

    offline = run_offline_eval(bag, record, tmp_path / 'offline', NUM_CLASSES)
    assert offline['frames']['matched'] == counts['matched']
    for key in ('miou', 'pixel_acc', 'abs_err', 'abs_rel', 'rmse', 'delta1'):
        assert offline['metrics'][key] == report['metrics'][key]
    # The recording's log time is stamp + measured latency: offline recovers the latency.
    assert offline['latency_ms']['mean'] == pytest.approx(latency['mean'], abs=1e-3)


# The node's model input for the 120x160 frames of the slow-node test: one thread needs about
# 115 ms a frame here, 3.5 times the 33 ms between the frames of a 30 Hz camera.
SLOW_INPUT = (768, 1024)


@pytest.mark.ros
def test_compressed_30hz_bag_on_a_node_slower_than_the_camera_has_every_frame_scored(
        material, ros_env, tmp_path):
    root, _, model, _, _ = material
    bag = tmp_path / 'jpeg_30hz'
    assert main(['bag', 'make', '--out', str(bag), '--frames', '8', '--size',
                 f'{HEIGHT}x{WIDTH}', '--rate', '30', '--compressed', 'jpeg']) == 0
    params = tmp_path / 'slow.yaml'
    params.write_text(yaml.safe_dump({'/**': {'ros__parameters': {
        'input_height': SLOW_INPUT[0], 'input_width': SLOW_INPUT[1], 'num_threads': 1}}}))
    out = tmp_path / 'report'
    env = dict(ros_env, OMP_NUM_THREADS='1')
    result = subprocess.run(
        [sys.executable, '-m', 'jointdistill_ros', 'bag', 'eval', '--bag', str(bag),
         '--model', str(model), '--out', str(out), '--params-file', str(params),
         '--device', 'cpu'], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
        timeout=400)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((out / 'report.json').read_text())
    log = (out / 'node.log').read_text()
    assert "listening on '/camera/image_raw/compressed'" in log, log  # compressed transport
    assert report['topics']['image'] == '/camera/image_raw/compressed'
    assert (report['frames']['input'], report['frames']['matched']) == (8, 8)
    assert report['frames_timed_out'] == 0
    # The precondition: the node needed longer than a camera period for each frame.
    latencies = [record['latency_ms'] for record in report['per_frame']]
    assert np.median(latencies) > 1000 / 30, latencies
    # Scores: those of the Predictor with the node's settings on the decoded JPEG frames.
    torch.set_num_threads(1)
    predictor = Predictor.from_path(model, device='cpu', input_size=SLOW_INPUT)
    frames = list(iter_camera_frames(bag))
    assert_metrics_equal(report['metrics'], reference_metrics(
        [predictor.predict(frame.image, frame.K) for frame in frames], frames))


def write_outputs_bag(path, predictions, stamps, delay_ns: int, labels_only: bool = False):
    with BagWriter(path, 'mcap') as writer:
        for stamp in stamps:
            prediction = predictions.get(stamp, next(iter(predictions.values())))
            if not labels_only:
                writer.write_message('/depth/image',
                                     codec.encode_image(prediction.depth, '32FC1', stamp),
                                     stamp + delay_ns)
            writer.write_message('/segmentation/labels',
                                 codec.encode_image(prediction.labels, 'mono8', stamp),
                                 stamp + delay_ns)


def test_offline_counts_dropped_and_unmatched_and_reads_latency(material, tmp_path):
    _, bag, model, frames, predictions = material
    stamps = [f.stamp_ns for f in frames]
    kept = stamps[:2] + stamps[3:]           # frame 2 dropped
    stray = stamps[-1] + 10**9               # an output for no input frame
    outputs = tmp_path / 'outputs'
    write_outputs_bag(outputs, predictions, kept + [stray], delay_ns=5_000_000)
    out = tmp_path / 'report'
    command = ['bag', 'eval', '--bag', str(bag), '--outputs', str(outputs), '--out', str(out),
               '--model', str(model)]
    assert main(command) == 0
    report = json.loads((out / 'report.json').read_text())
    assert report['frames']['input'] == FRAMES and report['model'] == str(model)
    assert (report['frames']['matched'], report['frames']['dropped'],
            report['frames']['unmatched']) == (FRAMES - 1, 1, 1)
    kept_frames = [f for f in frames if f.stamp_ns in kept]
    assert_metrics_equal(report['metrics'],
                         reference_metrics([predictions[s] for s in kept], kept_frames))
    assert report['latency_ms']['mean'] == pytest.approx(5.0)
    assert report['latency_ms']['p95'] == pytest.approx(5.0)
    # Throughput: 6 completed outputs (5 matched + the stray one, all 5 ms after their
    # stamps) give 5 intervals over the span from the first to the stray one.
    span_s = (stray - stamps[0]) / 1e9
    assert report['fps'] == pytest.approx((len(kept) + 1 - 1) / span_s)
    # Without --force the report is not overwritten.
    assert main(command) == 2


def test_offline_with_labels_only_outputs_and_no_depth_gt(material, tmp_path):
    _, bag, _, frames, predictions = material
    stamps = [f.stamp_ns for f in frames]
    outputs = tmp_path / 'labels_only'
    write_outputs_bag(outputs, predictions, stamps, delay_ns=0, labels_only=True)
    no_gt_topic = '/camera/none'
    report = run_offline_eval(bag, outputs, tmp_path / 'seg', NUM_CLASSES)
    assert report['outputs'] == ['labels']
    assert report['frames']['matched'] == FRAMES
    assert report['metrics']['abs_rel'] is None and report['metrics']['miou'] is not None
    report = run_offline_eval(bag, outputs, tmp_path / 'nogt', NUM_CLASSES,
                              CameraTopics(depth_gt=no_gt_topic, labels_gt=no_gt_topic))
    assert report['metrics']['miou'] is None and report['metrics']['rmse'] is None
    assert report['frames']['matched'] == FRAMES  # latency and throughput still reported


def test_bag_without_ground_truth_reports_and_shows_predictions_only(material, tmp_path,
                                                                     capsys):
    _, bag, model, frames, predictions = material
    images_only = tmp_path / 'images_only'
    with BagWriter(images_only, 'mcap') as writer:
        for frame in frames:
            writer.write_frame(frame.stamp_ns, frame.image)
    outputs = tmp_path / 'outputs'
    write_outputs_bag(outputs, predictions, [f.stamp_ns for f in frames], delay_ns=1_000_000)
    out = tmp_path / 'report'
    # No --model: the shipped student, the node's default, gives the class count.
    capsys.readouterr()
    assert main(['bag', 'eval', '--bag', str(images_only), '--outputs', str(outputs),
                 '--out', str(out)]) == 0
    printed = capsys.readouterr().out
    assert 'latency mean' in printed and 'mIoU' not in printed and 'RMSE' not in printed
    report = json.loads((out / 'report.json').read_text())
    assert report['model'] == str(default_model_path())
    assert report['frames']['matched'] == FRAMES
    assert report['metrics']['frames_with_labels_gt'] == report['metrics']['frames_with_depth_gt'] \
        == 0
    markdown = (out / 'report.md').read_text()
    assert 'No ground truth' in markdown and '| mIoU |' not in markdown
    assert '| abs rel |' not in markdown and '| latency mean |' in markdown
    samples = [name for name in report['figures'] if name.startswith('sample_')]
    assert samples
    panel = cv2.imread(str(out / samples[0]))
    # One row: input | labels predicted | depth predicted (titled tiles of 120x160).
    title_bar = max(12, HEIGHT // 16) + 6
    assert panel.shape == (HEIGHT + title_bar, 3 * WIDTH, 3)
    for tile in np.split(panel[title_bar:], 3, axis=1):  # no empty (black or white) panel
        assert tile.any() and not (tile == 255).all()


def test_ground_truth_stamped_apart_from_the_images_matches_within_the_slop(material,
                                                                             tmp_path):
    _, _, model, _, _ = material
    predictor = Predictor.from_checkpoint(model, 'cpu')
    for offset_ns in (7_000, 10_000_000):  # RealSense-like microseconds, and 10 ms
        recording = write_recorded_rgbd_bag(tmp_path / f'rgbd_{offset_ns}',
                                            depth_offset_ns=offset_ns)
        outputs = tmp_path / f'outputs_{offset_ns}'
        frames = list(iter_camera_frames(recording.path, recording.topics))
        write_outputs_bag(outputs, {f.stamp_ns: predictor.predict(f.image, f.K) for f in frames},
                          recording.image_stamps, delay_ns=0)
        topic_options = ['--image-topic', recording.topics.image, '--depth-gt-topic',
                         recording.topics.depth_gt, '--camera-info-topic',
                         recording.topics.camera_info]
        command = ['bag', 'eval', '--bag', str(recording.path), '--outputs', str(outputs),
                   '--model', str(model)] + topic_options
        assert main(command + ['--out', str(tmp_path / f'default_{offset_ns}')]) == 0
        report = json.loads((tmp_path / f'default_{offset_ns}' / 'report.json').read_text())
        matching = report['matching']
        assert matching['slop_ms'] == 15.0  # the default
        assert matching['depth'] == {'matched': 4, 'unmatched': 0, 'undecodable': 0}
        assert matching['camera_info']['matched'] == 4
        assert report['metrics']['frames_with_depth_gt'] == 4
        assert report['metrics']['delta1'] is not None
    # The 10 ms bag with a tighter slop: the depth matches no image, and the report says so.
    out = tmp_path / 'tight'
    assert main(command + ['--out', str(out), '--slop', '0.005']) == 0
    report = json.loads((out / 'report.json').read_text())
    assert report['matching']['slop_ms'] == 5.0
    assert report['matching']['depth'] == {'matched': 0, 'unmatched': 4, 'undecodable': 0}
    assert report['matching']['camera_info']['matched'] == 4  # stamped with the image
    assert report['metrics']['frames_with_depth_gt'] == 0 and report['metrics']['rmse'] is None
    assert '| /camera/camera/aligned_depth_to_color/image_raw | 0 | 4 | 0 |' in \
        (out / 'report.md').read_text()


def test_eval_errors_are_one_clear_line(material, tmp_path, capsys):
    root, bag, model, frames, predictions = material
    stamps = [f.stamp_ns for f in frames]
    outputs = tmp_path / 'outputs'
    write_outputs_bag(outputs, predictions, stamps, delay_ns=0)
    cameras_params = tmp_path / 'cameras.yaml'
    cases = {
        'missing topic': (['--bag', str(bag), '--outputs', str(outputs), '--image-topic', '/front'],
                          'no image topic /front or /front/compressed'),
        'outputs lack topics': (['--bag', str(bag), '--outputs', str(bag)],
                                'has neither /depth/image nor /segmentation/labels'),
        'missing model': (['--bag', str(bag), '--model', str(root / 'nope.safetensors')],
                          'does not exist'),
        'rate without realtime': (['--bag', str(bag), '--rate', '2'],
                                  '--rate sets the speed of --realtime replay'),
        'live option offline': (['--bag', str(bag), '--outputs', str(outputs), '--record',
                                 str(tmp_path / 'rec')], '--record applies to live evaluation'),
        'realtime offline': (['--bag', str(bag), '--outputs', str(outputs), '--realtime'],
                             '--realtime applies to live evaluation'),
        'multi-camera params': (['--bag', str(bag), '--params-file', str(cameras_params)],
                                'sets cameras'),
    }
    cameras_params.write_text(yaml.safe_dump({'/**': {'ros__parameters': {
        'cameras': ['front', 'rear']}}}))
    big = tmp_path / 'big_gt'
    with BagWriter(big, 'mcap') as writer:
        writer.write_frame(stamps[0], frames[0].image, np.ones((HEIGHT * 2, WIDTH * 2), np.float32))
    cases['gt size'] = (['--bag', str(big), '--outputs', str(outputs)],
                        f'/camera/depth_gt is {WIDTH * 2}x{HEIGHT * 2} but /camera/image_raw is '
                        f'{WIDTH}x{HEIGHT}')
    truncated = tmp_path / 'truncated'
    assert main(['bag', 'make', '--out', str(truncated), '--frames', '2', '--size', '16x16']) == 0
    mcap = next(truncated.glob('*.mcap'))
    mcap.write_bytes(mcap.read_bytes()[:-200])
    cases['truncated'] = (['--bag', str(truncated), '--outputs', str(outputs)], 'truncated')
    for name, (arguments, message) in cases.items():
        capsys.readouterr()
        code = ros_cli.main(['bag', 'eval', '--out', str(tmp_path / name.replace(' ', '_'))]
                            + arguments)
        error = capsys.readouterr().err.strip().splitlines()
        assert code == 2, name
        assert len(error) == 1 and message in error[0], (name, error)
    for option, value, message in (('--device', 'gpu', "device must be 'auto'"),
                                   ('--slop', '-1', 'must be >= 0')):
        with pytest.raises(SystemExit) as exit_info:  # argparse: usage, then the error
            ros_cli.main(['bag', 'eval', '--bag', str(bag), '--out', str(tmp_path), option, value])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
