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


# ---------------------------------------------------------------- rules, optional sections
from conftest import REPO_ROOT  # noqa: E402
from jointdistill_core.config import setting, subset_of  # noqa: E402
from jointdistill_core.training import load_train_config  # noqa: E402

TRAIN = REPO_ROOT / 'config' / 'train' / 'jointdistill.yaml'


@dataclass
class Part:
    path: str = ''
    count: int = setting(1, ge=1)


@dataclass
class Ruled:
    rate: float = setting(0.5, gt=0, le=1)
    frames: int | None = setting(None, ge=1)
    layers: list[str] = setting(default_factory=lambda: ['a'], check=subset_of(('a', 'b')))
    part: Part | None = None


@pytest.mark.parametrize('data, message', [
    ({'part': {'pth': 'x'}}, r"unknown key\(s\) part\.pth \(= 'x'\); part accepts: count, path"),
    ({'part': {'count': 0}}, r'part\.count: must be >= 1, got 0'),
    ({'part': {'count': 'two'}}, r"part\.count: expected an integer, got 'two'"),
    ({'part': 'x'}, r"part must be a mapping with keys count, path, got 'x'"),
    ({'rate': 0}, r'rate: must be in \(0, 1\], got 0'),
    ({'rate': 1.5}, r'rate: must be in \(0, 1\], got 1\.5'),
    ({'frames': 0}, r'frames: must be >= 1, got 0'),
    ({'layers': ['a', 'c']},
     r"layers: must be a non-empty subset of \['a', 'b'\], got \['a', 'c'\]"),
    ({'layers': []}, r'layers: must be a non-empty subset'),
    ({'speed': 3},
     r"unknown key\(s\) speed \(= 3\); the top level accepts: frames, layers, part, rate"),
])
def test_errors_name_the_key_path_the_value_and_what_is_accepted(data, message):
    with pytest.raises(ConfigError, match=r'^rules\.yaml: ' + message):
        from_dict(Ruled, data, source='rules.yaml')


def test_rules_accept_their_bounds_null_and_absent_optional_sections():
    config = from_dict(Ruled, {'rate': 1, 'frames': None, 'layers': ['b', 'a'],
                               'part': {'count': 1}}, source='rules.yaml')
    assert config.rate == 1.0 and config.frames is None and config.part == Part(count=1)
    assert from_dict(Ruled, {'part': None}).part is None
    assert from_dict(Ruled, {}) == Ruled()


def test_a_bad_key_inside_an_optional_train_section_is_named():
    with pytest.raises(ConfigError) as error:
        load_train_config(TRAIN, ['teachers.seg.pth=x'])
    message = str(error.value)
    assert "teachers.seg.pth (= 'x')" in message
    assert 'teachers.seg accepts: ' in message and ' path, ' in message
    assert message.startswith(str(TRAIN))


@pytest.mark.parametrize('override, message', [
    ('steps=0', r'steps: must be >= 1, got 0'),
    ('data.workers=-1', r'data\.workers: must be >= 0, got -1'),
    ('data.num_frames=0', r'data\.num_frames: must be >= 1, got 0'),
    ('optim.eps=0', r'optim\.eps: must be > 0, got 0\.0'),
    ('optim.adaptor_lr=-1', r'optim\.adaptor_lr: must be >= 0, got -1\.0'),
    ('schedule.min_factor=2', r'schedule\.min_factor: must be in \[0, 1\], got 2\.0'),
    ('data.size=128by256',
     r"data\.size: size must be HxW in pixels \(e\.g\. 128x256\), got '128by256'"),
    ('device=tpu', r"device: device must be 'auto', 'cpu' or 'cuda\[:N\]', got 'tpu'"),
    ('teachers.depth.size_multiple=two', r"teachers\.depth\.size_multiple: expected an integer, "
                                         r"got 'two'"),
    ('teachers.depth.input_size=big', r"teachers\.depth\.input_size: size must be HxW in pixels"),
])
def test_train_config_errors_name_key_value_and_rule(override, message):
    with pytest.raises(ConfigError, match=message):
        load_train_config(TRAIN, [override])


@pytest.mark.parametrize('override, message', [
    ('method.params.beta=0.9', r'method\.params\.beta: must be in \(0, 0\.5\], got 0\.9'),
    ('method.params.topk=0', r'method\.params\.topk: must be >= 1, got 0'),
    ('method.params.trajectory_layers=[enc, head]', r'method\.params\.trajectory_layers: '
                                                    r'must be a non-empty subset of'),
    ('method.params.fusoin=false', r'unknown key\(s\) method\.params\.fusoin \(= False\); '
                                   r'method\.params accepts: .*fusion'),
    ('method.name=kd', r"method\.name: unknown method 'kd'"),
])
def test_method_parameters_are_checked_when_the_config_loads(override, message):
    """Before any dataset, teacher or network is built: load_train_config alone refuses."""
    with pytest.raises(ConfigError, match=message):
        load_train_config(TRAIN, [override])
