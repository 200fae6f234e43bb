"""Strict typed YAML configs."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from jointdistill_core.config import ConfigError, apply_overrides, from_dict, load_config


@dataclass
class Optim:
    lr: float = 1e-3
    schedule: Literal['cosine', 'step'] = 'cosine'


@dataclass
class Train:
    steps: int = 10
    size: tuple[int, int] = (128, 256)
    optim: Optim = field(default_factory=Optim)
    tags: list[str] = field(default_factory=list)
    teacher: str | None = None


def test_nested_values_and_defaults(tmp_path):
    path = tmp_path / 'c.yaml'
    path.write_text('steps: 5\nsize: [64, 128]\noptim:\n  lr: 1\n')
    config = load_config(Train, path)
    assert config.steps == 5 and config.size == (64, 128)
    assert config.optim.lr == 1.0 and isinstance(config.optim.lr, float)
    assert config.optim.schedule == 'cosine' and config.teacher is None


def test_unknown_key_is_named_with_its_path_and_file(tmp_path):
    path = tmp_path / 'c.yaml'
    path.write_text('optim:\n  learning_rate: 0.1\n')
    with pytest.raises(ConfigError, match=r'c\.yaml.*optim\.learning_rate'):
        load_config(Train, path)


@pytest.mark.parametrize('data, key', [
    ({'steps': 'ten'}, 'steps'), ({'steps': 1.5}, 'steps'), ({'steps': True}, 'steps'),
    ({'optim': {'schedule': 'linear'}}, 'optim.schedule'), ({'size': [1, 2, 3]}, 'size'),
    ({'optim': 3}, 'optim'), ({'tags': [1]}, r'tags\[0\]'),
])
def test_wrong_types_are_errors_naming_the_key(data, key):
    with pytest.raises(ConfigError, match=key):
        from_dict(Train, data, source='x.yaml')


def test_overrides_parse_yaml_values_and_reach_nested_keys():
    merged = apply_overrides({'optim': {'lr': 0.1}}, ['optim.lr=1e-3', 'teacher=null', 'steps=7'])
    config = from_dict(Train, merged)
    assert config.optim.lr == pytest.approx(1e-3) and config.teacher is None and config.steps == 7
    with pytest.raises(ConfigError, match='key.path=value'):
        apply_overrides({}, ['no-equals-sign'])
