"""`perception_node`: the JointDistill student as a ROS 2 lifecycle node.

Subscribes to `image` (any encoding `image_codec.to_rgb8` reads) and optionally
`camera_info`; publishes metric depth, segmentation, their colourings and a point cloud, all at
the input resolution with the input header unchanged. Lifecycle: the model is loaded in
on_configure, subscriptions live between on_activate and on_deactivate. Only the newest frame
is processed: the subscription callback keeps the latest message, a worker thread runs the
network on it, and a message replaced before the worker took it counts as dropped.

Topics, parameters, QoS and diagnostics: docs/ros.md.
"""
from __future__ import annotations

import gc
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Float32

from jointdistill_core.classes import SKY
from jointdistill_core.geometry import backproject, default_intrinsics, scale_intrinsics
from jointdistill_core.openmp import passive_openmp_waiting
from jointdistill_core.visualize import colorize_depth, colorize_labels, overlay_labels
from jointdistill_ros.diagnostics import FrameStats, build_diagnostic_array
from jointdistill_ros.image_codec import (
    ImageCodecError,
    check_colour_image,
    numpy_to_imgmsg,
    to_rgb8,
)
from jointdistill_ros.pointcloud import make_pointcloud2
from jointdistill_ros.qos import (
    QOS_PROFILES,
    publisher_event_callbacks,
    publisher_qos,
    qos_from_parameters,
    subscription_event_callbacks,
)
from jointdistill_ros.share import shipped_file

NODE_NAME = 'jointdistill_perception'
SHIPPED_MODEL = 'jointdistill_student.safetensors'
EXPORTED_SUFFIXES = ('.onnx', '.pt', '.ts', '.torchscript')
DEVICES = ('auto', 'cpu', 'cuda')
# auto: onnxruntime on the CPU (1.5-1.9x faster than eager PyTorch for the student,
# docs/performance.md), PyTorch (fp16) on CUDA.
BACKENDS = ('auto', 'torch', 'onnxruntime')
POINTCLOUD_COLORS = ('segmentation', 'image')
# Publishers: key -> (message type, topic relative to the node's namespace).
OUTPUT_TOPICS: dict[str, tuple[type, str]] = {
    'depth': (Image, 'depth/image'), 'camera_info': (CameraInfo, 'depth/camera_info'),
    'depth_color': (Image, 'depth/color'), 'labels': (Image, 'segmentation/labels'),
    'labels_color': (Image, 'segmentation/color'), 'overlay': (Image, 'segmentation/overlay'),
    'points': (PointCloud2, 'points'), 'latency': (Float32, '~/latency_ms'),
}
# Seconds between repeated warnings about the same kind of bad input.
LOG_THROTTLE_S = 5.0


@dataclass(frozen=True)
class ParameterSpec:
    """One declared parameter: default (its type is the parameter's type), description, limits."""

    name: str
    default: bool | int | float | str
    description: str
    choices: tuple[str, ...] = ()
    int_range: tuple[int, int] | None = None
    float_range: tuple[float, float] | None = None

    def descriptor(self) -> ParameterDescriptor:
        text = self.description
        if self.choices:
            text += ' One of: ' + ', '.join(self.choices) + '.'
        descriptor = ParameterDescriptor(description=text)
        if self.choices:
            descriptor.additional_constraints = 'one of ' + '|'.join(self.choices)
        if self.int_range:
            descriptor.integer_range = [IntegerRange(
                from_value=self.int_range[0], to_value=self.int_range[1], step=1)]
        if self.float_range:
            descriptor.floating_point_range = [FloatingPointRange(
                from_value=self.float_range[0], to_value=self.float_range[1], step=0.0)]
        return descriptor


