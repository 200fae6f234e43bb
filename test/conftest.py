"""Shared fixtures. Tests that start ROS nodes isolate themselves with `ros_env`."""
from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def ros_env(monkeypatch) -> dict[str, str]:
    """Environment for node processes: own random ROS_DOMAIN_ID, localhost-only discovery.

    Also applied to this process (monkeypatch), so rclpy inits in the test join the same
    domain. Returns the environment to hand to subprocesses.
    """
    domain = str(random.randint(1, 232))
    venv = Path(sys.prefix)
    settings = {
        'ROS_DOMAIN_ID': domain,
        'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST',
        'AMENT_PREFIX_PATH': os.environ.get('AMENT_PREFIX_PATH', str(venv)),
        'RMW_IMPLEMENTATION': 'rmw_fastrtps_cpp',
        'PYTHONUNBUFFERED': '1',
    }
    for key, value in settings.items():
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
