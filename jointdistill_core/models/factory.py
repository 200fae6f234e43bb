"""Build a network from its JSON-able spec (what checkpoints store as "model")."""
from __future__ import annotations

import inspect

from torch import nn

from jointdistill_core.models.student import JointStudent
from jointdistill_core.models.teachers import DepthTeacher, SegTeacher

ARCHITECTURES: dict[str, type[nn.Module]] = {
    'student': JointStudent,
    'seg_teacher': SegTeacher,
    'depth_teacher': DepthTeacher,
}


class ModelSpecError(ValueError):
    """A spec names an unknown architecture or passes arguments its constructor lacks."""


def build_model(spec: dict) -> nn.Module:
    """spec = {'arch': 'student' | 'seg_teacher' | 'depth_teacher', **constructor kwargs}.

    `model.spec` of every built network round-trips: build_model(model.spec) rebuilds it.
    """
    if not isinstance(spec, dict):
        raise ModelSpecError(f'model spec must be a mapping, got {type(spec).__name__}')
    arch = spec.get('arch')
    if arch not in ARCHITECTURES:
        raise ModelSpecError(f'model spec: unknown arch {arch!r}; expected one of '
                             f'{sorted(ARCHITECTURES)}')
    cls = ARCHITECTURES[arch]
    kwargs = {key: value for key, value in spec.items() if key != 'arch'}
    accepted = set(inspect.signature(cls.__init__).parameters) - {'self'}
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise ModelSpecError(f'model spec for arch {arch!r}: unknown argument(s) {unknown}; '
                             f'accepted: {sorted(accepted)}')
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as error:
        raise ModelSpecError(f'model spec for arch {arch!r}: {error}') from error
