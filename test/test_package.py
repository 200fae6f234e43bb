"""Package layout and the ROS-free core."""
from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET

from conftest import REPO_ROOT


def test_core_never_imports_rclpy_even_indirectly():
    # A fresh interpreter: import every core module, then check sys.modules.
    code = (
        'import importlib, pkgutil, sys\n'
        'import jointdistill_core\n'
        'for m in pkgutil.walk_packages(jointdistill_core.__path__, "jointdistill_core."):\n'
        '    if not m.name.endswith("__main__"): importlib.import_module(m.name)\n'
        'bad = sorted(n for n in sys.modules if n.split(".")[0] in ("rclpy", "jointdistill_ros"))\n'
        'print(",".join(bad))\n'
    )
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            cwd=REPO_ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == '', f'core imported: {result.stdout.strip()}'


def test_package_xml_is_format3_ament_python_with_ros_dependencies():
    root = ET.parse(REPO_ROOT / 'package.xml').getroot()
    assert root.tag == 'package' and root.get('format') == '3'
    assert root.findtext('name') == 'jointdistill_ros'
    assert root.find('export/build_type').text == 'ament_python'
    exec_depends = {e.text for e in root.findall('exec_depend')}
    for dependency in ('rclpy', 'sensor_msgs', 'std_msgs', 'diagnostic_msgs', 'lifecycle_msgs',
                       'python3-opencv', 'python3-numpy'):
        assert dependency in exec_depends, dependency
    assert 'python3-pytest' in {e.text for e in root.findall('test_depend')}


def test_layout_has_the_ament_python_files():
    for path in ('setup.py', 'setup.cfg', 'resource/jointdistill_ros', 'jointdistill_core',
                 'jointdistill_ros', 'launch', 'config', 'test'):
        assert (REPO_ROOT / path).exists(), path


def test_cli_help_lists_every_registered_subcommand():
    from jointdistill_core.cli import SUBCOMMAND_MODULES, build_parser
    help_text = build_parser().format_help()
    for name in SUBCOMMAND_MODULES:
        assert name in help_text
