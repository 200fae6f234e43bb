"""The torch device from a name: one rule for training, evaluation, the Predictor and the node.

Names: 'auto' (CUDA when available, else the CPU), 'cpu', 'cuda' or 'cuda:N'.

A CUDA device this machine does not have is an error (`DeviceUnavailableError`) unless the
caller allows a fallback, which then warns (RuntimeWarning) and uses the CPU. Training and
`jointdistill evaluate` never fall back: a run meant for a GPU should not quietly take days
on a CPU. The Predictor falls back unless ``strict_device=True``, the behaviour the
perception node documents for its `strict_device` parameter (a robot keeps seeing while its
GPU driver is broken).
"""
from __future__ import annotations

import re
import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

DEVICE_NAMES = "'auto', 'cpu' or 'cuda[:N]'"
_DEVICE_PATTERN = re.compile(r'auto|cpu|cuda(:\d+)?')


class DeviceUnavailableError(RuntimeError):
    """A CUDA device was asked for, no fallback is allowed, and this machine lacks it."""


def check_device_name(name: str) -> str:
    """`name` unchanged when it is a device name this project accepts; ValueError otherwise."""
    if not isinstance(name, str) or not _DEVICE_PATTERN.fullmatch(name):
        raise ValueError(f'device must be {DEVICE_NAMES}, got {name!r}')
    return name


def resolve_device(name: str, fallback: bool = False) -> torch.device:
    """The torch.device for `name` (see the module docstring for the rule).

    fallback: a CUDA device this machine lacks gives the CPU with a RuntimeWarning instead of
    DeviceUnavailableError.
    """
    import torch  # on use: command lines check device names before torch loads
    if check_device_name(name) == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    device = torch.device(name)
    if device.type == 'cuda' and not _cuda_has(device.index or 0):
        message = f'device {name!r} requested but CUDA is not available on this machine'
        if not fallback:
            raise DeviceUnavailableError(message)
        warnings.warn(f'{message}; falling back to CPU', RuntimeWarning, stacklevel=3)
        return torch.device('cpu')
    return device


def _cuda_has(index: int) -> bool:
    import torch
    return torch.cuda.is_available() and index < torch.cuda.device_count()
