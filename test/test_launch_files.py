"""Launch, parameter, RViz and Fast DDS files: static checks, then `ros2 launch` for real where
launch_ros imports (a ROS 2 install, or the venv after tools/install_launch_stack.sh).
launch_testing tests of the launch file: test_launch_node.py, _respawn.py, _sim_time.py."""
from __future__ import annotations

import ast
import os
import signal
import subprocess
import time
import uuid
import xml.etree.ElementTree as ET
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from conftest import REPO_ROOT
from jointdistill_ros.camera_stream import OUTPUT_TOPICS
from jointdistill_ros.parameters import PARAMETERS, settings_from_values
from jointdistill_ros.perception_node import NODE_NAME
from launch_helpers import (
    LAUNCH_FILE,
    LAUNCH_STACK_MISSING,
    PACKAGE,
    SKIP_REASON,
    launch_settings,
    processes_with_argument,
    ros2_command,
)
from node_helpers import LifecycleClient, TestNode, save_tiny_student

LAUNCH_FILES = sorted((REPO_ROOT / 'launch').glob('*.launch.py'))
# ros2 launch stops its node and exits within this after SIGINT (about 2 s here).
SIGINT_STOP_S = 20
# Nodes of other packages a launch file may start, each only behind a condition.
OPTIONAL_FOREIGN_NODES = {'rviz2': 'rviz2'}
LAUNCH_ARGUMENTS = {'image_topic', 'camera_info_topic', 'namespace', 'params_file',
                    'model_path', 'device', 'transport', 'cameras', 'camera_height',
                    'use_sim_time', 'respawn', 'rviz'}


def console_scripts() -> set[str]:
    """Names of setup.py's console_scripts, read from its syntax tree (setup.py is not run)."""
    tree = ast.parse((REPO_ROOT / 'setup.py').read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and key.value == 'console_scripts':
                    return {ast.literal_eval(item).split('=')[0].strip() for item in value.elts}
    raise AssertionError('setup.py declares no console_scripts')


def calls_named(tree: ast.AST, *names: str) -> list[ast.Call]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, 'attr', None)
            if name in names:
                found.append(node)
    return found


def keyword(call: ast.Call, name: str):
    for item in call.keywords:
        if item.arg == name:
            return item.value
    return None


def module_constants(tree: ast.Module) -> dict[str, object]:
    """Module-level NAME = <literal> assignments (e.g. PACKAGE = 'jointdistill_ros')."""
    constants = {}
    for statement in tree.body:
        if isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Constant):
            for target in statement.targets:
                if isinstance(target, ast.Name):
                    constants[target.id] = statement.value.value
    return constants


def constant(call: ast.Call, name: str, constants: dict[str, object] | None = None):
    """The literal value of keyword `name`, following module-level constant names."""
    value = keyword(call, name)
    if isinstance(value, ast.Constant):
        return value.value
    if isinstance(value, ast.Name) and constants and value.id in constants:
        return constants[value.id]
    return None


def test_there_is_a_launch_file():
    assert [path.name for path in LAUNCH_FILES] == ['jointdistill.launch.py']


@pytest.mark.parametrize('path', LAUNCH_FILES, ids=lambda path: path.name)
def test_launch_file_nodes_name_existing_entry_points(path: Path):
    source = path.read_text()
    tree = ast.parse(source, filename=str(path))
    compile(tree, str(path), 'exec')
    scripts = console_scripts()
    constants = module_constants(tree)
    nodes = calls_named(tree, 'Node', 'LifecycleNode')
    assert nodes, f'{path.name} starts no node'
    ours = [call for call in nodes if constant(call, 'package', constants) == PACKAGE]
    assert ours, f'{path.name} starts no {PACKAGE} node'
    for call in nodes:
        package = constant(call, 'package', constants)
        executable = constant(call, 'executable', constants)
        if package == PACKAGE:
            assert executable in scripts, f'{path.name}:{call.lineno}: no console script ' \
                                          f'{executable!r} in setup.py ({sorted(scripts)})'
        else:
            assert OPTIONAL_FOREIGN_NODES.get(package) == executable, \
                f'{path.name}:{call.lineno}: unexpected node {package}/{executable}'
            assert keyword(call, 'condition') is not None, \
                f'{path.name}:{call.lineno}: {package} must be optional (condition=...)'
    lifecycle_nodes = calls_named(tree, 'LifecycleNode')
    assert [constant(call, 'name') for call in lifecycle_nodes] == [NODE_NAME]


