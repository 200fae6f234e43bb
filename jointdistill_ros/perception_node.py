"""`perception_node`: the JointDistill student as a ROS 2 lifecycle node, for one camera or several.

The node converts messages and calls the core. Parameters (jointdistill_ros.parameters) are
validated in on_configure, where `Predictor.from_path` loads the network; one CameraStream
per camera (jointdistill_ros.camera_stream) subscribes between on_activate and
on_deactivate and decodes each image, raw or compressed, in its callback. One worker thread
takes the newest waiting frame of every camera, runs them through `Predictor.predict_batch`
(one forward pass per model input size) and publishes each camera's outputs under its
namespace, at the input resolution, with the input header unchanged. Frames replaced before
the worker took them count as dropped, per camera.

Topics, parameters, QoS and diagnostics: docs/ros.md.
"""
from __future__ import annotations

import gc
import threading
import time
import warnings
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.exceptions import (
    InvalidParameterTypeException,
    InvalidParameterValueException,
    ParameterUninitializedException,
)
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter

from jointdistill_core.openmp import passive_openmp_waiting
from jointdistill_ros.camera_info import output_camera_info
from jointdistill_ros.camera_stream import CameraStream, Frame
from jointdistill_ros.diagnostics import InputFaultLog, build_diagnostic_array, diagnostic_status
from jointdistill_ros.parameters import (
    PARAMETERS,
    ConfigureError,
    NodeSettings,
    ParameterSpec,
    camera_parameters,
    settings_from_values,
)
from jointdistill_ros.qos import qos_from_parameters

NODE_NAME = 'jointdistill_perception'
# Seconds between repeated warnings about the same kind of bad input.
LOG_THROTTLE_S = 5.0


def load_predictor(settings: NodeSettings) -> tuple[Any, list[str]]:
    """Load the network named by the settings (`Predictor.from_path`); returns it and the load
    warnings (e.g. a CPU fallback). ConfigureError names the file or parameter at fault."""
    from jointdistill_core.device import DeviceUnavailableError
    from jointdistill_core.inference import Predictor, is_exported  # imports torch

    path = settings.model_path
    if not (path.is_file() or path.with_name(path.name + '.safetensors').is_file()):
        raise ConfigureError(f"parameter 'model_path': model file not found: {path}")
    if settings.input_size is not None and is_exported(path):
        raise ConfigureError(f"parameters 'input_height' and 'input_width' apply to checkpoints; "
                             f'{path} is an exported file with a fixed input size (its .json)')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        try:
            predictor = Predictor.from_path(
                path, device=settings.device, backend=settings.backend,
                input_size=settings.input_size, strict_device=settings.strict_device,
                num_threads=settings.num_threads)
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
    if any(camera.height for camera in settings.cameras) \
            and settings.ground_class >= predictor.num_classes:
        raise ConfigureError(f"parameter 'ground_class' is {settings.ground_class} but the model "
                             f'has {predictor.num_classes} classes (a camera height is set)')
    return predictor, [str(warning.message) for warning in caught]