PARAMETERS: tuple[ParameterSpec, ...] = (
    ParameterSpec('model_path', '', 'Checkpoint (.safetensors with its JSON config) or export '
                  '(.onnx, .pt TorchScript). Empty: the shipped student in '
                  f'share/jointdistill_ros/models/{SHIPPED_MODEL}.'),
    ParameterSpec('device', 'auto', 'Inference device; auto picks CUDA when available.',
                  choices=DEVICES),
    ParameterSpec('backend', 'auto', 'Runtime for a checkpoint model_path: torch (eager '
                  'PyTorch), onnxruntime (exported to ONNX in memory at configure), or auto '
                  '(onnxruntime on the CPU, torch on CUDA). Exported files (.onnx, .pt) always '
                  'run in their own runtime.', choices=BACKENDS),
    ParameterSpec('num_threads', 0, 'Intra-op CPU threads of the network (torch: the whole '
                  'process; onnxruntime: its session); 0 = the library default (one per '
                  'core).', int_range=(0, 256)),
    ParameterSpec('strict_device', False, 'Fail configure when device=cuda but CUDA is missing, '
                  'instead of falling back to the CPU with a warning.'),
    ParameterSpec('input_height', 0, 'Network input height in pixels, a multiple of 32; 0 = '
                  'the checkpoint\'s. Set together with input_width.', int_range=(0, 4096)),
    ParameterSpec('input_width', 0, 'Network input width in pixels, a multiple of 32; 0 = '
                  'the checkpoint\'s. Set together with input_height.', int_range=(0, 4096)),
    ParameterSpec('qos.profile', 'SENSOR_DATA', 'QoS of the image and camera_info '
                  'subscriptions (SENSOR_DATA = best effort, volatile; DEFAULT = reliable).',
                  choices=QOS_PROFILES),
    ParameterSpec('qos.depth', 1, 'KEEP_LAST history depth of the subscriptions; 1 keeps '
                  'only the newest frame.', int_range=(1, 100)),
    ParameterSpec('qos.publisher_depth', 2, 'KEEP_LAST history depth of the reliable '
                  'publishers.', int_range=(1, 100)),
    ParameterSpec('sky_as_inf', False, 'Publish pixels segmented as sky as +Inf depth '
                  '(REP 117 "beyond range") instead of the predicted value.'),
    ParameterSpec('sky_class', SKY, 'Class id of sky for sky_as_inf (Cityscapes-7: 4); must be '
                  'below the model\'s number of classes when sky_as_inf is true.',
                  int_range=(0, 254)),
    ParameterSpec('pointcloud_color', 'segmentation', 'Colour of the points: class colours '
                  'or the camera image.', choices=POINTCLOUD_COLORS),
    ParameterSpec('pointcloud_stride', 2, 'Keep every n-th pixel in both directions for the '
                  'point cloud (1 = every pixel).', int_range=(1, 16)),
    ParameterSpec('overlay_alpha', 0.5, 'Weight of the class colours in segmentation/overlay.',
                  float_range=(0.0, 1.0)),
    ParameterSpec('max_depth_color', 0.0, 'Depth in metres mapped to the far end of the '
                  'depth/color map; 0 = the model\'s maximum depth.', float_range=(0.0, 1000.0)),
    ParameterSpec('diagnostics_period', 1.0, 'Seconds between /diagnostics messages.',
                  float_range=(0.1, 60.0)),
    ParameterSpec('autostart', False, 'Configure and activate at start-up (for runs without '
                  'a lifecycle manager).'),
)


class ConfigureError(Exception):
    """A parameter or model problem; the message names the parameter or file."""


@dataclass(frozen=True)
class NodeSettings:
    """Validated parameters, read in on_configure."""

    model_path: Path
    device: str
    backend: str
    num_threads: int
    strict_device: bool
    input_size: tuple[int, int] | None
    qos_profile: str
    qos_depth: int
    publisher_depth: int
    sky_as_inf: bool
    sky_class: int
    pointcloud_color: str
    pointcloud_stride: int
    overlay_alpha: float
    max_depth_color: float
    diagnostics_period: float


def default_model_path() -> Path:
    """The shipped student (models/ of the installed package, else of the source tree)."""
    return shipped_file('models', SHIPPED_MODEL)


def _check_choice(values: dict[str, Any], name: str, choices: tuple[str, ...]) -> str:
    value = values[name]
    if value not in choices:
        raise ConfigureError(f"parameter '{name}' is '{value}'; expected one of "
                             + ', '.join(choices))
    return value


