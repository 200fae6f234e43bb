"""Typed configuration: nested dataclasses loaded from YAML with strict checking.

Unknown keys, values of the wrong type and values outside a field's rule are errors that
name the file, the full key path (for example ``teachers.seg.path``), the bad value and what
is accepted (the known keys, the type, the bounds). Rules live on the fields themselves:
``steps: int = setting(1000, ge=1)``. Overrides use dotted paths: ``optim.lr=1e-3``; the
value is parsed as YAML, so ``true``, ``3``, ``[1, 2]`` and ``null`` work.
"""
from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

T = TypeVar('T')


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-3`` as a float (YAML 1.1 requires a dot)."""


_Loader.add_implicit_resolver(
    'tag:yaml.org,2002:float',
    re.compile(r'''^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$'''),
    list('-+0123456789'))


def parse_yaml(text: str):
    """YAML text to Python values (safe loading; 1e-3 reads as a float)."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader


class ConfigError(ValueError):
    """A configuration value or key is invalid; the message names the key path and source."""


@dataclass(frozen=True)
class Rule:
    """What a config field accepts beyond its type: numeric bounds (ge: >=, gt: >, le: <=)
    and `check`, a function that raises ValueError saying what is accepted. A null value
    of an optional field is always accepted."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    check: Callable[[Any], Any] | None = None

    def problem(self, value: Any) -> str | None:
        """None when `value` is accepted, else what is wrong and what is accepted."""
        if value is None:
            return None
        if self.check is not None:
            try:
                self.check(value)
            except ValueError as error:
                return str(error)
        out_of_bounds = ((self.ge is not None and value < self.ge)
                         or (self.gt is not None and value <= self.gt)
                         or (self.le is not None and value > self.le))
        return f'must be {self._bounds_text()}, got {value!r}' if out_of_bounds else None

    def _bounds_text(self) -> str:
        if self.le is not None and (self.ge is not None or self.gt is not None):
            opening = f'[{self.ge}' if self.ge is not None else f'({self.gt}'
            return f'in {opening}, {self.le}]'
        if self.le is not None:
            return f'<= {self.le}'
        return f'>= {self.ge}' if self.ge is not None else f'> {self.gt}'


def setting(default: Any = dataclasses.MISSING, *, ge: float | None = None,
            gt: float | None = None, le: float | None = None,
            check: Callable[[Any], Any] | None = None,
            default_factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field with a `Rule` that `from_dict` enforces (see `Rule`)."""
    return dataclasses.field(default=default, default_factory=default_factory,
                             metadata={'rule': Rule(ge, gt, le, check)})


def subset_of(choices: tuple[str, ...]) -> Callable[[list[str]], None]:
    """A `check` for a list field: a non-empty list whose entries are all in `choices`."""
    def check(values: list[str]) -> None:
        if not values or any(value not in choices for value in values):
            raise ValueError(f'must be a non-empty subset of {list(choices)}, got {values!r}')
    return check


def load_yaml_mapping(path: str | Path) -> dict:
    """The top-level mapping of a YAML file ({} for an empty file); ConfigError otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f'config file not found: {path}')
    try:
        data = parse_yaml(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f'{path}: not valid YAML: {error}') from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f'{path}: top level must be a mapping, got {type(data).__name__}')
    return data


def apply_overrides(mapping: dict, overrides: list[str]) -> dict:
    """Return a copy of `mapping` with each ``dotted.key=value`` override applied."""
    result = _deep_copy(mapping)
    for override in overrides:
        key, sep, raw_value = override.partition('=')
        if not sep or not key.strip():
            raise ConfigError(f'override {override!r} is not of the form key.path=value')
        try:
            value = parse_yaml(raw_value)
        except yaml.YAMLError as error:
            raise ConfigError(f'override {override!r}: value is not valid YAML: {error}') from None
        node = result
        parts = key.strip().split('.')
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f'override {override!r}: {part!r} is not a section')
            node = child
        node[parts[-1]] = value
    return result


def from_dict(cls: type[T], data: Any, source: str = '<config>', path: str = '') -> T:
    """Build dataclass `cls` from a mapping, checking keys and types recursively."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if not isinstance(data, dict):
        raise ConfigError(f'{source}: {path or "top level"} must be a mapping with keys '
                          f'{", ".join(sorted(fields))}, got {data!r}')
    unknown = sorted(set(data) - set(fields), key=str)
    if unknown:
        raise ConfigError(f'{source}: unknown key(s) '
                          + ', '.join(f'{_join(path, k)} (= {data[k]!r})' for k in unknown)
                          + f'; {path or "the top level"} accepts: {", ".join(sorted(fields))}')
    hints = typing.get_type_hints(cls)
    values = {}
    for name, value in data.items():
        key = _join(path, name)
        values[name] = _coerce(hints[name], value, source, key)
        rule = fields[name].metadata.get('rule')
        problem = rule.problem(values[name]) if rule else None
        if problem:
            raise ConfigError(f'{source}: {key}: {problem}')
    try:
        return cls(**values)
    except TypeError as error:
        raise ConfigError(f'{source}: {path or "top level"}: {error}') from None


def load_config(cls: type[T], path: str | Path, overrides: list[str] | None = None) -> T:
    """Dataclass `cls` from a YAML file with `key=value` overrides applied."""
    mapping = apply_overrides(load_yaml_mapping(path), overrides or [])
    return from_dict(cls, mapping, source=str(path))


def to_dict(config: Any) -> dict:
    """Plain dict (YAML/JSON serialisable) of a dataclass config."""
    return _plain(dataclasses.asdict(config))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _join(path: str, key: str) -> str:
    return f'{path}.{key}' if path else str(key)


def _deep_copy(mapping: dict) -> dict:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in mapping.items()}


def _type_name(tp: Any) -> str:
    return getattr(tp, '__name__', None) or str(tp).replace('typing.', '')


def _coerce(tp: Any, value: Any, source: str, path: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, source, path)
    if origin in (Union, types.UnionType):
        options = [option for option in typing.get_args(tp) if option is not type(None)]
        if value is None and len(options) < len(typing.get_args(tp)):
            return None
        if len(options) == 1:  # X | None: X's own error names the key inside a section
            return _coerce(options[0], value, source, path)
        for option in options:
            try:
                return _coerce(option, value, source, path)
            except ConfigError:
                continue
        raise ConfigError(f'{source}: {path}: expected {_type_name(tp)}, got {value!r}')
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ConfigError(f'{source}: {path}: {value!r} is not one of '
                              + ', '.join(repr(a) for a in allowed))
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f'{source}: {path}: expected a list, got {value!r}')
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f'{source}: {path}: expected {len(args)} items, '
                                  f'got {len(value)}')
            return tuple(_coerce(a, v, source, f'{path}[{i}]')
                         for i, (a, v) in enumerate(zip(args, value)))
        item_type = args[0] if args else Any
        items = [_coerce(item_type, v, source, f'{path}[{i}]') for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f'{source}: {path}: expected a mapping, got {value!r}')
        _, value_type = typing.get_args(tp) or (Any, Any)
        return {k: _coerce(value_type, v, source, _join(path, k)) for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f'{source}: {path}: expected true/false, got {value!r}')
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f'{source}: {path}: expected an integer, got {value!r}')
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f'{source}: {path}: expected a number, got {value!r}')
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f'{source}: {path}: expected a string, got {value!r}')
        return value
    raise ConfigError(f'{source}: {path}: unsupported config type {_type_name(tp)}')
