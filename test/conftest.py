"""Shared fixtures. Tests that start ROS nodes isolate themselves with `ros_env`; launch_testing
tests (not pytest functions, so without fixtures) get the same isolation from the hook below."""
from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def isolated_ros_settings() -> dict[str, str]:
    """Own random ROS_DOMAIN_ID, localhost-only discovery, the venv's ament index, Fast DDS."""
    return {
        'ROS_DOMAIN_ID': str(random.randint(1, 232)),
        'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST',
        'AMENT_PREFIX_PATH': os.environ.get('AMENT_PREFIX_PATH', str(Path(sys.prefix))),
        'RMW_IMPLEMENTATION': 'rmw_fastrtps_cpp',
        'PYTHONUNBUFFERED': '1',
    }


@pytest.fixture
def ros_env(monkeypatch) -> dict[str, str]:
    """Environment for node processes: own random ROS_DOMAIN_ID, localhost-only discovery.

    Also applied to this process (monkeypatch), so rclpy inits in the test join the same
    domain. Returns the environment to hand to subprocesses.
    """
    for key, value in isolated_ros_settings().items():
        monkeypatch.setenv(key, value)
    return dict(os.environ)


@pytest.fixture
def single_thread():
    """Tiny tensors: one thread is fastest and fair to a shared machine. Use with
    `pytestmark = pytest.mark.usefixtures('single_thread')`."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """A launch_testing test runs its launch and its tests in this process: give it its own
    ROS domain and an ament index holding this package for that time (launch_helpers)."""
    if item.get_closest_marker('launch_test') is None:
        return (yield)
    from launch_helpers import launch_settings

    saved = os.environ.copy()
    os.environ.update(isolated_ros_settings())
    os.environ.update(launch_settings(item.config))
    try:
        return (yield)
    finally:
        os.environ.clear()
        os.environ.update(saved)
