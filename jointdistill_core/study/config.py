"""The typed configuration of `jointdistill study --config FILE` (docs/study.md).

A study trains two single-task teachers once, then every variant (a training config plus
overrides) for every seed under one budget, and evaluates all of them on one test split.
Loaded strictly: unknown keys and wrong types are errors naming the key and the file.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from jointdistill_core.config import (
    ConfigError,
    apply_overrides,
    from_dict,
    load_yaml_mapping,
    setting,
)
from jointdistill_core.geometry import parse_size
from jointdistill_core.tasks import TASKS


@dataclass
class StudyDataConfig:
    """What every run trains, validates and is tested on. `spec` as for the dataset registry
    (synthetic, synthetic:DIR, nyuv2:DIR, cityscapes:DIR); `size` 'HxW' pixels (multiples of
    32) or null for the dataset's own size; *_frames: the first N samples of the split, null =
    all (on-the-fly synthetic: the registry's default count)."""
    spec: str = 'synthetic'
    size: str | None = setting('128x256', check=lambda text: parse_size(text, multiple=32))
    train_split: str = 'train'
    val_split: str = 'val'
    test_split: str = 'test'
    train_frames: int | None = setting(None, ge=1)
    val_frames: int | None = setting(None, ge=1)
    test_frames: int | None = setting(None, ge=1)

    def size_pixels(self) -> tuple[int, int] | None:
        """`size` as (height, width) pixels; None for the dataset's own size."""
        return None if self.size is None else parse_size(self.size, multiple=32)


@dataclass
class StudyTeacherConfig:
    """A single-task teacher: trained once from `config` (a training config with task seg or
    depth) with `steps` and the overrides in `set`, or taken from `checkpoint` (a checkpoint
    of this project, X / X.safetensors / X.json) without training."""
    config: str = ''
    checkpoint: str | None = None
    steps: int = setting(1000, ge=1)
    batch_size: int = setting(8, ge=1)
    val_every: int = setting(200, ge=1)
    seed: int = 0
    set: list[str] = field(default_factory=list)


@dataclass
class StudyTeachersConfig:
    """The two single-task teachers of the study."""
    seg: StudyTeacherConfig = field(default_factory=StudyTeacherConfig)
    depth: StudyTeacherConfig = field(default_factory=StudyTeacherConfig)


@dataclass
class StudentBudget:
    """The budget every variant gets: optimizer steps, global batch size, validation period,
    plus overrides (`set`, 'key=value' of the training config) applied to every student run
    before the variant's own."""
    steps: int = setting(1000, ge=1)
    batch_size: int = setting(8, ge=1)
    val_every: int = setting(200, ge=1)
    set: list[str] = field(default_factory=list)


@dataclass
class VariantConfig:
    """One row of the results: `name` (folder and row name), `config` (training config file),
    `set` ('key=value' overrides, e.g. method.params.fusion=false)."""
    name: str = ''
    config: str = ''
    set: list[str] = field(default_factory=list)


@dataclass
class EvaluationConfig:
    """checkpoint: which checkpoint of each run is tested ('best' = best validation score;
    use 'last' when the validation split is the test split, as for mtan data).
    latency_repeats: Predictor calls per model for the median latency (ms).
    qualitative_frames: test frames in the qualitative figure.
    trajectory_variant: the variant whose teacher-weight trajectories are plotted."""
    checkpoint: Literal['best', 'last'] = 'best'
    batch_size: int = setting(8, ge=1)
    latency_repeats: int = setting(20, ge=1)
    qualitative_frames: int = setting(3, ge=1)
    trajectory_variant: str = 'jointdistill'


@dataclass
class StudyConfig:
    """`out`: folder of all runs (OUT/teachers/<task>/, OUT/runs/<variant>/seed<k>/).
    `results_dir` / `results_name`: RESULTS_DIR/RESULTS_NAME.{md,json} and
    RESULTS_DIR/figures/RESULTS_NAME_*.png. `notes`: a Markdown file (path relative to the
    working directory) shown on the page under "Investigation notes", after the finding:
    what was tried beyond the table (tuning runs, their commands and numbers). `jobs`: runs
    trained at the same time, each in its own process with one torch thread (the teachers
    side by side, then the students); on a CPU one per core, 1 = one run at a time in this
    process."""
    name: str = 'study'
    data: StudyDataConfig = field(default_factory=StudyDataConfig)
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    teachers: StudyTeachersConfig = field(default_factory=StudyTeachersConfig)
    student: StudentBudget = field(default_factory=StudentBudget)
    variants: list[VariantConfig] = field(default_factory=list)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    out: str = 'runs/study'
    results_dir: str = 'docs'
    results_name: str = 'results'
    notes: str | None = None
    jobs: int = setting(1, ge=1)


def validate(config: StudyConfig, source: str) -> StudyConfig:
    """Checks across fields and list entries (per-field rules ran while loading); errors
    name the key and the file."""
    def fail(key: str, message: str):
        raise ConfigError(f'{source}: {key}: {message}')

    if not config.seeds:
        fail('seeds', 'needs at least one seed')
    if len(set(config.seeds)) != len(config.seeds):
        fail('seeds', f'repeats a seed: {config.seeds}')
    if not config.variants:
        fail('variants', 'needs at least one variant')
    if config.notes is not None and not Path(config.notes).is_file():
        fail('notes', f'no such file: {config.notes}')
    names = [variant.name for variant in config.variants]
    for index, variant in enumerate(config.variants):
        if not variant.name or not variant.name.replace('_', '').replace('-', '').isalnum():
            fail(f'variants[{index}].name', f'must be a non-empty word (letters, digits, _ -), '
                                            f'got {variant.name!r}')
        if not variant.config:
            fail(f'variants[{index}].config', 'is empty')
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        fail('variants', f'names must be unique, repeated: {", ".join(duplicates)}')
    for task in TASKS:
        teacher = getattr(config.teachers, task)
        if not teacher.checkpoint and not teacher.config:
            fail(f'teachers.{task}', 'give a training `config` or a `checkpoint`')
    if not config.results_name or '/' in config.results_name:
        fail('results_name', f'must be a file stem without "/", got {config.results_name!r}')
    return config


def load_study_config(path: str | Path, overrides: list[str] | None = None) -> StudyConfig:
    """Read FILE, apply 'key=value' overrides, check types and cross-field rules."""
    mapping = apply_overrides(load_yaml_mapping(path), overrides or [])
    return validate(from_dict(StudyConfig, mapping, source=str(path)), str(path))


def select_variants(config: StudyConfig, only: list[str] | None) -> list[VariantConfig]:
    """The variants named in `only` (all when None), in config order; unknown names raise."""
    if not only:
        return list(config.variants)
    known = [variant.name for variant in config.variants]
    unknown = [name for name in only if name not in known]
    if unknown:
        raise ConfigError(f'--only: unknown variant(s) {", ".join(unknown)} '
                          f'(known: {", ".join(known)})')
    return [variant for variant in config.variants if variant.name in only]
