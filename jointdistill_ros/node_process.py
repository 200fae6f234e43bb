"""perception_node as a child process: the one launcher used by bag evaluation, the demo, the
benchmarks and the tests (what `ros2 run` / `ros2 launch` do in a full ROS install)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from jointdistill_core.shipped import SOURCE_ROOT, shipped_file
from jointdistill_ros.perception_node import NODE_NAME

PROFILE_NAME = 'fastdds_large_images.xml'


def fastdds_profile_path() -> Path:
    """The shipped Fast DDS profile (32 MiB shared-memory segment for camera images)."""
    return shipped_file('config', PROFILE_NAME)


def ros_parameter_arguments(parameters: dict[str, Any]) -> list[str]:
    """['-p', 'name:=value', ...] with values written as ROS parameter YAML."""
    arguments = []
    for name, value in parameters.items():
        if isinstance(value, bool):
            text = 'true' if value else 'false'
        elif isinstance(value, str):
            text = value if value else "''"
        elif isinstance(value, (list, tuple)):
            text = '[' + ', '.join(str(item) for item in value) + ']'
        else:
            text = repr(value)
        arguments += ['-p', f'{name}:={text}']
    return arguments


def node_environment(base: dict[str, str] | None = None,
                     fastdds_profile: Path | None = None) -> dict[str, str]:
    """`base` (default: this process's environment) with the Fast DDS profile set (None: the
    variable removed, Fast DDS defaults) and the package importable in the child."""
    env = dict(os.environ if base is None else base)
    env.pop('FASTDDS_DEFAULT_PROFILES_FILE', None)
    if fastdds_profile is not None:
        env['FASTDDS_DEFAULT_PROFILES_FILE'] = str(fastdds_profile)
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [str(SOURCE_ROOT), env.get('PYTHONPATH')]))
    return env


class NodeProcess:
    """perception_node in a child process; its output goes to a log file (`log()`).

    parameters: ROS parameters of the node (they override params_file, a ROS parameter YAML);
    remappings: {'image': '/camera/image_raw', ...}; env: environment (see
    `node_environment`); namespace: optional node namespace.
    """

    def __init__(self, parameters: dict[str, Any], env: dict[str, str] | None = None,
                 remappings: dict[str, str] | None = None, namespace: str = '',
                 log_path: Path | None = None, extra_arguments: list[str] | None = None,
                 params_file: Path | None = None) -> None:
        self.node_name = '/' + '/'.join(filter(None, [namespace.strip('/'), NODE_NAME]))
        arguments = [sys.executable, '-m', 'jointdistill_ros.perception_node', '--ros-args']
        if params_file is not None:
            arguments += ['--params-file', str(params_file)]
        arguments += ros_parameter_arguments(parameters)
        if namespace:
            arguments += ['-r', f'__ns:={namespace}']
        for source, target in (remappings or {}).items():
            arguments += ['-r', f'{source}:={target}']
        arguments += extra_arguments or []
        self.log_path = log_path or Path(tempfile.gettempdir()) / \
            f'perception_node_{os.getpid()}_{time.monotonic_ns()}.log'
        self._log_file = open(self.log_path, 'w')
        self.process = subprocess.Popen(arguments,
                                        env=env if env is not None else node_environment(),
                                        stdout=self._log_file, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.process.pid

    def exited(self) -> bool:
        return self.process.poll() is not None

    def log(self) -> str:
        self._log_file.flush()
        return self.log_path.read_text(errors='replace')

    def log_tail(self, lines: int = 8) -> str:
        return ' | '.join(self.log().strip().splitlines()[-lines:])

    def peak_rss_mb(self) -> float | None:
        """Peak resident memory of the node process so far (VmHWM), MiB; None once exited."""
        try:
            for line in Path(f'/proc/{self.pid}/status').read_text().splitlines():
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) / 1024.0
        except OSError:
            return None
        return None

    def cpu_seconds(self) -> float | None:
        """CPU time (user + system, all threads) the node process used so far, seconds; None
        once exited."""
        try:
            fields = Path(f'/proc/{self.pid}/stat').read_text().rsplit(')', 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')

    def stop(self, timeout_s: float = 20.0) -> int:
        """SIGINT, then SIGKILL after `timeout_s`; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log_file.close()
        return self.process.returncode

    def __enter__(self) -> NodeProcess:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()