def settings_from_values(values: dict[str, Any]) -> NodeSettings:
    """Validate parameter values (name -> value) into settings; ConfigureError names the key."""
    model_path = Path(values['model_path']).expanduser() if values['model_path'] \
        else default_model_path()
    height, width = values['input_height'], values['input_width']
    if (height == 0) != (width == 0):
        raise ConfigureError(f"parameters 'input_height' ({height}) and 'input_width' ({width}) "
                             'must both be 0 (checkpoint size) or both positive')
    for name, value in (('input_height', height), ('input_width', width)):
        if value % 32:
            raise ConfigureError(f"parameter '{name}' is {value}; it must be a multiple of 32")
    return NodeSettings(
        model_path=model_path,
        device=_check_choice(values, 'device', DEVICES),
        backend=_check_choice(values, 'backend', BACKENDS),
        num_threads=values['num_threads'],
        strict_device=values['strict_device'],
        input_size=(height, width) if height else None,
        qos_profile=_check_choice(values, 'qos.profile', QOS_PROFILES),
        qos_depth=values['qos.depth'],
        publisher_depth=values['qos.publisher_depth'],
        sky_as_inf=values['sky_as_inf'],
        sky_class=values['sky_class'],
        pointcloud_color=_check_choice(values, 'pointcloud_color', POINTCLOUD_COLORS),
        pointcloud_stride=values['pointcloud_stride'],
        overlay_alpha=values['overlay_alpha'],
        max_depth_color=values['max_depth_color'],
        diagnostics_period=values['diagnostics_period'],
    )


def load_predictor(settings: NodeSettings) -> tuple[Any, list[str]]:
    """Load the network named by the settings; returns it and the load warnings (e.g. a CPU
    fallback). ConfigureError names the file or parameter at fault."""
    path = settings.model_path
    if not path.is_file():
        raise ConfigureError(f"parameter 'model_path': model file not found: {path}")
    from jointdistill_core.device import DeviceUnavailableError
    from jointdistill_core.inference import Predictor  # imports torch

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        try:
            if path.suffix.lower() in EXPORTED_SUFFIXES:
                predictor = Predictor.from_exported(path, device=settings.device,
                                                    strict_device=settings.strict_device,
                                                    num_threads=settings.num_threads)
            else:
                backend = resolve_backend(settings)
                predictor = Predictor.from_checkpoint(
                    path, device=settings.device, input_size=settings.input_size,
                    strict_device=settings.strict_device, backend=backend,
                    num_threads=settings.num_threads,
                    # NHWC convolutions: 1.2x faster eager student on the CPU (performance.md);
                    # unmeasured on GPUs, so left off there.
                    channels_last=backend == 'torch' and not _runs_on_cuda(settings))
        except DeviceUnavailableError as error:
            raise ConfigureError(f"parameter 'device' ({settings.device}, strict_device true): "
                                 f'{error}') from error
        except Exception as error:  # any other load failure means the model file is unusable
            raise ConfigureError(f"parameter 'model_path': cannot load {path}: {error}") \
                from error
    if predictor.num_classes is None or predictor.max_depth is None:
        raise ConfigureError(f"parameter 'model_path': {path} is a single-task network; the "
                             'node needs one that predicts both depth and segmentation')
    if settings.sky_as_inf and settings.sky_class >= predictor.num_classes:
        raise ConfigureError(f"parameter 'sky_class' is {settings.sky_class} but the model has "
                             f'{predictor.num_classes} classes (sky_as_inf is true)')
    return predictor, [str(warning.message) for warning in caught]


def resolve_backend(settings: NodeSettings) -> str:
    """The Predictor backend for a checkpoint: 'auto' is onnxruntime unless the network
    will run on CUDA (device cuda or auto with CUDA present), where PyTorch runs it in fp16."""
    if settings.backend != 'auto':
        return settings.backend
    return 'torch' if _runs_on_cuda(settings) else 'onnxruntime'


def _runs_on_cuda(settings: NodeSettings) -> bool:
    import torch
    return settings.device != 'cpu' and torch.cuda.is_available()


def stride_intrinsics(K: np.ndarray, stride: int) -> np.ndarray:
    """K (3, 3) of the image subsampled as image[::stride, ::stride]: pixel (v, u) of the
    subsampled grid is (v * stride, u * stride) of the original, so fx, fy, cx, cy / stride."""
    scaled = np.array(K, np.float64)
    scaled[:2] /= stride
    return scaled


def depth_for_publishing(depth: np.ndarray, labels: np.ndarray,
                         sky_class: int | None) -> np.ndarray:
    """(H, W) metres -> REP 117 depth: NaN where not finite or <= 0, +Inf on sky_class pixels."""
    out = np.where(np.isfinite(depth) & (depth > 0), depth, np.float32(np.nan)).astype(np.float32)
    if sky_class is not None:
        out[labels == sky_class] = np.inf
    return out


