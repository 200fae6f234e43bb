"""Package layout and the ROS-free core."""
from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from conftest import REPO_ROOT


def test_core_never_imports_rclpy_even_indirectly():
    # A fresh interpreter: import every core module (jointdistill_core.cli.* included) and build
    # the core CLI's parser, then check sys.modules.
    code = (
        'import importlib, pkgutil, sys\n'
        'import jointdistill_core\n'
        'for m in pkgutil.walk_packages(jointdistill_core.__path__, "jointdistill_core."):\n'
        '    if not m.name.endswith("__main__"): importlib.import_module(m.name)\n'
        'assert "jointdistill_core.cli.bag" in sys.modules\n'
        'from jointdistill_core.cli import build_parser\n'
        'build_parser()\n'
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


def test_full_cli_is_the_core_cli_plus_the_ros_subcommands():
    from jointdistill_core.cli import SUBCOMMAND_MODULES, build_parser, subcommands
    from jointdistill_ros import cli as ros_cli
    core, full = subcommands(build_parser()), subcommands(ros_cli.build_parser())
    assert list(core.choices) == SUBCOMMAND_MODULES
    assert list(full.choices) == SUBCOMMAND_MODULES + ['demo']
    assert list(subcommands(core.choices['bag']).choices) == ['make', 'from-dataset', 'info',
                                                              'eval']
    assert list(subcommands(full.choices['bag']).choices) == ['make', 'from-dataset', 'info',
                                                              'eval', 'play']
    assert 'demo' in ros_cli.build_parser().format_help()


def test_core_cli_refuses_live_bag_eval_in_one_line_without_starting_ros(tmp_path):
    # A fresh interpreter, so that sys.modules shows whether the refusal imported ROS.
    out = tmp_path / 'report'
    code = (
        'import sys\n'
        'from jointdistill_core.cli import main\n'
        f'code = main(["bag", "eval", "--bag", {str(tmp_path / "bag")!r}, "--model", '
        f'{str(tmp_path / "student.safetensors")!r}, "--out", {str(out)!r}])\n'
        'bad = sorted(n for n in sys.modules if n.split(".")[0] in ("rclpy", "jointdistill_ros"))\n'
        'print(code, ",".join(bad))\n'
    )
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            cwd=REPO_ROOT, timeout=300)
    assert result.stdout.strip() == '2', result.stdout + result.stderr
    (error,) = result.stderr.strip().splitlines()
    assert error.startswith('jointdistill bag: error: live evaluation (without --outputs) runs '
                            'the ROS perception node'), error
    assert '`python -m jointdistill_ros`' in error, error
    assert not out.exists()


def test_core_cli_no_longer_has_the_ros_subcommands(capsys):
    from jointdistill_core.cli import main
    for argv in (['demo'], ['bag', 'play', 'some_bag']):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2
        assert 'invalid choice' in capsys.readouterr().err


def test_python_m_jointdistill_ros_runs_the_full_command():
    result = subprocess.run([sys.executable, '-m', 'jointdistill_ros', 'bag', 'play', '--help'],
                            capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('usage: jointdistill bag play') and '--clock' in result.stdout
