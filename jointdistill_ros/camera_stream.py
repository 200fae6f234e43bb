"""One camera of the perception node: its subscriptions (raw Image or CompressedImage, and
CameraInfo), its newest waiting frame, its publishers and its counters.

Every image message is decoded in its subscription callback (a view for rgb8, a colour
conversion for other encodings, JPEG / PNG decoding for compressed input) before it may
replace the waiting frame: a message that cannot be decoded is counted as rejected and never
displaces a good frame, and the inference worker gets ready RGB arrays. A waiting frame
replaced before the worker took it counts as dropped.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from rclpy.lifecycle import LifecycleNode
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import Float32, Header

from jointdistill_core.bags.compressed import compressed_to_rgb
from jointdistill_core.bags.layout import COMPRESSED_SUFFIX
from jointdistill_core.geometry import backproject, stride_intrinsics
from jointdistill_core.inference import Prediction
from jointdistill_core.visualize import colorize_depth, colorize_labels, overlay_labels
from jointdistill_ros.camera_info import usable_camera_info
from jointdistill_ros.diagnostics import FrameStats, InputFaultLog
from jointdistill_ros.image_codec import ImageCodecError, numpy_to_imgmsg, to_rgb8
from jointdistill_ros.parameters import CameraSettings, NodeSettings
from jointdistill_ros.pointcloud import make_pointcloud2
from jointdistill_ros.qos import (
    publisher_event_callbacks,
    publisher_qos,
    subscription_event_callbacks,
)

# Publishers: key -> (message type, topic relative to the camera's output namespace).
OUTPUT_TOPICS: dict[str, tuple[type, str]] = {
    'depth': (Image, 'depth/image'), 'camera_info': (CameraInfo, 'depth/camera_info'),
    'depth_color': (Image, 'depth/color'), 'labels': (Image, 'segmentation/labels'),
    'labels_color': (Image, 'segmentation/color'), 'overlay': (Image, 'segmentation/overlay'),
    'points': (PointCloud2, 'points'),
}
VISUAL_OUTPUTS = ('depth_color', 'labels_color', 'overlay', 'points')
# Far end of the depth colour map when max_depth_color is 0 (metres): a canonical-camera
# model caps at hundreds of metres, which would paint every street one colour.
DEFAULT_COLOR_FAR_M = 80.0


@dataclass(frozen=True)
class Frame:
    """A decoded camera frame: the message header, (H, W, 3) uint8 RGB, decoding time (ms)."""

    header: Header
    rgb: np.ndarray
    decode_ms: float


def depth_for_publishing(depth: np.ndarray, labels: np.ndarray,
                         sky_class: int | None) -> np.ndarray:
    """(H, W) metres -> REP 117 depth: NaN where not finite or <= 0, +Inf on sky_class pixels."""
    out = np.where(np.isfinite(depth) & (depth > 0), depth, np.float32(np.nan)).astype(np.float32)
    if sky_class is not None:
        out[labels == sky_class] = np.inf
    return out


def _join(namespace: str, topic: str) -> str:
    return f'{namespace}/{topic}' if namespace else topic


class CameraStream:
    """One camera: create in on_configure, `activate` / `deactivate` with the node, `release`
    on cleanup. `take` (with `frame_ready` held) hands the waiting frame to the worker.

    frame_ready: the node's condition, notified when a frame waits. on_image_size: called with
    (height, width) of every usable CameraInfo and image, so the node can build the network
    for a new camera size before the frames need it.
    """

    def __init__(self, node: LifecycleNode, camera: CameraSettings, settings: NodeSettings,
                 frame_ready: threading.Condition, fault_log: InputFaultLog,
                 on_image_size: Callable[[tuple[int, int]], None]) -> None:
        self.camera = camera
        self.stats = FrameStats()
        self.camera_info: CameraInfo | None = None
        self.waiting: Frame | None = None  # guarded by frame_ready
        self._node, self._settings = node, settings
        self._frame_ready, self._fault_log = frame_ready, fault_log
        self._on_image_size = on_image_size
        self._subscriptions: list[Any] = []
        qos = publisher_qos(settings.publisher_depth)
        log = node.get_logger().warning
        self.outputs = {
            key: node.create_lifecycle_publisher(
                msg_type, _join(camera.namespace, topic), qos,
                event_callbacks=publisher_event_callbacks(
                    log, node.resolve_topic_name(_join(camera.namespace, topic))))
            for key, (msg_type, topic) in OUTPUT_TOPICS.items()}
        latency_topic = '~/' + _join(camera.name, 'latency_ms')
        self.outputs['latency'] = node.create_lifecycle_publisher(Float32, latency_topic, qos)
        # image_transport's rule: the compressed topic is the resolved base topic + /compressed.
        self.image_topic = node.resolve_topic_name(camera.image_topic) + (
            COMPRESSED_SUFFIX if camera.transport == 'compressed' else '')
        self.camera_info_topic = node.resolve_topic_name(camera.camera_info_topic)

    # ------------------------------------------------------------------ subscriptions
    def activate(self, qos) -> None:
        """Subscribe to the image (raw or compressed) and camera_info topics with `qos`."""
        node, log = self._node, self._node.get_logger().warning
        compressed = self.camera.transport == 'compressed'
        inputs = ((CompressedImage if compressed else Image, self.image_topic,
                   self._on_compressed if compressed else self._on_image),
                  (CameraInfo, self.camera_info_topic, self._on_camera_info))
        self._subscriptions = [
            node.create_subscription(msg_type, topic, callback, qos,
                                     event_callbacks=subscription_event_callbacks(
                                         log, node.resolve_topic_name(topic), 'qos.profile'))
            for msg_type, topic, callback in inputs]
        # The names after remapping, for log lines.
        self.image_topic, self.camera_info_topic = (s.topic_name for s in self._subscriptions)

    def deactivate(self) -> None:
        for subscription in self._subscriptions:
            self._node.destroy_subscription(subscription)
        self._subscriptions = []
        with self._frame_ready:
            self.waiting = None

    def release(self) -> None:
        for publisher in self.outputs.values():
            self._node.destroy_lifecycle_publisher(publisher)
        self.outputs = {}

    # ------------------------------------------------------------------ input
    def _on_image(self, msg: Image) -> None:
        self._accept(msg.header, lambda: to_rgb8(msg))

    def _on_compressed(self, msg: CompressedImage) -> None:
        self._accept(msg.header, lambda: compressed_to_rgb(msg))

    def _accept(self, header: Header, decode: Callable[[], np.ndarray]) -> None:
        started = time.perf_counter()
        try:
            rgb = decode()
        except ImageCodecError as error:
            self.stats.record_received(replaced_unprocessed=False)
            self.stats.record_rejected()
            self._fault_log.report(f'{self.image_topic}: {error.field}',
                                   f"rejected a malformed message on '{self.image_topic}': "
                                   f'{error}')
            return
        frame = Frame(header, rgb, (time.perf_counter() - started) * 1e3)
        self._on_image_size(rgb.shape[:2])
        with self._frame_ready:
            replaced = self.waiting is not None
            self.waiting = frame
            self._frame_ready.notify()
        self.stats.record_received(replaced_unprocessed=replaced)

    def _on_camera_info(self, msg: CameraInfo) -> None:
        if not usable_camera_info(msg):
            # Keep the last usable CameraInfo (default intrinsics when none came).
            self.stats.record_camera_info_rejected()
            topic = self.camera_info_topic
            self._fault_log.report(
                f'{topic}: camera_info', f"ignored an unusable message on '{topic}' "
                f'({msg.width}x{msg.height}, fx {msg.k[0]}, fy {msg.k[4]}): size and focal '
                'lengths must be positive and finite; using the last usable one or default '
                'intrinsics')
            return
        self.camera_info = msg
        self._on_image_size((msg.height, msg.width))

    def take(self) -> Frame | None:
        """The waiting frame (None when none waits); call with frame_ready held."""
        frame, self.waiting = self.waiting, None
        return frame

    # ------------------------------------------------------------------ output
    def publish(self, frame: Frame, prediction: Prediction, info: CameraInfo, K: np.ndarray,
                num_classes: int, max_depth: float) -> None:
        """Publish the outputs of one frame (visual ones only while subscribed)."""
        settings, out, header, rgb = self._settings, self.outputs, frame.header, frame.rgb
        labels = prediction.labels
        depth = depth_for_publishing(prediction.depth, labels,
                                     settings.sky_class if settings.sky_as_inf else None)
        out['depth'].publish(numpy_to_imgmsg(depth, '32FC1', header))
        out['camera_info'].publish(info)
        out['labels'].publish(numpy_to_imgmsg(labels, 'mono8', header))
        if self.camera.height is not None:
            self.stats.record_ground_scale(prediction.ground_scale)
        wanted = {key for key in VISUAL_OUTPUTS if out[key].get_subscription_count() > 0}
        if 'depth_color' in wanted:
            far = settings.max_depth_color or min(float(max_depth), DEFAULT_COLOR_FAR_M)
            out['depth_color'].publish(numpy_to_imgmsg(colorize_depth(depth, far), 'rgb8', header))
        label_colors = colorize_labels(labels, num_classes) \
            if wanted & {'labels_color', 'overlay', 'points'} else None
        if 'labels_color' in wanted:
            out['labels_color'].publish(numpy_to_imgmsg(label_colors, 'rgb8', header))
        if 'overlay' in wanted:
            overlay = overlay_labels(rgb, labels, num_classes, settings.overlay_alpha,
                                     colors=label_colors)
            out['overlay'].publish(numpy_to_imgmsg(overlay, 'rgb8', header))
        if 'points' in wanted:
            stride = settings.pointcloud_stride
            # Back-project only the kept pixels (stride 2: a quarter of the work).
            points = backproject(depth[::stride, ::stride], stride_intrinsics(K, stride))
            colors = label_colors if settings.pointcloud_color == 'segmentation' else rgb
            out['points'].publish(make_pointcloud2(points, colors[::stride, ::stride], header))

    def record_latency(self, header: Header, processing_ms: float) -> None:
        """Publish ~/latency_ms (node clock now minus the image stamp) and count the frame."""
        clock = self._node.get_clock()
        latency_ms = (clock.now() - Time.from_msg(header.stamp, clock_type=clock.clock_type)
                      ).nanoseconds * 1e-6
        self.outputs['latency'].publish(Float32(data=float(latency_ms)))
        self.stats.record_processed(processing_ms, latency_ms)