def _usable_camera_info(info: CameraInfo | None) -> bool:
    if info is None or info.width == 0 or info.height == 0:
        return False
    K = np.asarray(info.k, np.float64)
    return bool(np.isfinite(K).all() and K[0] > 0 and K[4] > 0)


def output_camera_info(info: CameraInfo | None, header, height: int,
                       width: int) -> tuple[CameraInfo, np.ndarray]:
    """CameraInfo for the outputs (height x width pixels) and its K (3, 3) float64.

    Scales an incoming camera_info of another size; default_intrinsics when none came or its
    K is unusable (zero or non-finite focal lengths).
    """
    out = CameraInfo(header=header, height=height, width=width)
    if not _usable_camera_info(info):
        K = np.asarray(default_intrinsics(height, width), np.float64)
        out.distortion_model, out.d = 'plumb_bob', [0.0] * 5
        out.r = np.eye(3).ravel().tolist()
        P = np.hstack([K, np.zeros((3, 1))])
    else:
        K = np.asarray(info.k, np.float64).reshape(3, 3)
        P = np.asarray(info.p, np.float64).reshape(3, 4)
        if (info.height, info.width) != (height, width):
            sx, sy = width / info.width, height / info.height
            K = np.asarray(scale_intrinsics(K, (info.height, info.width), (height, width)),
                           np.float64)
            P = np.hstack([np.asarray(scale_intrinsics(P[:, :3], (info.height, info.width),
                                                       (height, width)), np.float64),
                           P[:, 3:] * np.array([[sx], [sy], [1.0]])])
        out.distortion_model, out.d, out.r = info.distortion_model, list(info.d), list(info.r)
    out.k, out.p = K.ravel().tolist(), P.ravel().tolist()
    return out, K


