"""argparse value types shared by the subcommands: each refuses a bad value with a message
that argparse prints after the option's name."""
from __future__ import annotations

import argparse
import re
from collections.abc import Callable

from jointdistill_core.device import check_device_name
from jointdistill_core.geometry import parse_size

# ROS 2 topic names: tokens of letters, digits and '_' joined by '/', no token starting with
# a digit, no empty token (so no '//' and no trailing '/').
_TOPIC_NAME = re.compile(r'/?[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*')


def size_argument(minimum: int = 1, multiple: int = 1) -> Callable[[str], tuple[int, int]]:
    """An argparse type reading 'HxW' pixels into (height, width), as `geometry.parse_size`."""
    def parse(text: str) -> tuple[int, int]:
        try:
            return parse_size(text, minimum, multiple)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
    return parse


def device_name(text: str) -> str:
    """A device name: auto, cpu, cuda or cuda:N (argparse type)."""
    try:
        return check_device_name(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def positive_float(text: str) -> float:
    """A number > 0 (argparse type)."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f'must be > 0, got {text}')
    return value


def non_negative_float(text: str) -> float:
    """A number >= 0 (argparse type)."""
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f'must be >= 0, got {text}')
    return value


def positive_int(text: str) -> int:
    """An integer >= 1 (argparse type)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be >= 1, got {text}')
    return value


def topic_name(text: str) -> str:
    """A ROS 2 topic name as typed on the command line (argparse type)."""
    if not _TOPIC_NAME.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a valid ROS topic name (letters, digits and '_' in tokens "
            "separated by '/', no token starting with a digit), e.g. /camera/image_raw")
    return text
