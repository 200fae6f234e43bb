"""Files the package ships (config/, models/): the installed copy in share/jointdistill_ros
when the ament package is installed (colcon, pip of the full package), else the source tree's.

ROS-free: ament_index_python (a pure-Python package of ROS installs and the venv's ROS wheels)
is used where it imports; a core-only install has neither it nor the shipped models, and
`default_model_path` then names a file that does not exist (callers say so).
"""
from __future__ import annotations

from pathlib import Path

PACKAGE = 'jointdistill_ros'
# The folder holding jointdistill_core, jointdistill_ros, config/ and models/ in a checkout.
SOURCE_ROOT = Path(__file__).resolve().parents[1]
SHIPPED_MODEL = 'jointdistill_student.safetensors'


def shipped_file(folder: str, name: str) -> Path:
    """share/jointdistill_ros/FOLDER/NAME when installed, else SOURCE_ROOT/FOLDER/NAME."""
    try:
        from ament_index_python.packages import get_package_share_directory
        installed = Path(get_package_share_directory(PACKAGE)) / folder / name
        if installed.is_file():
            return installed
    except (ImportError, LookupError, ValueError, OSError):
        pass
    return SOURCE_ROOT / folder / name


def default_model_path() -> Path:
    """The shipped student (models/ of the installed package, else of the source tree): the
    model of the node, `bag eval` and the demo when none is named."""
    return shipped_file('models', SHIPPED_MODEL)
