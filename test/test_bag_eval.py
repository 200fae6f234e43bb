"""`jointdistill bag eval`: live (node in its own process, bag replayed over DDS) and offline
(recorded outputs). Metrics must equal those computed here, with an independent numpy
implementation, from the Predictor run directly on the same frames."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import REPO_ROOT
from jointdistill_core.bags import codec
from jointdistill_core.bags.evaluation import run_offline_eval
from jointdistill_core.bags.reader import iter_camera_frames
from jointdistill_core.bags.writer import BagWriter
from jointdistill_core.cli import main
from jointdistill_core.inference import Predictor
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
         '--model', str(model), '--out', str(out), '--record', str(record)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'mIoU' in result.stdout and 'latency p95' in result.stdout
    report = json.loads((out / 'report.json').read_text())
    assert report['mode'] == 'live'
    counts = report['frames']
    assert counts['input'] == FRAMES and counts['unmatched'] == 0
    assert counts['matched'] + counts['dropped'] == FRAMES and counts['matched'] >= 1
    matched = [r['stamp_ns'] for r in report['per_frame'] if r['status'] == 'matched']
    matched_frames = [f for f in frames if f.stamp_ns in matched]
    assert_metrics_equal(report['metrics'],
                         reference_metrics([predictions[s] for s in matched], matched_frames))
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
    assert '| mIoU |' in (out / 'report.md').read_text()

    offline = run_offline_eval(bag, record, tmp_path / 'offline')
    assert offline['frames']['matched'] == counts['matched']
    for key in ('miou', 'pixel_acc', 'abs_err', 'abs_rel', 'rmse', 'delta1'):
        assert offline['metrics'][key] == report['metrics'][key]
    # The recording's log time is stamp + measured latency: offline recovers the latency.
    assert offline['latency_ms']['mean'] == pytest.approx(latency['mean'], abs=1e-3)


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
    _, bag, _, frames, predictions = material
    stamps = [f.stamp_ns for f in frames]
    kept = stamps[:2] + stamps[3:]           # frame 2 dropped
    stray = stamps[-1] + 10**9               # an output for no input frame
    outputs = tmp_path / 'outputs'
    write_outputs_bag(outputs, predictions, kept + [stray], delay_ns=5_000_000)
    out = tmp_path / 'report'
    command = ['bag', 'eval', '--bag', str(bag), '--outputs', str(outputs), '--out', str(out)]
    assert main(command) == 0
    report = json.loads((out / 'report.json').read_text())
    assert report['frames']['input'] == FRAMES
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
    report = run_offline_eval(bag, outputs, tmp_path / 'seg')
    assert report['outputs'] == ['labels']
    assert report['frames']['matched'] == FRAMES
    assert report['metrics']['abs_rel'] is None and report['metrics']['miou'] is not None
    from jointdistill_core.bags.layout import CameraTopics
    report = run_offline_eval(bag, outputs, tmp_path / 'nogt',
                              CameraTopics(depth_gt=no_gt_topic, labels_gt=no_gt_topic))
    assert report['metrics']['miou'] is None and report['metrics']['rmse'] is None
    assert report['frames']['matched'] == FRAMES  # latency and throughput still reported


def test_eval_errors_are_one_clear_line(material, tmp_path, capsys):
    root, bag, model, frames, predictions = material
    stamps = [f.stamp_ns for f in frames]
    outputs = tmp_path / 'outputs'
    write_outputs_bag(outputs, predictions, stamps, delay_ns=0)
    cases = {
        'missing topic': (['--bag', str(bag), '--outputs', str(outputs), '--image-topic', '/front'],
                          'no image topic /front'),
        'outputs lack topics': (['--bag', str(bag), '--outputs', str(bag)],
                                'has neither /depth/image nor /segmentation/labels'),
        'missing model': (['--bag', str(bag), '--model', str(root / 'nope.safetensors')],
                          'does not exist'),
        'both modes': (['--bag', str(bag), '--model', str(model), '--outputs', str(outputs)],
                       'exactly one of --model'),
    }
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
