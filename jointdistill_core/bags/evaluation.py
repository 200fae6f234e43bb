"""Evaluate perception outputs against a camera bag's ground truth; write report and figures.

ROS-free: the live evaluator (jointdistill_ros.bag_eval) collects the node's output messages
as CDR bytes with their latencies and hands them here; the offline mode reads them from a bag.
Outputs are matched to input frames by exact header stamp (the node copies the input header);
ground truth and camera_info to images by nearest stamp within a slop (reader.match_nearest).
Every input frame is either matched (all expected outputs arrived), partial, or dropped;
outputs whose stamp is in no input frame are unmatched. Metrics (jointdistill_core.metrics,
DESIGN section 6) pool the matched frames.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from jointdistill_core.bags import codec
from jointdistill_core.bags.figures import write_latency_figures, write_sample_figure
from jointdistill_core.bags.layout import (
    DEFAULT_SLOP_NS,
    IMAGE_TYPE,
    BagError,
    CameraTopics,
    OutputTopics,
)
from jointdistill_core.bags.reader import (
    FrameStats,
    bag_topics,
    camera_layout,
    iter_camera_frames,
    iter_raw,
)
from jointdistill_core.classes import CITYSCAPES_7
from jointdistill_core.metrics import DepthAccumulator, SegmentationAccumulator

SAMPLE_FIGURES = 3
# Offline: log time - header stamp counts as latency only when every output lies in this range
# (a bag written by `--record`, or recorded on the input's sim clock); wall-clock recordings
# of a replayed bag have offsets of years and yield no latency.
OFFLINE_LATENCY_WINDOW_NS = (0, 60 * 10**9)


@dataclass
class FrameOutputs:
    """The node's outputs for one input stamp: CDR bytes of sensor_msgs/Image, and timing.

    done_s: time (s, any monotonic clock) the frame's last output arrived, for throughput.
    latency_ms: that arrival minus the wall time the input image was published.
    """

    stamp_ns: int
    depth_raw: bytes | None = None
    labels_raw: bytes | None = None
    done_s: float | None = None
    latency_ms: float | None = None

    def kinds(self) -> set[str]:
        return {kind for kind, raw in (('depth', self.depth_raw), ('labels', self.labels_raw))
                if raw is not None}


def check_report_dir(out: str | Path, force: bool) -> Path:
    """The report folder `out`; BagError when it holds a report and `force` is off."""
    out = Path(out)
    if (out / 'report.json').exists() and not force:
        raise BagError(f'{out} already holds a report; pass --force to replace it')
    if out.exists() and not out.is_dir():
        raise BagError(f'--out {out} is a file, not a directory')
    _remove_old_figures(out)
    return out


def _remove_old_figures(out: Path) -> None:
    """A replaced report takes its figures along (sample indices differ between runs)."""
    try:
        old = json.loads((out / 'report.json').read_text())
    except (OSError, ValueError):
        return
    for name in old.get('figures', []) if isinstance(old, dict) else []:
        if isinstance(name, str) and Path(name).name == name and name.endswith('.png'):
            (out / name).unlink(missing_ok=True)


def _finite_or_none(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def latency_summary(latencies_ms: list[float]) -> dict[str, float | None]:
    """Mean, p50, p95 and max of latencies (ms); None each for no latencies."""
    if not latencies_ms:
        return {'mean': None, 'p50': None, 'p95': None, 'max': None}
    values = np.asarray(latencies_ms, np.float64)
    return {'mean': float(values.mean()), 'p50': float(np.percentile(values, 50)),
            'p95': float(np.percentile(values, 95)), 'max': float(values.max())}


def throughput_fps(done_times_s: list[float]) -> float | None:
    """Frames per second between the first and the last completed frame."""
    if len(done_times_s) < 2:
        return None
    span = max(done_times_s) - min(done_times_s)
    return (len(done_times_s) - 1) / span if span > 0 else None


class _Scorer:
    """Pools metrics over matched frames and keeps what the figures need."""

    def __init__(self, num_classes: int, class_names: list[str]) -> None:
        self.num_classes = num_classes
        self.class_names = class_names
        self.segmentation = SegmentationAccumulator(num_classes)
        self.depth = DepthAccumulator()
        self.frames_with_labels_gt = 0
        self.frames_with_depth_gt = 0

    def add(self, frame, depth: np.ndarray | None, labels: np.ndarray | None) -> None:
        for name, prediction in (('depth', depth), ('labels', labels)):
            if prediction is not None and prediction.shape != frame.image.shape[:2]:
                raise BagError(f'output {name} at stamp {frame.stamp_ns} ns is '
                               f'{prediction.shape[1]}x{prediction.shape[0]} but the input image '
                               f'is {frame.image.shape[1]}x{frame.image.shape[0]}')
        if frame.labels is not None and labels is not None:
            try:
                self.segmentation.update(labels, frame.labels)
            except ValueError as error:
                raise BagError(f'labels at stamp {frame.stamp_ns} ns: {error} '
                               f'(--num-classes is {self.num_classes})') from error
            self.frames_with_labels_gt += 1
        if frame.depth is not None and depth is not None:
            self.depth.update(depth, frame.depth)
            self.frames_with_depth_gt += 1

    def metrics(self) -> dict[str, Any]:
        result: dict[str, Any] = {key: None for key in (
            'miou', 'pixel_acc', 'iou_per_class', 'abs_err', 'abs_rel', 'rmse',
            'delta1', 'delta2', 'delta3')}
        if self.frames_with_labels_gt:
            seg = self.segmentation.compute()
            result.update(miou=_finite_or_none(seg['miou']),
                          pixel_acc=_finite_or_none(seg['pixel_acc']),
                          iou_per_class={name: _finite_or_none(value) for name, value in
                                         zip(self.class_names, seg['iou_per_class'])},
                          segmentation_pixels=seg['valid_pixels'])
        if self.frames_with_depth_gt:
            depth = self.depth.compute()
            result.update({key: _finite_or_none(depth[key]) for key in (
                'abs_err', 'abs_rel', 'rmse', 'delta1', 'delta2', 'delta3')})
            result.update(depth_pixels=depth['valid_pixels'],
                          depth_nonfinite_predictions=depth['nonfinite_predictions'])
        result['frames_with_labels_gt'] = self.frames_with_labels_gt
        result['frames_with_depth_gt'] = self.frames_with_depth_gt
        return result


def class_names_for(num_classes: int) -> list[str]:
    """Cityscapes-7 names for 7 classes, else class_0, class_1, ..."""
    if num_classes == len(CITYSCAPES_7):
        return list(CITYSCAPES_7)
    return [f'class_{index}' for index in range(num_classes)]


def _decode_outputs(outputs: FrameOutputs, output_topics: OutputTopics
                    ) -> tuple[np.ndarray | None, np.ndarray | None]:
    depth = labels = None
    if outputs.depth_raw is not None:
        depth = codec.decode_depth(codec.deserialize(outputs.depth_raw, IMAGE_TYPE),
                                   output_topics.depth)
    if outputs.labels_raw is not None:
        labels = codec.decode_labels(codec.deserialize(outputs.labels_raw, IMAGE_TYPE),
                                     output_topics.labels)
    return depth, labels


def evaluate_outputs(input_bag: str | Path, outputs: dict[int, FrameOutputs], out: str | Path,
                     num_classes: int, topics: CameraTopics = CameraTopics(),
                     output_topics: OutputTopics = OutputTopics(),
                     run_info: dict[str, Any] | None = None,
                     slop_ns: int = DEFAULT_SLOP_NS) -> dict[str, Any]:
    """Match `outputs` (stamp -> FrameOutputs, consumed) to the input bag's frames, score them
    and write report.json, report.md and PNG figures into `out`. Returns the report dict.

    num_classes: the model's class count. slop_ns: ground truth and camera_info match an
    image within this many nanoseconds (reader.match_nearest)."""
    layout = camera_layout(input_bag, topics)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    expected = set().union(*(o.kinds() for o in outputs.values())) or {'depth', 'labels'}
    image_count = bag_topics(input_bag)[layout.topic('image')][1]
    sample_targets = sorted({round(i) for i in np.linspace(0, image_count - 1, SAMPLE_FIGURES)})
    scorer = _Scorer(num_classes, class_names_for(num_classes))
    stats = FrameStats()
    per_frame, latencies, done_times, figures = [], [], [], []
    counts = {'input': 0, 'matched': 0, 'partial': 0, 'dropped': 0}
    for index, frame in enumerate(iter_camera_frames(input_bag, topics, stats, slop_ns)):
        counts['input'] += 1
        frame_outputs = outputs.pop(frame.stamp_ns, None)
        kinds = frame_outputs.kinds() if frame_outputs else set()
        status = 'matched' if kinds >= expected else ('partial' if kinds else 'dropped')
        counts[status] += 1
        record = {'index': index, 'stamp_ns': frame.stamp_ns, 'status': status, 'latency_ms': None}
        if status == 'matched':
            depth, labels = _decode_outputs(frame_outputs, output_topics)
            scorer.add(frame, depth, labels)
            record['latency_ms'] = frame_outputs.latency_ms
            if frame_outputs.latency_ms is not None:
                latencies.append(frame_outputs.latency_ms)
            if frame_outputs.done_s is not None:
                done_times.append(frame_outputs.done_s)
            if sample_targets and index >= sample_targets[0]:
                sample_targets = [t for t in sample_targets if t > index]
                figures.append(write_sample_figure(out / f'sample_{index:04d}.png', frame, depth,
                                                   labels, num_classes))
        per_frame.append(record)
    if counts['input'] == 0:
        raise BagError(f'bag {input_bag} has no decodable frames on {layout.topic("image")}')
    unmatched = len(outputs)
    done_times.extend(o.done_s for o in outputs.values()
                      if o.done_s is not None and o.kinds() >= expected)
    figures = write_latency_figures(out, per_frame) + figures
    report = {
        **(run_info or {}),
        'input_bag': str(input_bag),
        'outputs': sorted(expected),
        'num_classes': num_classes,
        'metrics': scorer.metrics(),
        'latency_ms': latency_summary(latencies),
        'fps': throughput_fps(done_times),
        'frames': {**counts, 'dropped': counts['dropped'] + counts['partial'],
                   'unmatched': unmatched},
        'matching': {'slop_ms': slop_ns / 1e6, **stats.as_dict()},
        'topics': {**{role: topic for role, (topic, _) in layout.topics.items()},
                   'output_depth': output_topics.depth, 'output_labels': output_topics.labels},
        'figures': [path.name for path in figures],
        'per_frame': per_frame,
    }
    (out / 'report.json').write_text(json.dumps(report, indent=2) + '\n')
    (out / 'report.md').write_text(render_markdown(report))
    return report


def read_output_bag(path: str | Path, output_topics: OutputTopics = OutputTopics()
                    ) -> dict[int, FrameOutputs]:
    """Outputs recorded in a bag; latency = log time - stamp when on the input clock."""
    available = bag_topics(path)
    wanted = [t for t in (output_topics.depth, output_topics.labels) if t in available]
    if not wanted:
        raise BagError(f'outputs bag {path} has neither {output_topics.depth} nor '
                       f'{output_topics.labels} '
                       f'(it has: {", ".join(sorted(available)) or "no topics"})')
    for topic in wanted:
        if available[topic][0] != IMAGE_TYPE:
            raise BagError(f'outputs bag {path}: {topic} carries {available[topic][0]}, '
                           f'expected {IMAGE_TYPE}')
    outputs: dict[int, FrameOutputs] = {}
    log_offsets: dict[int, int] = {}
    for message in iter_raw(path, wanted):
        stamp = codec.stamp_ns_of(codec.deserialize(message.data, IMAGE_TYPE))
        frame = outputs.setdefault(stamp, FrameOutputs(stamp))
        if message.topic == output_topics.depth:
            frame.depth_raw = message.data
        else:
            frame.labels_raw = message.data
        offset = message.log_time_ns - stamp
        log_offsets[stamp] = max(log_offsets.get(stamp, offset), offset)
    low, high = OFFLINE_LATENCY_WINDOW_NS
    on_input_clock = all(low <= offset < high for offset in log_offsets.values())
    for stamp, frame in outputs.items():
        frame.done_s = (stamp + log_offsets[stamp]) / 1e9
        if on_input_clock:
            frame.latency_ms = log_offsets[stamp] / 1e6
    return outputs


def run_offline_eval(input_bag: str | Path, outputs_bag: str | Path, out: str | Path,
                     num_classes: int, topics: CameraTopics = CameraTopics(),
                     output_topics: OutputTopics = OutputTopics(), force: bool = False,
                     slop_ns: int = DEFAULT_SLOP_NS,
                     run_info: dict[str, Any] | None = None) -> dict[str, Any]:
    """`jointdistill bag eval --bag IN --outputs OUTBAG`: num_classes of the model that
    produced the outputs; run_info is added to the report."""
    out = check_report_dir(out, force)
    camera_layout(input_bag, topics)
    outputs = read_output_bag(outputs_bag, output_topics)
    return evaluate_outputs(input_bag, outputs, out, num_classes, topics, output_topics,
                            {'mode': 'offline', 'outputs_bag': str(outputs_bag),
                             **(run_info or {})}, slop_ns)


def _fmt(value: float | None, scale: float = 1.0, digits: int = 2, unit: str = '') -> str:
    return 'n/a' if value is None else f'{value * scale:.{digits}f}{unit}'


def summary_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, formatted value) rows of the summary table of a report; metrics only for the
    tasks the bag has ground truth for."""
    metrics, latency, frames = report['metrics'], report['latency_ms'], report['frames']
    rows = []
    if metrics['frames_with_labels_gt']:
        rows += [('mIoU', _fmt(metrics['miou'], 100, 2, ' %')),
                 ('pixel accuracy', _fmt(metrics['pixel_acc'], 100, 2, ' %'))]
    if metrics['frames_with_depth_gt']:
        rows += [('abs rel', _fmt(metrics['abs_rel'], 1, 4)),
                 ('RMSE', _fmt(metrics['rmse'], 1, 3, ' m')),
                 ('delta1', _fmt(metrics['delta1'], 100, 2, ' %'))]
    return rows + [
        ('latency mean', _fmt(latency['mean'], 1, 1, ' ms')),
        ('latency p95', _fmt(latency['p95'], 1, 1, ' ms')),
        ('throughput', _fmt(report['fps'], 1, 2, ' FPS')),
        ('frames matched', f"{frames['matched']} / {frames['input']}"),
        ('frames dropped', str(frames['dropped'])),
        ('outputs unmatched', str(frames['unmatched'])),
    ]