class InputFaultLog:
    """Rate-limited warnings about bad input, throttled per kind of fault (e.g. 'image: step',
    'camera_info: K') so one flood of one kind never hides another kind. Thread-safe."""

    def __init__(self, warn: Callable[[str], None], period_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._warn, self._period_s, self._clock = warn, period_s, clock
        self._lock = threading.Lock()
        self._last_logged: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def report(self, kind: str, message: str) -> bool:
        """Log `message` unless `kind` was logged less than period_s ago; True when logged."""
        with self._lock:
            now = self._clock()
            last = self._last_logged.get(kind)
            if last is not None and now - last < self._period_s:
                self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
                return False
            self._last_logged[kind] = now
            suppressed = self._suppressed.pop(kind, 0)
        if suppressed:
            message += f' ({suppressed} more of this kind in the last {self._period_s:g} s)'
        self._warn(message)
        return True


class PerceptionNode(LifecycleNode):
    """Lifecycle node running the student on the newest camera frame."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self._parameter_errors: dict[str, str] = {}
        for spec in PARAMETERS:
            self._declare(spec)
        self._stats = FrameStats()
        self._input_faults = InputFaultLog(self.get_logger().warning, LOG_THROTTLE_S)
        self._settings: NodeSettings | None = None
        self._predictor = None
        self._outputs: dict[str, Any] = {}
        self._subscriptions_active: list[Any] = []
        self._frame_ready = threading.Condition()
        self._latest_image: Image | None = None
        self._camera_info: CameraInfo | None = None
        self._worker: threading.Thread | None = None
        self._stopping = False
        self._diagnostics_timer = None
        self._last_report_time = time.monotonic()
        self._state_label = 'unconfigured'
        self._diagnostics = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.add_post_set_parameters_callback(self._forget_fixed_parameter_errors)

    # ----------------------------------------------------------------- parameters
    def _declare(self, spec: ParameterSpec) -> None:
        """Declare one parameter; a bad override is kept as an error for on_configure."""
        try:
            self.declare_parameter(spec.name, spec.default, spec.descriptor())
        except (InvalidParameterValueException, InvalidParameterTypeException) as error:
            expected = type(spec.default).__name__.replace('str', 'string').replace(
                'float', 'double (write 1.0, not 1)')
            self._parameter_errors[spec.name] = f"parameter '{spec.name}': {error} " \
                                                f'(expected a {expected})'
            self.declare_parameter(spec.name, spec.default, spec.descriptor(),
                                   ignore_override=True)

    def _forget_fixed_parameter_errors(self, parameters: list[Parameter]) -> None:
        """A bad start-up value replaced at run time (ros2 param set) no longer blocks configure."""
        for parameter in parameters:
            self._parameter_errors.pop(parameter.name, None)

    def _read_settings(self) -> NodeSettings:
        if self._parameter_errors:
            raise ConfigureError('; '.join(self._parameter_errors.values()))
        return settings_from_values(
            {spec.name: self.get_parameter(spec.name).value for spec in PARAMETERS})

    # ----------------------------------------------------------------- lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            settings = self._read_settings()
            self.get_logger().info(f'loading {settings.model_path} (device {settings.device})')
            predictor, load_warnings = load_predictor(settings)
        except ConfigureError as error:
            self.get_logger().error(f'configure failed: {error}')
            return TransitionCallbackReturn.FAILURE
        for message in load_warnings:
            self.get_logger().warning(message)
        self._settings, self._predictor = settings, predictor
        self._create_outputs(settings)
        self._stats.reset()
        self._camera_info = None
        self._last_report_time = time.monotonic()
        self._diagnostics_timer = self.create_timer(settings.diagnostics_period,
                                                    self._publish_diagnostics)
        self._state_label = 'inactive'
        self.get_logger().info(
            f'configured: device {predictor.device}, backend {predictor.backend}, '
            f'{predictor.num_classes} classes, '
            f'input {predictor.input_size}, max depth {predictor.max_depth} m')
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        settings = self._settings
        qos = qos_from_parameters(settings.qos_profile, settings.qos_depth)
        self._subscriptions_active = [
            self.create_subscription(msg_type, topic, callback, qos,
                                     event_callbacks=subscription_event_callbacks(
                                         self.get_logger().warning,
                                         self.resolve_topic_name(topic), 'qos.profile'))
            for msg_type, topic, callback in ((Image, 'image', self._on_image),
                                              (CameraInfo, 'camera_info', self._on_camera_info))]
        self._start_worker()
        self._state_label = 'active'
        self.get_logger().info(f"active: listening on '{self._subscriptions_active[0].topic_name}' "
                               f'({settings.qos_profile}, depth {settings.qos_depth})')
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_worker()
        self._destroy_subscriptions()
        self._state_label = 'inactive'
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self._state_label = 'unconfigured'
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_worker()
        self._destroy_subscriptions()
        self._release()
        self._state_label = 'finalized'
        return super().on_shutdown(state)

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_worker()
        self._destroy_subscriptions()
        self._release()
        self._state_label = 'unconfigured'
        return super().on_error(state)

    def _create_outputs(self, settings: NodeSettings) -> None:
        qos = publisher_qos(settings.publisher_depth)
        self._outputs = {
            key: self.create_lifecycle_publisher(
                msg_type, topic, qos, event_callbacks=publisher_event_callbacks(
                    self.get_logger().warning, self.resolve_topic_name(topic)))
            for key, (msg_type, topic) in OUTPUT_TOPICS.items()}

    def _destroy_subscriptions(self) -> None:
        for subscription in self._subscriptions_active:
            self.destroy_subscription(subscription)
        self._subscriptions_active = []
        with self._frame_ready:
            self._latest_image = None

    def _release(self) -> None:
        """Free publishers, the timer and the model (and CUDA's cached memory)."""
        for publisher in self._outputs.values():
            self.destroy_lifecycle_publisher(publisher)
        self._outputs = {}
        if self._diagnostics_timer is not None:
            self.destroy_timer(self._diagnostics_timer)
            self._diagnostics_timer = None
        had_model = self._predictor is not None
        self._predictor = None
        if had_model:
            gc.collect()
            import torch
            if torch.cuda.is_available():
                torch.cuda.empty_cache()

    # ----------------------------------------------------------------- input
    def _on_image(self, msg: Image) -> None:
        # Validated here, on every message, not in the worker: only the newest frame reaches
        # the worker, so only here can every malformed message be counted (header fields and
        # len(data) only: constant time, no allocation).
        try:
            check_colour_image(msg)
        except ImageCodecError as error:
            self._stats.record_received(replaced_unprocessed=False)
            self._reject_image(error)
            return
        with self._frame_ready:
            replaced = self._latest_image is not None
            self._latest_image = msg
            self._frame_ready.notify()
        self._stats.record_received(replaced_unprocessed=replaced)

    def _reject_image(self, error: ImageCodecError) -> None:
        self._stats.record_rejected()
        self._input_faults.report(f'image: {error.field}',
                                  f"rejected a malformed message on 'image': {error}")

    def _on_camera_info(self, msg: CameraInfo) -> None:
        if not _usable_camera_info(msg):
            # Keep the last usable CameraInfo (default intrinsics when none came).
            self._stats.record_camera_info_rejected()
            self._input_faults.report(
                'camera_info', f"ignored an unusable message on 'camera_info' "
                f'({msg.width}x{msg.height}, fx {msg.k[0]}, fy {msg.k[4]}): size and focal '
                'lengths must be positive and finite; using the last usable one or default '
                'intrinsics')
            return
        self._camera_info = msg

    def _start_worker(self) -> None:
        self._stopping = False
        self._worker = threading.Thread(target=self._work, name='inference', daemon=True)
        self._worker.start()

    def _stop_worker(self) -> None:
        if self._worker is None:
            return
        with self._frame_ready:
            self._stopping = True
            self._frame_ready.notify()
        self._worker.join()
        self._worker = None

    def _work(self) -> None:
        while True:
            with self._frame_ready:
                while self._latest_image is None and not self._stopping:
                    self._frame_ready.wait()
                if self._stopping:
                    return
                msg, self._latest_image = self._latest_image, None
            try:
                self._process(msg)
            except Exception as error:  # keep serving: one failed frame must not end the worker
                self.get_logger().error(f'inference failed on a frame: {error!r}',
                                        throttle_duration_sec=LOG_THROTTLE_S)

    # ----------------------------------------------------------------- processing
    def _process(self, msg: Image) -> None:
        started = time.perf_counter()
        try:
            rgb = to_rgb8(msg)
        except ImageCodecError as error:
            self._reject_image(error)
            return
        # The camera's K (scaled to this image; the default field of view when no
        # CameraInfo came) fixes the scale of a canonical-camera network's metric depth.
        info, K = output_camera_info(self._camera_info, msg.header, *rgb.shape[:2])
        prediction = self._predictor.predict(rgb, K)
        self._publish(msg.header, rgb, prediction.depth, prediction.labels, info, K)
        processing_ms = (time.perf_counter() - started) * 1e3
        latency_ms = (self.get_clock().now() - Time.from_msg(msg.header.stamp,
                                                             clock_type=self.get_clock().clock_type)
                      ).nanoseconds * 1e-6
        self._outputs['latency'].publish(Float32(data=float(latency_ms)))
        self._stats.record_processed(processing_ms, latency_ms)

    def _publish(self, header, rgb: np.ndarray, depth: np.ndarray, labels: np.ndarray,
                 info: CameraInfo, K: np.ndarray) -> None:
        settings, out = self._settings, self._outputs
        depth = depth_for_publishing(depth, labels,
                                     settings.sky_class if settings.sky_as_inf else None)
        out['depth'].publish(numpy_to_imgmsg(depth, '32FC1', header))
        out['camera_info'].publish(info)
        out['labels'].publish(numpy_to_imgmsg(labels, 'mono8', header))
        wanted = {key for key in ('depth_color', 'labels_color', 'overlay', 'points')
                  if out[key].get_subscription_count() > 0}
        num_classes = self._predictor.num_classes
        if 'depth_color' in wanted:
            far = settings.max_depth_color or float(self._predictor.max_depth)
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

    # ----------------------------------------------------------------- diagnostics
    def _publish_diagnostics(self) -> None:
        now = time.monotonic()
        report = self._stats.report(now - self._last_report_time)
        self._last_report_time = now
        device = str(self._predictor.device) if self._predictor is not None else 'none'
        self._diagnostics.publish(build_diagnostic_array(
            report, self.get_clock().now().to_msg(), self.get_fully_qualified_name(), device,
            self._state_label))


def _spin(node: PerceptionNode) -> None:
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node._stop_worker()
        executor.shutdown()


def main(args: list[str] | None = None) -> None:
    """Entry point of `perception_node` (`ros2 run jointdistill_ros perception_node`)."""
    passive_openmp_waiting()  # the network (and torch) is loaded later, in on_configure
    rclpy.init(args=args)
    node = PerceptionNode()
    try:
        if node.get_parameter('autostart').value:
            if node.trigger_configure() == TransitionCallbackReturn.SUCCESS:
                node.trigger_activate()
            else:
                node.get_logger().error('autostart: configure failed; fix the parameter and '
                                        'call ~/change_state (configure) again')
        _spin(node)
    finally:
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()


if __name__ == '__main__':
    main()
