"""Read rosbag2 bags with rosbags: raw messages for replay, decoded camera frames for evaluation.

Bags as the project writes them, as `ros2 bag record` writes them (sqlite3 or mcap, metadata
version 8 or 9) and as rosbags-convert writes ROS 1 bags: the reader needs only the camera
topics, in CDR, with a std_msgs/Header first.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.rosbag2 import Reader

from jointdistill_core.bags import codec
from jointdistill_core.bags.layout import (
    CAMERA_INFO_TYPE,
    COMPRESSED_DEPTH_SUFFIX,
    COMPRESSED_IMAGE_TYPE,
    COMPRESSED_SUFFIX,
    DEFAULT_SLOP_NS,
    IMAGE_TYPE,
    BagError,
    CameraTopics,
    ImageCodecError,
)


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


# The roles of a camera bag's topics and the message types each may carry.
ROLE_TYPES: dict[str, tuple[str, ...]] = {
    'image': (IMAGE_TYPE, COMPRESSED_IMAGE_TYPE),
    'depth': (IMAGE_TYPE, COMPRESSED_IMAGE_TYPE),
    'labels': (IMAGE_TYPE,),
    'camera_info': (CAMERA_INFO_TYPE,),
}
GROUND_TRUTH_ROLES = ('depth', 'labels', 'camera_info')
# The CameraFrame field each role fills.
_FRAME_FIELDS = {'image': 'image', 'depth': 'depth', 'labels': 'labels', 'camera_info': 'K'}


@dataclass(frozen=True)
class CameraLayout:
    """The topics of one camera in a bag, as found there: role ('image', 'depth', 'labels',
    'camera_info') -> (topic, message type), for the roles the bag has."""

    topics: dict[str, tuple[str, str]]

    def topic(self, role: str) -> str | None:
        return self.topics[role][0] if role in self.topics else None

    def compressed(self, role: str) -> bool:
        return role in self.topics and self.topics[role][1] == COMPRESSED_IMAGE_TYPE


def camera_layout(path: str | Path, topics: CameraTopics = CameraTopics()) -> CameraLayout:
    """Find the camera topics in a bag. The image is `topics.image` or, when the bag has
    only image_transport's `<image>/compressed`, that one; depth likewise `topics.depth_gt`
    or `<depth_gt>/compressedDepth`. Raises BagError when the image is missing or a topic
    carries a type its role cannot have."""
    available = bag_topics(path)
    wanted = {'image': (topics.image, topics.image + COMPRESSED_SUFFIX),
              'depth': (topics.depth_gt, topics.depth_gt + COMPRESSED_DEPTH_SUFFIX),
              'labels': (topics.labels_gt,), 'camera_info': (topics.camera_info,)}
    found = {}
    for role, candidates in wanted.items():
        topic = next((name for name in candidates if name in available), None)
        if topic is None:
            if role == 'image':
                raise BagError(f'bag {path} has no image topic {" or ".join(candidates)} '
                               f'(it has: {", ".join(sorted(available)) or "no topics"})')
            continue
        msgtype = available[topic][0]
        if msgtype not in ROLE_TYPES[role]:
            raise BagError(f'bag {path}: {topic} carries {msgtype}, expected '
                           f'{" or ".join(ROLE_TYPES[role])}')
        found[role] = (topic, msgtype)
    return CameraLayout(found)


@dataclass
class PartCounts:
    """Messages of one ground-truth topic (or camera_info): matched to an image stamp within
    the slop, unmatched (no image that near, or another message nearer to it), and matched
    but undecodable (corrupt compressed data)."""

    matched: int = 0
    unmatched: int = 0
    undecodable: int = 0


@dataclass
class FrameStats:
    """How a camera bag's messages became frames; nothing is dropped without a count."""

    images: int = 0
    duplicate_image_stamps: int = 0
    undecodable_images: int = 0
    parts: dict[str, PartCounts] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {'images': self.images, 'duplicate_image_stamps': self.duplicate_image_stamps,
                'undecodable_images': self.undecodable_images,
                **{role: vars(counts) for role, counts in self.parts.items()}}


def match_nearest(image_stamps: np.ndarray, stamps: list[int], slop_ns: int) -> dict[int, int]:
    """Message index -> image stamp: each message goes to the image stamp nearest to its own,
    if within slop_ns, and each image takes at most one message (the nearest; the earlier on a
    tie), like message_filters' ApproximateTime for two topics. image_stamps: sorted, unique."""
    best: dict[int, tuple[int, int]] = {}  # image stamp -> (distance, message index)
    if image_stamps.size:
        for index, stamp in enumerate(stamps):
            position = int(np.searchsorted(image_stamps, stamp))
            neighbours = image_stamps[max(position - 1, 0):position + 1]
            nearest = int(neighbours[np.argmin(np.abs(neighbours - stamp))])
            distance = abs(nearest - stamp)
            if distance <= slop_ns and (nearest not in best or distance < best[nearest][0]):
                best[nearest] = (distance, index)
    return {index: stamp for stamp, (_, index) in best.items()}


