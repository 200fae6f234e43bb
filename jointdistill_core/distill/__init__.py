"""Distillation methods: one registry from name to class (interface in `base.py`).

`build_method` checks a method's hyperparameters against its `Params` dataclass, so unknown
keys, wrong types and out-of-range values are configuration errors naming the key.
"""
from __future__ import annotations

from typing import Any

from torch import nn

from jointdistill_core.config import ConfigError, from_dict
from jointdistill_core.distill.amalgamation import Amalgamation
from jointdistill_core.distill.base import DistillMethod
from jointdistill_core.distill.jointdistill import JointDistill
from jointdistill_core.distill.mtl import MultiTaskLearning
from jointdistill_core.distill.sd_mtcnn import SelfDistillMTCNN
from jointdistill_core.distill.static_kd import StaticKD
from jointdistill_core.distill.xdistill import CrossTaskDistill

METHODS: dict[str, type[DistillMethod]] = {
    'mtl': MultiTaskLearning,
    'static_kd': StaticKD,
    'jointdistill': JointDistill,
    'sd_mtcnn': SelfDistillMTCNN,
    'xdistill': CrossTaskDistill,
    'amalgamation': Amalgamation,
}


def method_params(name: str, params_dict: dict[str, Any] | None,
                  source: str = '<config>', path: str = 'method.params') -> Any:
    """The validated `Params` dataclass of method `name` built from `params_dict`.

    `source` (a file name) and `path` (the key path of the params mapping) appear in errors.
    """
    if name not in METHODS:
        raise ConfigError(f'{source}: method.name: unknown method {name!r} (known: '
                          f'{", ".join(METHODS)})')
    params_class = METHODS[name].Params
    try:
        return from_dict(params_class, params_dict or {}, source=source, path=path)
    except ValueError as error:
        if isinstance(error, ConfigError):
            raise
        raise ConfigError(f'{source}: {path}: {error}') from None


def build_method(name: str, params_dict: dict[str, Any] | None, student: nn.Module,
                 num_classes: int, max_depth: float, source: str = '<config>',
                 path: str = 'method.params') -> DistillMethod:
    """Instantiate method `name` for `student` (C = num_classes, depth in (0, max_depth] m).

    The caller then runs ``setup(probe_batch, val_batch, teachers)`` before building the
    optimizer (some methods create adaptors there).
    """
    params = method_params(name, params_dict, source, path)
    try:
        return METHODS[name](params, student, num_classes, max_depth)
    except ValueError as error:  # a parameter that does not fit this student or class set
        raise ConfigError(f'{source}: {path}: {error}') from None
