"""The perception node's parameters: one table of declared parameters (name, default, description,
limits), the per-camera parameters of the `cameras` list, and their validation into settings.

Reference with examples: docs/ros.md, "Parameters" and "Several cameras".
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

from jointdistill_core.classes import FLAT, SKY
from jointdistill_core.inference import BACKENDS
from jointdistill_core.shipped import SHIPPED_MODEL, default_model_path
from jointdistill_ros.qos import QOS_PROFILES

DEVICES = ('auto', 'cpu', 'cuda')
POINTCLOUD_COLORS = ('segmentation', 'image')
# image_transport's names: `raw` subscribes to the image topic (sensor_msgs/Image),
# `compressed` to <image topic>/compressed (sensor_msgs/CompressedImage, JPEG or PNG).
TRANSPORTS = ('raw', 'compressed')
# A camera name is one topic-name token: it prefixes the camera's topics.
_CAMERA_NAME = re.compile(r'[A-Za-z][A-Za-z0-9_]*')
_RELATIVE_NAMESPACE = re.compile(r'[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*')


@dataclass(frozen=True)
class ParameterSpec:
    """One declared parameter: default (its type is the parameter's type; a tuple is a string
    array, declared without a value when empty), description, limits."""

    name: str
    default: bool | int | float | str | tuple[str, ...]
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
                  'the checkpoint\'s. Set together with input_width: the input for images of '
                  'that aspect ratio, the pixel budget for others. Checkpoints only.',
                  int_range=(0, 4096)),
    ParameterSpec('input_width', 0, 'Network input width in pixels, a multiple of 32; 0 = '
                  'the checkpoint\'s. Set together with input_height.', int_range=(0, 4096)),
    ParameterSpec('transport', 'raw', 'Image transport of the camera(s): raw subscribes to '
                  'image (sensor_msgs/Image), compressed to image/compressed '
                  '(sensor_msgs/CompressedImage, JPEG or PNG), as image_transport names it.',
                  choices=TRANSPORTS),
    ParameterSpec('cameras', (), 'Names of the cameras one node serves with one network '
                  '(e.g. [front, left]); each has camera.<name>.image, .camera_info, .namespace '
                  'and .transport. Not set: one camera on image and camera_info.'),
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
    ParameterSpec('camera_height', 0.0, 'Height in metres of the camera above the ground '
                  '(from the robot\'s URDF). > 0: each frame\'s depth is rescaled so that the '
                  'pixels segmented as ground_class lie on a plane at this height, which fixes '
                  'the metric scale on frames unlike the training data (docs/real_world.md). '
                  '0 = off. With cameras, camera.<name>.height overrides it.',
                  float_range=(0.0, 100.0)),
    ParameterSpec('ground_class', FLAT, 'Class id of the ground for camera_height '
                  '(Cityscapes-7: 0, flat); must be below the model\'s number of classes.',
                  int_range=(0, 254)),
    ParameterSpec('pointcloud_color', 'segmentation', 'Colour of the points: class colours '
                  'or the camera image.', choices=POINTCLOUD_COLORS),
    ParameterSpec('pointcloud_stride', 2, 'Keep every n-th pixel in both directions for the '
                  'point cloud (1 = every pixel).', int_range=(1, 16)),
    ParameterSpec('overlay_alpha', 0.5, 'Weight of the class colours in segmentation/overlay.',
                  float_range=(0.0, 1.0)),
    ParameterSpec('max_depth_color', 0.0, 'Depth in metres mapped to the far end of the '
                  'depth/color map; 0 = the model\'s maximum depth, at most 80 m.',
                  float_range=(0.0, 1000.0)),
    ParameterSpec('diagnostics_period', 1.0, 'Seconds between /diagnostics messages.',
                  float_range=(0.1, 60.0)),
    ParameterSpec('autostart', False, 'Configure and activate at start-up (for runs without '
                  'a lifecycle manager).'),
)


def camera_parameters(name: str) -> tuple[ParameterSpec, ...]:
    """The parameters of camera `name` of the `cameras` list (declared once it is listed)."""
    prefix = f'camera.{name}.'
    return (
        ParameterSpec(prefix + 'image', f'{name}/image', f'Image topic of camera {name} (its '
                      'base topic with compressed transport).'),
        ParameterSpec(prefix + 'camera_info', f'{name}/camera_info',
                      f'CameraInfo topic of camera {name}.'),
        ParameterSpec(prefix + 'namespace', name, f'Namespace of the outputs of camera {name}, '
                      'relative to the node\'s (e.g. front: front/depth/image).'),
        ParameterSpec(prefix + 'transport', '', f'Transport of camera {name}: raw or '
                      'compressed; empty = the node\'s transport parameter.'),
        ParameterSpec(prefix + 'height', 0.0, f'Height in metres of camera {name} above the '
                      'ground; 0 = the node\'s camera_height.', float_range=(0.0, 100.0)),
    )


class ConfigureError(Exception):
    """A parameter or model problem; the message names the parameter or file."""


@dataclass(frozen=True)
class CameraSettings:
    """One camera: its name ('' for the node's single camera), input topics (relative or
    absolute, remappable), output namespace ('' = the node's), transport and height above
    the ground in metres (None: depth keeps the network's scale)."""

    name: str
    image_topic: str
    camera_info_topic: str
    namespace: str
    transport: str
    height: float | None = None



@dataclass(frozen=True)
class NodeSettings:
    """Validated parameters, read in on_configure."""

    model_path: Path
    device: str
    backend: str
    num_threads: int
    strict_device: bool
    input_size: tuple[int, int] | None
    cameras: tuple[CameraSettings, ...]
    qos_profile: str
    qos_depth: int
    publisher_depth: int
    sky_as_inf: bool
    sky_class: int
    ground_class: int
    pointcloud_color: str
    pointcloud_stride: int
    overlay_alpha: float
    max_depth_color: float
    diagnostics_period: float


def _check_choice(values: dict[str, Any], name: str, choices: tuple[str, ...]) -> str:
    value = values[name]
    if value not in choices:
        raise ConfigureError(f"parameter '{name}' is '{value}'; expected one of "
                             + ', '.join(choices))
    return value


def cameras_from_values(values: dict[str, Any]) -> tuple[CameraSettings, ...]:
    """The cameras of the node: the `cameras` list with each one's camera.<name>.* values, or
    the single camera on image and camera_info when the list is empty."""
    transport = _check_choice(values, 'transport', TRANSPORTS)
    node_height = values['camera_height'] or None
    names = list(values['cameras'])
    if not names:
        return (CameraSettings('', 'image', 'camera_info', '', transport, node_height),)
    for name in names:
        if not _CAMERA_NAME.fullmatch(name):
            raise ConfigureError(f"parameter 'cameras': {name!r} is not a camera name (a letter, "
                                 'then letters, digits or _)')
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ConfigureError(f"parameter 'cameras' lists {', '.join(duplicates)} more than once")
    cameras = []
    for name in names:
        prefix = f'camera.{name}.'
        namespace = values[prefix + 'namespace'].strip('/')
        if namespace and not _RELATIVE_NAMESPACE.fullmatch(namespace):
            raise ConfigureError(f"parameter '{prefix}namespace' is {namespace!r}; expected "
                                 'topic-name tokens such as front or cameras/front')
        own_transport = values[prefix + 'transport'] or transport
        if own_transport not in TRANSPORTS:
            raise ConfigureError(f"parameter '{prefix}transport' is '{own_transport}'; "
                                 f"expected one of {', '.join(TRANSPORTS)} (or empty)")
        cameras.append(CameraSettings(name, values[prefix + 'image'],
                                      values[prefix + 'camera_info'], namespace, own_transport,
                                      values[prefix + 'height'] or node_height))
    for field, label in (('namespace', 'namespace'), ('image_topic', 'image')):
        seen: dict[str, str] = {}
        for camera in cameras:
            other = seen.setdefault(getattr(camera, field), camera.name)
            if other != camera.name:
                raise ConfigureError(f"parameters 'camera.{other}.{label}' and "
                                     f"'camera.{camera.name}.{label}' are both "
                                     f"'{getattr(camera, field)}'; each camera needs its own")
    return tuple(cameras)


def settings_from_values(values: dict[str, Any]) -> NodeSettings:
    """Validate parameter values (name -> value; camera.<name>.* for each listed camera) into
    settings; ConfigureError names the parameter at fault."""
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
        cameras=cameras_from_values(values),
        qos_profile=_check_choice(values, 'qos.profile', QOS_PROFILES),
        qos_depth=values['qos.depth'],
        publisher_depth=values['qos.publisher_depth'],
        sky_as_inf=values['sky_as_inf'],
        sky_class=values['sky_class'],
        ground_class=values['ground_class'],
        pointcloud_color=_check_choice(values, 'pointcloud_color', POINTCLOUD_COLORS),
        pointcloud_stride=values['pointcloud_stride'],
        overlay_alpha=values['overlay_alpha'],
        max_depth_color=values['max_depth_color'],
        diagnostics_period=values['diagnostics_period'],
    )
