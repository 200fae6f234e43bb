"""Files the package ships (config/, models/): the installed copy in share/jointdistill_ros
when the package is installed (colcon, pip), else the source tree's."""
from __future__ import annotations

from pathlib import Path

PACKAGE = 'jointdistill_ros'
# The folder holding jointdistill_core, jointdistill_ros, config/ and models/ in a checkout.
SOURCE_ROOT = Path(__file__).resolve().parents[1]


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
