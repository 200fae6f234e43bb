"""Read rosbag2 bags with rosbags: raw messages for replay, decoded camera frames for evaluation."""
from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.rosbag2 import Reader

from jointdistill_core.bags import codec
from jointdistill_core.bags.layout import CAMERA_INFO_TYPE, IMAGE_TYPE, BagError, CameraTopics


@dataclass(frozen=True)
class RawMessage:
    """One message of a bag: topic, type, log time (ns) and CDR bytes."""
    topic: str
    msgtype: str
    log_time_ns: int
    data: bytes


@dataclass
class CameraFrame:
    """One camera frame: image (H, W, 3) uint8 RGB; depth (H, W) float32 metres, NaN invalid;
    labels (H, W) uint8, 255 void; K (3, 3) float32 pixels. Missing parts are None."""

    stamp_ns: int
    image: np.ndarray | None = None
    depth: np.ndarray | None = None
    labels: np.ndarray | None = None
    K: np.ndarray | None = None


@dataclass
class FrameStats:
    """Messages that could not be paired into frames (never dropped silently)."""

    ground_truth_without_image: int = 0
    duplicate_stamps: int = 0
    stamps: list[int] = field(default_factory=list)


@contextlib.contextmanager
def open_bag(path: str | Path) -> Iterator[Reader]:
    """rosbags Reader with every failure turned into one BagError naming the bag."""
    path = Path(path)
    if not path.exists():
        raise BagError(f'bag {path} does not exist')
    if path.is_dir() and not (path / 'metadata.yaml').is_file():
        raise BagError(f'{path} is not a rosbag2 directory (no metadata.yaml)')
    try:
        reader = Reader(path)
        reader.open()
    except Exception as error:  # rosbags raises ReaderError, yaml, sqlite and OS errors
        raise BagError(f'cannot open bag {path}: {error} (truncated or damaged file?)') from error
    try:
        yield reader
    finally:
        with contextlib.suppress(Exception):
            reader.close()


def bag_topics(path: str | Path) -> dict[str, tuple[str, int]]:
    """topic -> (message type, message count)."""
    with open_bag(path) as reader:
        return {name: (info.msgtype or '?', info.msgcount) for name, info in reader.topics.items()}


def iter_raw(path: str | Path, topics: Iterable[str] | None = None) -> Iterator[RawMessage]:
    """Every message (or those on `topics`) in log-time order, as CDR bytes."""
    with open_bag(path) as reader:
        connections = reader.connections
        if topics is not None:
            wanted = set(topics)
            missing = wanted - {c.topic for c in connections}
            if missing:
                raise BagError(f'bag {path} has no topic {", ".join(sorted(missing))} '
                               f'(it has: {", ".join(sorted(reader.topics))})')
            connections = [c for c in connections if c.topic in wanted]
        try:
            for connection, log_time, data in reader.messages(connections=connections):
                yield RawMessage(connection.topic, connection.msgtype, log_time, bytes(data))
        except BagError:
            raise
        except Exception as error:
            raise BagError(f'cannot read bag {path}: {error} '
                           '(truncated or damaged file?)') from error


def _decode_into(frame: CameraFrame, topic: str, msg: Any, topics: CameraTopics) -> None:
    if topic == topics.image:
        frame.image = codec.decode_rgb(msg, topic)
    elif topic == topics.depth_gt:
        frame.depth = codec.decode_depth(msg, topic)
    elif topic == topics.labels_gt:
        frame.labels = codec.decode_labels(msg, topic)
    else:
        frame.K = codec.camera_matrix(msg)


def _check_sizes(frame: CameraFrame, topics: CameraTopics) -> None:
    expected = frame.image.shape[:2]
    for name, array in ((topics.depth_gt, frame.depth), (topics.labels_gt, frame.labels)):
        if array is not None and array.shape[:2] != expected:
            raise BagError(
                f'frame at stamp {frame.stamp_ns} ns: {name} is {array.shape[1]}x{array.shape[0]} '
                f'but {topics.image} is {expected[1]}x{expected[0]} (width x height); '
                'ground truth must have the image size')


def camera_topics_present(path: str | Path, topics: CameraTopics) -> set[str]:
    """Which of the camera layout's topics the bag has; raises if the image topic is missing
    or a topic has the wrong message type."""
    available = bag_topics(path)
    if topics.image not in available:
        raise BagError(f'bag {path} has no image topic {topics.image} '
                       f'(it has: {", ".join(sorted(available)) or "no topics"})')
    expected = {topics.image: IMAGE_TYPE, topics.depth_gt: IMAGE_TYPE,
                topics.labels_gt: IMAGE_TYPE, topics.camera_info: CAMERA_INFO_TYPE}
    present = set()
    for topic, msgtype in expected.items():
        if topic in available:
            if available[topic][0] != msgtype:
                raise BagError(f'bag {path}: {topic} carries {available[topic][0]}, '
                               f'expected {msgtype}')
            present.add(topic)
    return present


def iter_camera_frames(path: str | Path, topics: CameraTopics = CameraTopics(),
                       stats: FrameStats | None = None) -> Iterator[CameraFrame]:
    """Frames of a camera bag in log-time order, paired by header stamp.

    A frame is complete when every present topic delivered its message for that stamp; bags
    recorded live may interleave frames, so incomplete frames wait (bounded by the bag's
    interleaving) and are flushed at the end with their missing parts as None.
    """
    stats = stats if stats is not None else FrameStats()
    present = camera_topics_present(path, topics)
    pending: dict[int, tuple[CameraFrame, set[str]]] = {}
    seen_image_stamps: set[int] = set()
    for message in iter_raw(path, present):
        msg = codec.deserialize(message.data, message.msgtype)
        stamp = codec.stamp_ns_of(msg)
        if message.topic == topics.image:
            if stamp in seen_image_stamps:
                stats.duplicate_stamps += 1
                continue
            seen_image_stamps.add(stamp)
        frame, arrived = pending.setdefault(stamp, (CameraFrame(stamp), set()))
        _decode_into(frame, message.topic, msg, topics)
        arrived.add(message.topic)
        if arrived == present:
            del pending[stamp]
            _check_sizes(frame, topics)
            stats.stamps.append(stamp)
            yield frame
    for stamp in sorted(pending):
        frame, _ = pending[stamp]
        if frame.image is None:
            stats.ground_truth_without_image += 1
            continue
        _check_sizes(frame, topics)
        stats.stamps.append(stamp)
        yield frame