@dataclass
class _Plan:
    """Which message of which topic (by its order in the bag) belongs to which frame."""

    layout: CameraLayout
    images: dict[int, int]                   # index on the image topic -> stamp (first kept)
    parts: dict[str, dict[int, int]]         # role -> message index -> image stamp
    expected: dict[int, set[str]]            # image stamp -> roles of that frame


def _plan(path: str | Path, layout: CameraLayout, stats: FrameStats, slop_ns: int) -> _Plan:
    topics = {topic: role for role, (topic, _) in layout.topics.items()}
    stamps: dict[str, list[int]] = {role: [] for role in layout.topics}
    for message in iter_raw(path, topics):
        stamps[topics[message.topic]].append(codec.header_stamp_ns(message.data))
    images: dict[int, int] = {}
    seen: set[int] = set()
    for index, stamp in enumerate(stamps['image']):
        if stamp in seen:
            stats.duplicate_image_stamps += 1
        else:
            seen.add(stamp)
            images[index] = stamp
    stats.images = len(images)
    image_stamps = np.array(sorted(seen), dtype=np.int64)
    expected = {stamp: {'image'} for stamp in seen}
    parts = {}
    for role in GROUND_TRUTH_ROLES:
        if role not in stamps:
            continue
        parts[role] = match_nearest(image_stamps, stamps[role], slop_ns)
        stats.parts[role] = PartCounts(matched=len(parts[role]),
                                       unmatched=len(stamps[role]) - len(parts[role]))
        for stamp in parts[role].values():
            expected[stamp].add(role)
    return _Plan(layout, images, parts, expected)


def _decode(role: str, msg: Any, topic: str) -> np.ndarray:
    """One part of a frame; ImageCodecError for corrupt compressed data, BagError otherwise."""
    try:
        if role == 'image':
            return codec.decode_rgb(msg, topic)
        if role == 'depth':
            return codec.decode_depth(msg, topic)
        if role == 'labels':
            return codec.decode_labels(msg, topic)
        return codec.camera_matrix(msg)
    except ImageCodecError as error:
        if error.field == 'format':  # the topic's format, not one damaged message
            raise BagError(f'{topic}: {error}') from error
        raise


def _check_sizes(frame: CameraFrame, layout: CameraLayout) -> None:
    expected = frame.image.shape[:2]
    for role, array in (('depth', frame.depth), ('labels', frame.labels)):
        if array is not None and array.shape[:2] != expected:
            raise BagError(
                f'frame at stamp {frame.stamp_ns} ns: {layout.topic(role)} is '
                f'{array.shape[1]}x{array.shape[0]} but {layout.topic("image")} is '
                f'{expected[1]}x{expected[0]} (width x height); ground truth must have the '
                'image size')


def iter_camera_frames(path: str | Path, topics: CameraTopics = CameraTopics(),
                       stats: FrameStats | None = None,
                       slop_ns: int = DEFAULT_SLOP_NS) -> Iterator[CameraFrame]:
    """Frames of a camera bag (layout: `camera_layout`), each yielded once all its parts
    arrived, in the bag's log-time order.

    Ground truth and camera_info are matched to images by header stamp, approximately: each
    message to the nearest image stamp within slop_ns nanoseconds (`match_nearest`). Two
    passes: the first reads only the stamps, so frames are complete as soon as their last
    part is read (bags recorded live interleave topics). Images with corrupt compressed data
    are skipped, corrupt ground truth left out; `stats` counts everything.
    """
    stats = stats if stats is not None else FrameStats()
    layout = camera_layout(path, topics)
    plan = _plan(path, layout, stats, slop_ns)
    roles = {topic: role for role, (topic, _) in layout.topics.items()}
    counters = dict.fromkeys(roles, 0)
    pending: dict[int, tuple[CameraFrame, set[str]]] = {}
    for message in iter_raw(path, roles):
        role, index = roles[message.topic], counters[message.topic]
        counters[message.topic] += 1
        stamp = plan.images.get(index) if role == 'image' else plan.parts[role].get(index)
        if stamp is None:
            continue
        frame, remaining = pending.setdefault(stamp, (CameraFrame(stamp),
                                                      set(plan.expected[stamp])))
        try:
            value = _decode(role, codec.deserialize(message.data, message.msgtype),
                            message.topic)
        except ImageCodecError:
            if role == 'image':
                stats.undecodable_images += 1
            else:
                stats.parts[role].undecodable += 1
        else:
            setattr(frame, _FRAME_FIELDS[role], value)
        remaining.discard(role)
        if not remaining:
            del pending[stamp]
            if frame.image is not None:  # else its image was undecodable: the frame is lost
                _check_sizes(frame, layout)
                yield frame