def test_launch_file_arguments_autostart_and_fastdds_profile():
    path = REPO_ROOT / 'launch' / 'jointdistill.launch.py'
    tree = ast.parse(path.read_text())
    declared = {call.args[0].value for call in calls_named(tree, 'DeclareLaunchArgument')}
    assert declared == LAUNCH_ARGUMENTS
    autostart = [value for node in ast.walk(tree) if isinstance(node, ast.Dict)
                 for key, value in zip(node.keys, node.values)
                 if isinstance(key, ast.Constant) and key.value == 'autostart']
    assert len(autostart) == 1 and ast.literal_eval(autostart[0]) is True
    environment = calls_named(tree, 'SetEnvironmentVariable')
    assert [call.args[0].value for call in environment] == ['FASTDDS_DEFAULT_PROFILES_FILE']
    shipped_names = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)
                     and isinstance(node.value, str) and '.' in node.value}
    for name in ('fastdds_large_images.xml', 'jointdistill.yaml', 'jointdistill.rviz'):
        assert name in shipped_names and (REPO_ROOT / 'config' / name).is_file(), name


def flatten(mapping: dict, prefix: str = '') -> dict:
    """ROS parameter YAML: nested mappings and dotted keys both name 'a.b'."""
    flat = {}
    for key, value in mapping.items():
        name = f'{prefix}{key}'
        if isinstance(value, dict):
            flat.update(flatten(value, name + '.'))
        else:
            flat[name] = value
    return flat


def test_params_file_sets_exactly_the_declared_parameters_with_valid_values():
    document = yaml.safe_load((REPO_ROOT / 'config' / 'jointdistill.yaml').read_text())
    assert list(document) == ['/**']
    values = flatten(document['/**']['ros__parameters'])
    specs = {spec.name: spec for spec in PARAMETERS}
    # `cameras` (a string array) stays unset: an empty list cannot carry its type in ROS
    # parameter YAML; the file shows it in a comment.
    expected = {name for name, spec in specs.items() if spec.default != ()}
    assert set(values) == expected, f'undeclared: {set(values) - expected}; ' \
                                    f'missing: {expected - set(values)}'
    for name, value in values.items():
        # rclpy refuses a value whose type differs from the declared one (1 for a double).
        assert type(value) is type(specs[name].default), (name, value)
        if specs[name].int_range:
            low, high = specs[name].int_range
            assert low <= value <= high, name
        if specs[name].float_range:
            low, high = specs[name].float_range
            assert low <= value <= high, name
    settings_from_values({**values, 'cameras': ()})  # choices, cross-checks (ConfigureError)


def test_params_file_documents_every_parameter_in_a_comment():
    lines = (REPO_ROOT / 'config' / 'jointdistill.yaml').read_text().splitlines()
    for index, line in enumerate(lines):
        stripped = line.strip()
        if stripped and not stripped.startswith('#') and ':' in stripped \
                and stripped.split(':')[0] in {spec.name for spec in PARAMETERS}:
            above = lines[:index]
            while above and not above[-1].strip().startswith('#'):
                above.pop()  # parameters grouped under one comment share it
            assert above, f'{stripped} has no comment above it'


def rviz_displays(node) -> list[dict]:
    if isinstance(node, dict):
        found = [node] if 'Class' in node and 'Topic' in node else []
        return found + [d for value in node.values() for d in rviz_displays(value)]
    if isinstance(node, list):
        return [d for value in node for d in rviz_displays(value)]
    return []


def test_rviz_config_shows_the_node_outputs():
    document = yaml.safe_load((REPO_ROOT / 'config' / 'jointdistill.rviz').read_text())
    manager = document['Visualization Manager']
    assert manager['Global Options']['Fixed Frame'] == 'camera_optical_frame'
    published = {'/' + topic for _, topic in OUTPUT_TOPICS.values()}
    displays = {d['Topic']['Value']: d for d in rviz_displays(manager)}
    assert set(displays) == {'/depth/color', '/segmentation/color', '/segmentation/overlay',
                             '/points'}
    assert set(displays) <= published
    for topic, display in displays.items():
        expected = 'PointCloud2' if topic == '/points' else 'Image'
        assert display['Class'] == f'rviz_default_plugins/{expected}', topic
        assert display['Topic']['Durability Policy'] == 'Volatile', topic  # as published
    assert displays['/points']['Color Transformer'] == 'RGB8'


