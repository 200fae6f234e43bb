"""Recordings as training data: the `bag:PATH` dataset spec (docs/datasets.md).

    bag:rec.mcap?image=/cam/image_raw/compressed&camera_info=/cam/camera_info&every=5&val=0.2

PATH is a rosbag2 bag (a folder with metadata.yaml, mcap or sqlite3). Options:

    image=TOPIC        the camera: sensor_msgs/Image or CompressedImage (the topic's type
                       decides; a bag with only `<image>/compressed` is found from `<image>`);
                       default /camera/image_raw
    camera_info=TOPIC  its CameraInfo: K per frame (default /camera/camera_info; absent = the
                       default intrinsics, data/sample.py)
    depth=TOPIC        optional metric depth ground truth: 32FC1 metres, 16UC1 millimetres or
                       compressedDepth (default /camera/depth_gt, used when present)
    labels=TOPIC       optional mono8 class ids, 255 void (default /camera/labels_gt)
                       (camera_info, depth, labels: 'none' ignores the topic)
    slop=S             seconds within which camera_info and ground truth are matched to an
                       image by header stamp (nearest, approximate time; default 0.015)
    every, gap, val    frame selection and the held-back end (data/selection.py); val
                       defaults to 0.2

Frames are read and decoded with jointdistill_core.bags (the same reader and decoders as
`bag eval`): a first pass reads the image stamps only and selects the split's frames, a
second decodes just those. The split's frames are then held in memory, decoded (H x W x 3
bytes each: 0.9 MB at 640x480), so thin long recordings with every= or gap=; a few recent
datasets are cached per process, as training, validation and evaluation read the same bag.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from jointdistill_core.bags.codec import header_stamp_ns
from jointdistill_core.bags.layout import DEFAULT_SLOP_NS, BagError, CameraTopics
from jointdistill_core.bags.reader import CameraFrame, camera_layout, iter_camera_frames, iter_raw
from jointdistill_core.data.mtan import DatasetError
from jointdistill_core.data.sample import IGNORE_INDEX, Sample, make_sample
from jointdistill_core.data.selection import FrameSelection

DEFAULT_BAG_VAL = 0.2
IGNORED_TOPIC = 'none'
_TOPIC_OPTIONS = {'image': 'image', 'camera_info': 'camera_info', 'depth': 'depth_gt',
                  'labels': 'labels_gt'}
_CACHED_BAGS = 4


def bag_topics_from_options(options: dict[str, str], spec: str) -> CameraTopics:
    """CameraTopics with the topics the options name, the defaults elsewhere; 'none' leaves a
    ground-truth role out (an empty name, which no bag has)."""
    if options.get('image') == IGNORED_TOPIC:
        raise DatasetError(f'{spec!r}: option image cannot be none: the image is the data')
    return CameraTopics(**{field: '' if options[key] == IGNORED_TOPIC else options[key]
                           for key, field in _TOPIC_OPTIONS.items() if key in options})


def _slop_ns(options: dict[str, str], spec: str) -> int:
    if 'slop' not in options:
        return DEFAULT_SLOP_NS
    try:
        seconds = float(options['slop'])
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:
        raise DatasetError(f'{spec!r}: option slop must be >= 0 seconds, got {options["slop"]!r}')
    return round(seconds * 1e9)


def image_stamps(path: Path, topics: CameraTopics) -> list[int]:
    """Unique header stamps (ns) of the image topic, ascending, read without decoding."""
    topic = camera_layout(path, topics).topic('image')
    return sorted({header_stamp_ns(message.data) for message in iter_raw(path, [topic])})


class BagDataset(Dataset):
    """The frames of one split of a camera bag (module docstring) as samples. num_classes:
    label values must be below it (or 255)."""

    def __init__(self, path: str | Path, options: dict[str, str], split: str, spec: str,
                 num_classes: int) -> None:
        self.path = Path(path)
        self.num_classes = num_classes
        self.frames = _read_split(self.path, tuple(sorted(options.items())), split, spec)

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> Sample:
        frame = self.frames[index]
        labels = frame.labels
        if labels is not None:
            labels = labels.astype(np.int64)
            bad = (labels >= self.num_classes) & (labels != IGNORE_INDEX)
            if bad.any():
                raise DatasetError(f'bag {self.path}: frame at stamp {frame.stamp_ns} ns: label '
                                   f'value {int(labels[bad][0])} is neither a class id in '
                                   f'[0, {self.num_classes}) nor void 255')
        return make_sample(frame.image, frame.depth, labels, frame.K)


@functools.lru_cache(maxsize=_CACHED_BAGS)
def _read_split_cached(path: Path, modified_ns: int, options: tuple, split: str,
                       spec: str) -> tuple[CameraFrame, ...]:
    options_dict = dict(options)
    topics = bag_topics_from_options(options_dict, spec)
    selection = FrameSelection.from_options(options_dict, spec, DEFAULT_BAG_VAL, has_time=True)
    try:
        stamps = image_stamps(path, topics)
        wanted = {stamps[i] for i in selection.split(selection.kept(stamps), split, spec)}
        frames = tuple(frame for frame in iter_camera_frames(
            path, topics, slop_ns=_slop_ns(options_dict, spec)) if frame.stamp_ns in wanted)
    except BagError as error:
        raise DatasetError(f'{spec!r}: {error}') from error
    if not frames:
        raise DatasetError(f'{spec!r}: no decodable frame in split {split!r}')
    return frames


def _read_split(path: Path, options: tuple, split: str, spec: str) -> tuple[CameraFrame, ...]:
    if not path.exists():
        raise DatasetError(f'{spec!r}: bag {path} does not exist')
    metadata = path / 'metadata.yaml' if path.is_dir() else path
    return _read_split_cached(path.resolve(), metadata.stat().st_mtime_ns, options, split, spec)
