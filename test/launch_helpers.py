"""Helpers for the tests that run the shipped launch file (launch_testing and `ros2 launch`).

The launch system has no pip wheels: it comes from a ROS 2 install, or from
tools/install_launch_stack.sh in the venv. Without it these tests skip with SKIP_REASON.
Everything importing launch, launch_ros or launch_testing is imported inside functions, so
this module imports everywhere.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from importlib.util import find_spec
from pathlib import Path

import pytest

from conftest import REPO_ROOT

PACKAGE = 'jointdistill_ros'
LAUNCH_FILE = 'jointdistill.launch.py'
LAUNCH_STACK_MISSING = any(find_spec(name) is None
                           for name in ('launch_ros', 'launch_testing_ros', 'ros2launch'))
SKIP_REASON = ('launch_ros not installed: run tools/install_launch_stack.sh '
               '../shared/vendor/ros2-launch-stack.tgz (docs/ros.md), or test in a ROS 2 '
               'install')
_AMENT_PREFIX_PATH = pytest.StashKey[str]()


def ament_prefix_path(config: pytest.Config) -> str:
    """An AMENT_PREFIX_PATH under which this package is indexed (launch looks up its share
    folder and its executables there): the current one where it already is (colcon test, a
    sourced workspace or ROS install), else the current one plus a `colcon build
    --symlink-install` of the working tree, built once per session (about 2 s)."""
    if _AMENT_PREFIX_PATH in config.stash:
        return config.stash[_AMENT_PREFIX_PATH]
    from ament_index_python.packages import get_packages_with_prefixes

    current = os.environ.get('AMENT_PREFIX_PATH', sys.prefix)
    if PACKAGE in get_packages_with_prefixes():
        path = current
    else:
        workspace = Path(tempfile.mkdtemp(prefix='jointdistill_ament_'))
        config.add_cleanup(lambda: shutil.rmtree(workspace, ignore_errors=True))
        (workspace / 'src').mkdir()
        (workspace / 'src' / PACKAGE).symlink_to(REPO_ROOT, target_is_directory=True)
        build = subprocess.run(
            [_executable('colcon'), 'build', '--symlink-install', '--packages-select', PACKAGE],
            cwd=workspace, env=dict(os.environ, AMENT_PREFIX_PATH=current),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert build.returncode == 0, f'colcon build of {PACKAGE} failed:\n{build.stdout}'
        path = os.pathsep.join([str(workspace / 'install' / PACKAGE), current])
    config.stash[_AMENT_PREFIX_PATH] = path
    return path


def launch_settings(config: pytest.Config) -> dict[str, str]:
    """Environment for a launch under test, on top of conftest.isolated_ros_settings()."""
    return {'AMENT_PREFIX_PATH': ament_prefix_path(config),
            'OMP_NUM_THREADS': '1'}  # the node's torch shares the CPU with the test


def _executable(name: str) -> str:
    """A command of the launch stack or colcon: next to this Python first (the venv)."""
    found = shutil.which(name, path=os.pathsep.join(
        [str(Path(sys.executable).parent), os.environ.get('PATH', '')]))
    assert found, f'no {name} command next to {sys.executable} or on PATH'
    return found


def ros2_command() -> str:
    return _executable('ros2')


def shipped_launch_file() -> Path:
    """The launch file as installed (share/jointdistill_ros/launch), as `ros2 launch` finds it."""
    from ament_index_python.packages import get_package_share_directory

    return Path(get_package_share_directory(PACKAGE)) / 'launch' / LAUNCH_FILE


def launch_description_under_test(arguments: dict[str, str], before: list | None = None):
    """The shipped launch file with `arguments`, then launch_testing's ReadyToTest; `before`:
    actions that come first (event handlers)."""
    import launch_testing.actions
    from launch import LaunchDescription
    from launch.actions import IncludeLaunchDescription
    from launch.launch_description_sources import PythonLaunchDescriptionSource

    return LaunchDescription([
        *(before or []),
        IncludeLaunchDescription(PythonLaunchDescriptionSource(str(shipped_launch_file())),
                                 launch_arguments=list(arguments.items())),
        launch_testing.actions.ReadyToTest(),
    ])


def processes_with_argument(text: str) -> list[int]:
    """PIDs of live processes (zombies excluded) with `text` in one of their arguments."""
    found = []
    for entry in Path('/proc').iterdir():
        if not entry.name.isdigit():
            continue
        try:
            arguments = (entry / 'cmdline').read_bytes().split(b'\0')
            state = (entry / 'stat').read_text().rsplit(')', 1)[1].split()[0]
        except (OSError, IndexError):
            continue  # exited meanwhile
        if state != 'Z' and any(text.encode() in argument for argument in arguments):
            found.append(int(entry.name))
    return found
