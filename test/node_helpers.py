"""Helpers for tests that run perception_node in its own process and drive it over DDS.

Usage (with conftest's `ros_env` fixture, which isolates the ROS domain):

    checkpoint = save_tiny_student(tmp_path / 'student')
    with NodeProcess(ros_env, {'model_path': str(checkpoint), 'autostart': True}) as node_proc, \
            TestNode('probe') as probe:
        lifecycle = LifecycleClient(probe.node, node_proc.node_name)
        ...

Every helper waits with a timeout and fails with what it was waiting for.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import Image

from conftest import REPO_ROOT
from jointdistill_ros import node_process
from jointdistill_ros.node_process import node_environment as shared_node_environment

FASTDDS_PROFILE = REPO_ROOT / 'config' / 'fastdds_large_images.xml'
# Generous: the machine running the tests may be shared and slow.
START_TIMEOUT_S = 90.0

TRANSITIONS = {
    'configure': Transition.TRANSITION_CONFIGURE,
    'activate': Transition.TRANSITION_ACTIVATE,
    'deactivate': Transition.TRANSITION_DEACTIVATE,
    'cleanup': Transition.TRANSITION_CLEANUP,
    'shutdown': Transition.TRANSITION_UNCONFIGURED_SHUTDOWN,
}


def save_tiny_student(stem: Path, input_size: tuple[int, int] = (64, 96), seed: int = 0) -> Path:
    """A small randomly initialised student checkpoint; returns the .safetensors path."""
    import torch

    from jointdistill_core.checkpoint import save_checkpoint
    from jointdistill_core.models.factory import build_model

    torch.manual_seed(seed)
    model = build_model({'arch': 'student', 'width_mult': 0.25, 'decoder_channels': [16, 16, 16]})
    # Default initialisation gives near-constant logits (one class everywhere); a wider
    # classifier makes the labels vary across the image so comparisons mean something.
    torch.nn.init.normal_(model.seg_head.weight, std=3.0)
    return save_checkpoint(stem, model.eval(), {'input_size': list(input_size)})


def node_environment(ros_env: dict[str, str], fastdds_profile: Path | None = FASTDDS_PROFILE
                     ) -> dict[str, str]:
    """ros_env plus the Fast DDS profile (or none) and one torch thread for the shared CPU."""
    env = shared_node_environment(ros_env, fastdds_profile)
    env.setdefault('OMP_NUM_THREADS', '1')
    return env


class NodeProcess(node_process.NodeProcess):
    """The shared launcher (jointdistill_ros.node_process) in the test's isolated domain."""

    def __init__(self, ros_env: dict[str, str], parameters: dict[str, Any],
                 log_path: Path | None = None, namespace: str = '',
                 remappings: dict[str, str] | None = None,
                 fastdds_profile: Path | None = FASTDDS_PROFILE,
                 extra_arguments: list[str] | None = None) -> None:
        super().__init__(parameters, env=node_environment(ros_env, fastdds_profile),
                         remappings=remappings, namespace=namespace, log_path=log_path,
                         extra_arguments=extra_arguments)