class PerceptionNode(LifecycleNode):
    """Lifecycle node running the student on the newest frame of each of its cameras."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self._parameter_errors: dict[str, str] = {}
        self._specs: dict[str, ParameterSpec] = {}  # every declared parameter
        for spec in PARAMETERS:
            self._declare(spec)
        self._declare_camera_parameters()
        self._input_faults = InputFaultLog(self.get_logger().warning, LOG_THROTTLE_S)
        self._settings: NodeSettings | None = None
        self._predictor = None
        self._streams: list[CameraStream] = []
        self._frame_ready = threading.Condition()
        self._sizes_seen: set[tuple[int, int]] = set()
        self._sizes_to_prepare: set[tuple[int, int]] = set()
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
        # An empty string array cannot carry its type in a value: declared typed, unset.
        default = Parameter.Type.STRING_ARRAY if spec.default == () else spec.default
        self._specs[spec.name] = spec
        try:
            self.declare_parameter(spec.name, default, spec.descriptor())
        except (InvalidParameterValueException, InvalidParameterTypeException) as error:
            expected = {bool: 'bool', int: 'integer', float: 'double (write 1.0, not 1)',
                        str: 'string', tuple: 'string array ([a, b])'}[type(spec.default)]
            self._parameter_errors[spec.name] = f"parameter '{spec.name}': {error} " \
                                                f'(expected a {expected})'
            self.declare_parameter(spec.name, default, spec.descriptor(), ignore_override=True)

    def _declare_camera_parameters(self) -> None:
        """Declare camera.<name>.* for every listed camera not declared yet."""
        for name in self._value(self._specs['cameras']):
            for spec in camera_parameters(name):
                if spec.name not in self._specs:
                    self._declare(spec)

    def _value(self, spec: ParameterSpec) -> Any:
        try:
            value = self.get_parameter(spec.name).value
        except ParameterUninitializedException:
            return spec.default
        return tuple(value) if isinstance(spec.default, tuple) else value

    def _forget_fixed_parameter_errors(self, parameters: list[Parameter]) -> None:
        """A bad start-up value replaced at run time (ros2 param set) no longer blocks configure."""
        for parameter in parameters:
            self._parameter_errors.pop(parameter.name, None)

    def _read_settings(self) -> NodeSettings:
        self._declare_camera_parameters()  # `cameras` may have changed since start-up
        if self._parameter_errors:
            raise ConfigureError('; '.join(self._parameter_errors.values()))
        return settings_from_values({name: self._value(spec)
                                     for name, spec in self._specs.items()})

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
        self._streams = [CameraStream(self, camera, settings, self._frame_ready,
                                      self._input_faults, self._note_image_size)
                         for camera in settings.cameras]
        self._sizes_seen, self._sizes_to_prepare = set(), set()
        self._last_report_time = time.monotonic()
        self._diagnostics_timer = self.create_timer(settings.diagnostics_period,
                                                    self._publish_diagnostics)
        self._state_label = 'inactive'
        self.get_logger().info(
            f'configured: device {predictor.device}, backend {predictor.backend}, '
            f'{predictor.num_classes} classes, input {predictor.input_size}, max depth '
            f'{predictor.max_depth} m, {len(self._streams)} camera(s)')
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        settings = self._settings
        qos = qos_from_parameters(settings.qos_profile, settings.qos_depth)
        for stream in self._streams:
            stream.activate(qos)
        self._start_worker()
        self._state_label = 'active'
        listening = ', '.join(f"'{stream.image_topic}'" for stream in self._streams)
        self.get_logger().info(f'active: listening on {listening} ({settings.qos_profile}, '
                               f'depth {settings.qos_depth})')
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_worker()
        self._deactivate_streams()
        self._state_label = 'inactive'
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self._state_label = 'unconfigured'
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_worker()
        self._deactivate_streams()
        self._release()
        self._state_label = 'finalized'
        return super().on_shutdown(state)

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_worker()
        self._deactivate_streams()
        self._release()
        self._state_label = 'unconfigured'
        return super().on_error(state)

    def _deactivate_streams(self) -> None:
        for stream in self._streams:
            stream.deactivate()

    def _release(self) -> None:
        """Free publishers, the timer and the model (and CUDA's cached memory)."""
        for stream in self._streams:
            stream.release()
        self._streams = []
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

    # ----------------------------------------------------------------- worker
    def _note_image_size(self, size: tuple[int, int]) -> None:
        """A camera showed images of `size` (H, W): have the worker build the network for it
        (Predictor.prepare) before its frames need it, once per size."""
        with self._frame_ready:
            if size not in self._sizes_seen:
                self._sizes_seen.add(size)
                self._sizes_to_prepare.add(size)
                self._frame_ready.notify()

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
                while not (self._stopping or self._sizes_to_prepare
                           or any(stream.waiting for stream in self._streams)):
                    self._frame_ready.wait()
                if self._stopping:
                    return
                sizes, self._sizes_to_prepare = self._sizes_to_prepare, set()
                batch = [(stream, frame) for stream in self._streams
                         if (frame := stream.take()) is not None]
            try:
                for size in sizes:
                    self._predictor.prepare(size)
                if batch:
                    self._process(batch)
            except Exception as error:  # keep serving: one failed frame must not end the worker
                self.get_logger().error(f'inference failed: {error!r}',
                                        throttle_duration_sec=LOG_THROTTLE_S)

    def _process(self, batch: list[tuple[CameraStream, Frame]]) -> None:
        """One forward pass per model input size for the newest frame of each camera, then
        each camera's outputs."""
        started = time.perf_counter()
        # The camera's K (scaled to this image; the default field of view when no CameraInfo
        # came) fixes the scale of a canonical-camera network's metric depth.
        infos = [output_camera_info(stream.camera_info, frame.header, *frame.rgb.shape[:2])
                 for stream, frame in batch]
        predictor = self._predictor
        predictions = predictor.predict_batch([frame.rgb for _, frame in batch],
                                              [K for _, K in infos],
                                              [stream.camera.height for stream, _ in batch],
                                              self._settings.ground_class)
        for (stream, frame), prediction, (info, K) in zip(batch, predictions, infos):
            stream.publish(frame, prediction, info, K, predictor.num_classes,
                           predictor.max_depth)
            stream.record_latency(frame.header,
                                  frame.decode_ms + (time.perf_counter() - started) * 1e3)

    # ----------------------------------------------------------------- diagnostics
    def _publish_diagnostics(self) -> None:
        now = time.monotonic()
        window_s, self._last_report_time = now - self._last_report_time, now
        device = str(self._predictor.device) if self._predictor is not None else 'none'
        statuses = [diagnostic_status(stream.stats.report(window_s),
                                      self.get_fully_qualified_name(), device, self._state_label,
                                      stream.camera.name, stream.image_topic,
                                      stream.camera.height)
                    for stream in self._streams]
        self._diagnostics.publish(build_diagnostic_array(statuses,
                                                         self.get_clock().now().to_msg()))



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
