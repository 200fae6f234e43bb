"""Write rosbag2 bags (metadata version 9, CDR) with rosbags: camera frames or raw messages.

A bag is written into a temporary sibling directory and moved into place only when complete,
so an interrupted run never leaves a half bag, and `force` replaces an old bag only on success.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer

from jointdistill_core.bags import codec
from jointdistill_core.bags.layout import (
    COMPRESSED_SUFFIX,
    STORAGES,
    TYPESTORE,
    BagError,
    CameraTopics,
)

_PLUGINS = {'mcap': StoragePlugin.MCAP, 'sqlite3': StoragePlugin.SQLITE3}


def check_output_dir(path: Path, force: bool) -> None:
    """Refuse an existing `path` unless `force`; even then only replace a bag or empty folder."""
    if not path.exists():
        return
    if not force:
        raise BagError(f'{path} exists already; pass --force to replace it')
    if path.is_dir() and (not any(path.iterdir()) or (path / 'metadata.yaml').is_file()):
        return
    raise BagError(f'{path} exists and is not a rosbag2 directory (no metadata.yaml); '
                   'refusing to replace it even with --force')


class BagWriter:
    """Context manager writing one rosbag2 directory. Message log time = the given stamp."""

    def __init__(self, path: str | Path, storage: str = 'mcap', force: bool = False) -> None:
        if storage not in STORAGES:
            raise BagError(f'unknown storage {storage!r}; choose one of {", ".join(STORAGES)}')
        self.path = Path(path)
        self.storage = storage
        check_output_dir(self.path, force)
        self._connections: dict[str, Any] = {}
        self._staging: Path | None = None
        self._writer: Writer | None = None

    def __enter__(self) -> 'BagWriter':
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._staging = Path(tempfile.mkdtemp(prefix=f'.{self.path.name}.', dir=self.path.parent))
        bag_dir = self._staging / self.path.name
        self._writer = Writer(bag_dir, version=Writer.VERSION_LATEST,
                              storage_plugin=_PLUGINS[self.storage])
        self._writer.open()
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        assert self._writer is not None and self._staging is not None
        try:
            if exc_type is None:
                self._writer.close()
                if self.path.exists():
                    shutil.rmtree(self.path)
                (self._staging / self.path.name).rename(self.path)
            else:
                self._writer.abort()
        finally:
            shutil.rmtree(self._staging, ignore_errors=True)

    def _connection(self, topic: str, msgtype: str) -> Any:
        if topic not in self._connections:
            assert self._writer is not None, 'BagWriter used outside its with-block'
            self._connections[topic] = self._writer.add_connection(topic, msgtype,
                                                                   typestore=TYPESTORE)
        connection = self._connections[topic]
        if connection.msgtype != msgtype:
            raise BagError(f'{topic} already carries {connection.msgtype}, not {msgtype}')
        return connection

    def write_raw(self, topic: str, msgtype: str, log_time_ns: int, raw: bytes) -> None:
        """Write CDR bytes of type `msgtype` (e.g. 'sensor_msgs/msg/Image') at log time (ns)."""
        self._writer.write(self._connection(topic, msgtype), log_time_ns, raw)

    def write_message(self, topic: str, msg: Any, log_time_ns: int) -> None:
        self.write_raw(topic, msg.__msgtype__, log_time_ns, codec.serialize(msg))

    def write_frame(self, stamp_ns: int, image: np.ndarray, depth: np.ndarray | None = None,
                    labels: np.ndarray | None = None, K: np.ndarray | None = None,
                    topics: CameraTopics = CameraTopics(), compression: str | None = None
                    ) -> None:
        """One camera frame: image (H, W, 3) uint8 RGB; depth (H, W) metres, 0 or NaN invalid
        (written as 32FC1 with NaN); labels (H, W) class ids, 255 void (mono8); K (3, 3).
        compression None: the image as rgb8 Image on topics.image; 'jpeg' or 'png': as
        CompressedImage on topics.image + '/compressed' (image_transport's name)."""
        height, width = image.shape[:2]
        if compression is None:
            self.write_message(topics.image, codec.encode_image(image, 'rgb8', stamp_ns),
                               stamp_ns)
        else:
            self.write_message(topics.image + COMPRESSED_SUFFIX,
                               codec.encode_compressed_image(image, compression, stamp_ns),
                               stamp_ns)
        if K is not None:
            self.write_message(topics.camera_info,
                               codec.encode_camera_info(K, height, width, stamp_ns), stamp_ns)
        if depth is not None:
            depth = np.asarray(depth, np.float32)
            depth = np.where(np.isfinite(depth) & (depth > 0), depth, np.nan).astype(np.float32)
            self.write_message(topics.depth_gt, codec.encode_image(depth, '32FC1', stamp_ns),
                               stamp_ns)
        if labels is not None:
            labels = np.asarray(labels)
            if labels.min(initial=0) < 0 or labels.max(initial=0) > 255:
                raise BagError('labels must lie in 0..255 (255 = void) to be written as mono8')
            labels_msg = codec.encode_image(labels.astype(np.uint8), 'mono8', stamp_ns)
            self.write_message(topics.labels_gt, labels_msg, stamp_ns)


