"""Class maps: a teacher's label set -> the student's classes.

A class map is a YAML file:

    source_classes: [road, sidewalk, ...]     # the teacher's classes, in its output order
    target_classes: [flat, construction, ...] # the student's classes, in its order
    mapping:                                  # source class -> target class, or null (void)
      road: flat
      sidewalk: flat

A source class not listed (or mapped to null) is void. The teacher's logits of the source
classes mapped to one target are merged by log-sum-exp (their probabilities add up); void
classes drop out of the teacher's distribution (the merged softmax renormalises over the
mapped classes), and pixels whose most likely source class is void are void targets. A target
class no source maps to gets logit MISSING_LOGIT (probability 0). Shipped maps live in
config/class_maps/ and are named by their file stem (`cityscapes19_to_7`, `ade20k_to_7`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

MISSING_LOGIT = -1e4  # exp() underflows to 0 in float16 and float32; finite, so KL stays finite
SHIPPED_FOLDER = ('config', 'class_maps')


class ClassMapError(ValueError):
    """A class map file is missing or malformed; the message names the file and the entry."""


@dataclass(frozen=True)
class ClassMap:
    """source_classes / target_classes: names; targets[i]: the target index of source class i,
    or -1 for void. `source` is where the map was read from."""

    source: str
    source_classes: tuple[str, ...]
    target_classes: tuple[str, ...]
    targets: tuple[int, ...]

    @property
    def void_classes(self) -> tuple[str, ...]:
        return tuple(name for name, target in zip(self.source_classes, self.targets)
                     if target < 0)

    def apply(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """logits (N, S, H, W) over the source classes -> (merged logits (N, T, H, W) over the
        target classes, void (N, H, W) bool or None when no class is void)."""
        if logits.shape[1] != len(self.source_classes):
            raise ClassMapError(f'{self.source}: the teacher returns {logits.shape[1]} classes, '
                                f'the map has {len(self.source_classes)} source_classes')
        logits = logits.float()
        targets = torch.tensor(self.targets, device=logits.device)
        merged = [torch.logsumexp(logits[:, targets == index], dim=1)
                  if bool((targets == index).any()) else
                  torch.full_like(logits[:, 0], MISSING_LOGIT)
                  for index in range(len(self.target_classes))]
        void = None
        if bool((targets < 0).any()):
            void = (targets < 0)[logits.argmax(dim=1)]
        return torch.stack(merged, dim=1), void


def shipped_class_maps() -> dict[str, Path]:
    """Shipped class maps by name: the installed share directory's, else the source tree's."""
    folders = [Path(__file__).resolve().parents[2].joinpath(*SHIPPED_FOLDER)]
    try:
        from ament_index_python.packages import get_package_share_directory
        folders.insert(0, Path(get_package_share_directory('jointdistill_ros'))
                       .joinpath(*SHIPPED_FOLDER))
    except (ImportError, LookupError, ValueError, OSError):
        pass
    maps: dict[str, Path] = {}
    for folder in reversed(folders):
        maps.update({path.stem: path for path in sorted(folder.glob('*.yaml'))})
    return maps


def resolve_class_map(name_or_path: str) -> Path:
    """A shipped map's name, or a YAML file's path."""
    shipped = shipped_class_maps()
    if name_or_path in shipped:
        return shipped[name_or_path]
    path = Path(name_or_path)
    if not path.is_file():
        raise ClassMapError(f'{name_or_path!r} is neither a shipped class map '
                            f'({", ".join(sorted(shipped)) or "none found"}) nor a file')
    return path


def load_class_map(name_or_path: str) -> ClassMap:
    """Read and check a class map (a shipped name or a YAML path)."""
    path = resolve_class_map(name_or_path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ClassMapError(f'{path}: not readable YAML ({error})'.split('\n')[0]) from error
    return parse_class_map(data, str(path))


def parse_class_map(data: object, source: str) -> ClassMap:
    """A ClassMap from the YAML mapping `data` (see the module docstring); `source` names it
    in errors."""
    if not isinstance(data, dict):
        raise ClassMapError(f'{source}: the top level must be a mapping')
    unknown = sorted(set(data) - {'source_classes', 'target_classes', 'mapping'})
    if unknown:
        raise ClassMapError(f'{source}: unknown key(s) {", ".join(map(str, unknown))} (known: '
                            'source_classes, target_classes, mapping)')
    source_classes = _names(data, 'source_classes', source)
    target_classes = _names(data, 'target_classes', source)
    mapping = data.get('mapping')
    if not isinstance(mapping, dict):
        raise ClassMapError(f'{source}: mapping must be a mapping of source class -> target '
                            'class (or null for void)')
    targets = [-1] * len(source_classes)
    for key, value in mapping.items():
        if str(key) not in source_classes:
            raise ClassMapError(f'{source}: mapping: {key!r} is not one of source_classes')
        if value is not None and str(value) not in target_classes:
            raise ClassMapError(f'{source}: mapping: {key!r} -> {value!r}, which is not one of '
                                f'target_classes ({", ".join(target_classes)}) or null')
        targets[source_classes.index(str(key))] = (
            -1 if value is None else target_classes.index(str(value)))
    return ClassMap(source, tuple(source_classes), tuple(target_classes), tuple(targets))


def _names(data: dict, key: str, source: str) -> list[str]:
    names = data.get(key)
    if not isinstance(names, list) or len(names) < 2 or \
            not all(isinstance(name, (str, int)) for name in names):
        raise ClassMapError(f'{source}: {key} must be a list of at least two class names')
    names = [str(name) for name in names]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ClassMapError(f'{source}: {key} names {", ".join(duplicates)} more than once')
    return names