def test_shipped_profile_has_a_32_mib_shm_segment_and_udp():
    root = ET.parse(REPO_ROOT / 'config' / 'fastdds_large_images.xml').getroot()
    namespace = {'d': 'http://www.eprosima.com'}
    descriptors = {d.findtext('d:transport_id', namespaces=namespace): d
                   for d in root.iterfind('.//d:transport_descriptor', namespace)}
    kinds = {name: d.findtext('d:type', namespaces=namespace) for name, d in descriptors.items()}
    assert sorted(kinds.values()) == ['SHM', 'UDPv4']
    shm = next(d for d in descriptors.values()
               if d.findtext('d:type', namespaces=namespace) == 'SHM')
    assert int(shm.findtext('d:segment_size', namespaces=namespace)) >= 33554432  # 32 MiB
    participant = root.find('.//d:participant', namespace)
    assert participant.get('is_default_profile') == 'true'
    rtps = participant.find('d:rtps', namespace)
    assert rtps.findtext('d:useBuiltinTransports', namespaces=namespace) == 'false'
    used = {t.text for t in rtps.iterfind('d:userTransports/d:transport_id', namespace)}
    assert used == set(descriptors)


@pytest.fixture
def launch_env(ros_env, request) -> dict[str, str]:
    """ros_env for `ros2 launch`: the package in the ament index; skips without launch_ros."""
    if LAUNCH_STACK_MISSING:
        pytest.skip(SKIP_REASON)
    return dict(ros_env, **launch_settings(request.config))


def start_ros2_launch(arguments: list[str], env: dict[str, str], log_path: Path
                      ) -> subprocess.Popen:
    """`ros2 launch jointdistill_ros jointdistill.launch.py ARGUMENTS` in a child process.

    launch shuts down (stopping its nodes) only on SIGINT, and a child inherits an ignored
    SIGINT, as under pytest run as a background job of a non-interactive shell: the child
    gets the default handler back before it starts."""
    with open(log_path, 'w') as log:
        return subprocess.Popen(
            [ros2_command(), 'launch', PACKAGE, LAUNCH_FILE, *arguments], env=env,
            stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


@contextmanager
def sigint_ignored():
    """This process ignores SIGINT meanwhile, as a background job of a non-interactive shell
    does (`pytest &` in a script); children started meanwhile inherit that."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def stop_leftovers(marker: str) -> list[int]:
    """Processes still running with `marker` in their arguments, killed; their PIDs."""
    leftovers = processes_with_argument(marker)
    for pid in leftovers:
        os.kill(pid, signal.SIGKILL)
    return leftovers


@pytest.mark.ros
def test_ros2_launch_starts_an_active_node_and_stops_it_on_sigint(launch_env, tmp_path):
    checkpoint = save_tiny_student(tmp_path / 'student')
    namespace = f'sigint_{uuid.uuid4().hex[:8]}'
    log_path = tmp_path / 'launch.log'
    with sigint_ignored():
        launch = start_ros2_launch([f'model_path:={checkpoint}', 'device:=cpu',
                                    f'namespace:={namespace}'], launch_env, log_path)
    try:
        with TestNode('probe') as probe:
            LifecycleClient(probe, f'/{namespace}/{NODE_NAME}').wait_for_state(
                'active', log=log_path.read_text)
        assert processes_with_argument(f'__ns:=/{namespace}'), 'no node process found'
        launch.send_signal(signal.SIGINT)
        try:
            returncode = launch.wait(timeout=SIGINT_STOP_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f'ros2 launch still runs {SIGINT_STOP_S} s after SIGINT (ignored?):\n'
                        + log_path.read_text())
    finally:
        if launch.poll() is None:
            launch.kill()
            launch.wait(timeout=10)
        leftovers = stop_leftovers(f'__ns:=/{namespace}')
    assert not leftovers, f'node processes left running after launch exited: {leftovers}'
    assert returncode == 0, log_path.read_text()
    assert 'process has finished cleanly' in log_path.read_text()


@pytest.mark.ros
def test_rviz_without_rviz2_fails_before_starting_anything(launch_env, tmp_path):
    from ament_index_python.packages import get_packages_with_prefixes

    if 'rviz2' in get_packages_with_prefixes():
        pytest.skip('rviz2 is installed here: rviz:=true would start it')
    checkpoint = save_tiny_student(tmp_path / 'student')
    namespace = f'rviz_{uuid.uuid4().hex[:8]}'
    log_path = tmp_path / 'launch.log'
    launch = start_ros2_launch([f'model_path:={checkpoint}', 'device:=cpu',
                                f'namespace:={namespace}', 'rviz:=true'], launch_env, log_path)
    try:
        returncode = launch.wait(timeout=30)
    finally:
        if launch.poll() is None:
            launch.kill()
            launch.wait(timeout=10)
        time.sleep(2)  # a node started before the failure would be running by now
        leftovers = stop_leftovers(f'__ns:=/{namespace}')
    log = log_path.read_text()
    assert not leftovers, f'the failed launch left node processes running: {leftovers}\n{log}'
    assert returncode != 0, log
    assert "package 'rviz2'" in log and 'apt install' in log and 'without rviz:=true' in log, log