def format_summary(report: dict[str, Any]) -> str:
    """The summary table of a report as aligned plain text."""
    rows = summary_rows(report)
    width = max(len(name) for name, _ in rows)
    value_width = max(len(value) for _, value in rows)
    rule = '-' * (width + value_width + 3)
    lines = [rule] + [f'{name:<{width}} | {value:>{value_width}}' for name, value in rows] + [rule]
    return '\n'.join(lines)


def replay_description(report: dict[str, Any]) -> str | None:
    """How a live run replayed the bag, in words (None offline)."""
    if report.get('replay') == 'lock-step':
        return ('lock-step: each frame published once the outputs of the previous one arrived '
                '(or the frame timeout passed), so every frame is evaluated; latency without '
                'queueing')
    if report.get('replay') == 'realtime':
        return (f"realtime at rate {report['rate']:g}: frames at the bag's timing; latency and "
                'drops under that load')
    return None


def render_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown (report.md)."""
    metrics = report['metrics']
    lines = [f"# Bag evaluation ({report.get('mode', 'offline')})", '',
             f"Input bag: `{report['input_bag']}`"]
    for key, label in (('model', 'Model'), ('outputs_bag', 'Outputs bag')):
        if report.get(key) is not None:
            lines.append(f'{label}: `{report[key]}`')
    if replay_description(report):
        lines.append(f'Replay: {replay_description(report)}.')
    lines += ['', '| quantity | value |', '|---|---|']
    lines += [f'| {name} | {value} |' for name, value in summary_rows(report)]
    lines += ['']
    if not (metrics['frames_with_labels_gt'] or metrics['frames_with_depth_gt']):
        lines += ['No ground truth matched any frame: latency, throughput and frame counts '
                  'only.']
    else:
        lines += ['mIoU and pixel accuracy over all matched frames (void ignored); depth '
                  'metrics over pixels with valid ground truth.']
    lines[-1] += (' Latency = arrival of the last output of a frame minus the wall time its '
                  'image was published.')
    if metrics.get('iou_per_class'):
        lines += ['', '## IoU per class', '', '| class | IoU |', '|---|---|']
        lines += [f'| {name} | {_fmt(value, 100, 2, " %")} |'
                  for name, value in metrics['iou_per_class'].items()]
    frames = report['frames']
    lines += ['', '## Frames', '', '| count | value |', '|---|---|']
    lines += [f'| {key} | {value} |' for key, value in frames.items()]
    matching = report['matching']
    lines += ['', '## Ground truth and camera_info matched to images', '',
              f"Nearest header stamp within {matching['slop_ms']:g} ms (`--slop`); "
              f"{matching['images']} images, {matching['duplicate_image_stamps']} duplicate "
              f"image stamps, {matching['undecodable_images']} undecodable images.", '',
              '| topic | matched | unmatched | undecodable |', '|---|---|---|---|']
    for role in ('depth', 'labels', 'camera_info'):
        if role in matching:
            counts = matching[role]
            lines.append(f"| {report['topics'][role]} | {counts['matched']} | "
                         f"{counts['unmatched']} | {counts['undecodable']} |")
    if report['figures']:
        lines += ['', '## Figures', '']
        lines += [f'![{name}]({name})' for name in report['figures']]
    return '\n'.join(lines) + '\n'