class TestNode:
    """An rclpy node in the test process with its own context and executor."""

    __test__ = False  # not a pytest test class

    def __init__(self, name: str) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = Node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def spin_until(self, predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
        """Spin until predicate() is true; AssertionError naming `what` after timeout_s."""
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f'timed out after {timeout_s:.0f} s waiting for {what}')
            self.executor.spin_once(timeout_sec=0.05)

    def spin_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.05)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)

    def __enter__(self) -> 'TestNode':
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class LifecycleClient:
    """Drives a lifecycle node through its ~/change_state and ~/get_state services."""

    def __init__(self, test_node: TestNode, node_name: str) -> None:
        self._test_node = test_node
        self._change = test_node.node.create_client(ChangeState, f'{node_name}/change_state')
        self._get = test_node.node.create_client(GetState, f'{node_name}/get_state')

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Until both services answer. service_is_ready() only sees the request path: Fast
        DDS drops a reply whose reader is not matched yet ("failed to send response"), so
        each service is probed with a request that changes nothing until a reply arrives."""
        deadline = time.monotonic() + timeout_s
        self._test_node.spin_until(
            lambda: self._change.service_is_ready() and self._get.service_is_ready(),
            timeout_s, 'the lifecycle services of the node')
        no_op = ChangeState.Request()
        no_op.transition.label = 'no_such_transition'  # rejected: success False, no change
        for client, request in ((self._change, no_op), (self._get, GetState.Request())):
            while not self._answered(client, request, attempt_s=2.0):
                if time.monotonic() > deadline:
                    raise AssertionError(f'no reply from {client.srv_name} in {timeout_s:.0f} s')

    def _answered(self, client, request, attempt_s: float) -> bool:
        future = client.call_async(request)
        deadline = time.monotonic() + attempt_s
        while not future.done() and time.monotonic() < deadline:
            self._test_node.executor.spin_once(timeout_sec=0.05)
        if not future.done():
            client.remove_pending_request(future)
        return future.done()

    def _call(self, client, request, timeout_s: float):
        future = client.call_async(request)
        self._test_node.spin_until(future.done, timeout_s, f'a reply from {client.srv_name}')
        return future.result()

    def get_state(self, timeout_s: float = 30.0) -> str:
        return self._call(self._get, GetState.Request(), timeout_s).current_state.label

    def change_state(self, transition: str, timeout_s: float = START_TIMEOUT_S) -> bool:
        request = ChangeState.Request()
        request.transition.id = TRANSITIONS[transition]
        return self._call(self._change, request, timeout_s).success

    def wait_for_state(self, label: str, timeout_s: float = START_TIMEOUT_S,
                       log: Callable[[], str] = lambda: '') -> None:
        """Until the node answers and reports state `label` (a node with autostart gets there
        by itself); AssertionError with log() after timeout_s."""
        deadline = time.monotonic() + timeout_s
        self.wait_ready(timeout_s)
        while (state := self.get_state()) != label:
            assert time.monotonic() < deadline, \
                f'the node is {state!r}, not {label!r}, after {timeout_s:.0f} s\n{log()}'
            self._test_node.spin_for(0.5)


def set_parameter(test_node: TestNode, node_name: str, name: str, value: Any,
                  timeout_s: float = 30.0) -> bool:
    """Set one parameter of another node through its ~/set_parameters service."""
    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter

    client = test_node.node.create_client(SetParameters, f'{node_name}/set_parameters')
    try:
        test_node.spin_until(client.service_is_ready, timeout_s, f'{node_name}/set_parameters')
        request = SetParameters.Request(
            parameters=[Parameter(name, value=value).to_parameter_msg()])
        future = client.call_async(request)
        test_node.spin_until(future.done, timeout_s, f'setting {name}')
        return future.result().results[0].successful
    finally:
        test_node.node.destroy_client(client)


def get_parameters(test_node: TestNode, node_name: str, names: list[str],
                   timeout_s: float = 30.0) -> dict[str, Any]:
    """Values of parameters of another node through its ~/get_parameters service."""
    from rcl_interfaces.srv import GetParameters
    from rclpy.parameter import parameter_value_to_python

    client = test_node.node.create_client(GetParameters, f'{node_name}/get_parameters')
    try:
        test_node.spin_until(client.service_is_ready, timeout_s, f'{node_name}/get_parameters')
        future = client.call_async(GetParameters.Request(names=names))
        test_node.spin_until(future.done, timeout_s, f'the parameters {names}')
        return {name: parameter_value_to_python(value)
                for name, value in zip(names, future.result().values)}
    finally:
        test_node.node.destroy_client(client)


class DiagnosticsWatcher:
    """Keeps the newest /diagnostics values of one status (by name)."""

    def __init__(self, test_node: TestNode) -> None:
        from jointdistill_ros.diagnostics import diagnostic_values

        self.latest: dict[str, str] | None = None
        self.count = 0

        def on_message(msg: DiagnosticArray) -> None:
            values = diagnostic_values(msg)
            if values is not None:
                self.latest, self.count = values, self.count + 1

        self._subscription = test_node.node.create_subscription(
            DiagnosticArray, '/diagnostics', on_message, 10)

    def value(self, key: str, default: int = -1) -> int:
        """An integer counter from the newest report (default when none arrived yet)."""
        return int(self.latest[key]) if self.latest is not None else default


def rgb_image_message(rgb: np.ndarray, stamp_ns: int, frame_id: str) -> Image:
    """An rgb8 Image of an (H, W, 3) uint8 array with the given stamp (nanoseconds)."""
    from builtin_interfaces.msg import Time
    from std_msgs.msg import Header

    from jointdistill_ros.image_codec import numpy_to_imgmsg

    header = Header(stamp=Time(sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9),
                    frame_id=frame_id)
    return numpy_to_imgmsg(np.ascontiguousarray(rgb, np.uint8), 'rgb8', header)


def pattern_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """An (H, W, 3) uint8 image with structure (gradients plus noise) so outputs vary."""
    rng = np.random.default_rng(seed)
    rows = np.linspace(0, 255, height)[:, None]
    cols = np.linspace(0, 255, width)[None, :]
    image = np.stack([np.broadcast_to(rows, (height, width)),
                      np.broadcast_to(cols, (height, width)),
                      (rows + cols) / 2], axis=-1)
    image = image + rng.normal(0, 20, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)

