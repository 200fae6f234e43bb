"""The typed configuration of `jointdistill study --config FILE` (docs/study.md).

A study trains two single-task teachers once (or takes given checkpoints), optionally tunes
one variant's knobs on validation data, then trains every variant for every seed under one
budget and scores all of them on a list of test sets. Loaded strictly: unknown keys and
wrong types are errors naming the key and the file.

Data folders outside the repository (real frames) are named in `paths` and referred to in
any data spec of the config as `{name}`; `{synthetic}` stands for `data.synthetic`.
"""
from __future__ import annotations

import dataclasses
import re
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

# The metrics a test set can put into delta_m, per task (jointdistill_core.metrics).
TASK_METRICS = {'seg': ('miou', 'pixel_acc'), 'depth': ('abs_err', 'abs_rel', 'rmse', 'delta1')}
PLACEHOLDER = re.compile(r'\{(\w+)\}')
SYNTHETIC_PLACEHOLDER = 'synthetic'


@dataclass
class StudyDataConfig:
    """What every run trains and validates on. `spec` as for the dataset registry
    (synthetic, synthetic:DIR, nyuv2:DIR, cityscapes:DIR, camvid:DIR, folder:DIR, mixed
    `A@w,B@w`); `val_spec`: validation data when it differs from `spec` (null: `spec` at
    `val_split`); `size` 'HxW' pixels (multiples of 32) or null for the dataset's own size;
    *_frames: the first N samples of the split, null = all (on-the-fly synthetic: the
    registry's default count; mixed specs take all frames of each part). `synthetic`: what
    `{synthetic}` in a spec stands for: `synthetic` (rendered on the fly) or `synthetic:DIR`
    (frames written by `jointdistill data synth`, much faster on a CPU)."""
    spec: str = 'synthetic'
    val_spec: str | None = None
    size: str | None = setting('128x256', check=lambda text: parse_size(text, multiple=32))
    train_split: str = 'train'
    val_split: str = 'val'
    train_frames: int | None = setting(None, ge=1)
    val_frames: int | None = setting(None, ge=1)
    synthetic: str = 'synthetic'

    def size_pixels(self) -> tuple[int, int] | None:
        """`size` as (height, width) pixels; None for the dataset's own size."""
        return None if self.size is None else parse_size(self.size, multiple=32)


@dataclass
class TestSetConfig:
    """One test set every run is scored on. `name`: a word, the key of its metrics
    (`name/metric`); `title`: how the page names it (default: name); `spec`: dataset spec
    (null: the study's `data.spec`); `split`: split name (folder datasets have none and read
    every frame); `frames`: the first N frames (null: all); `protocol`: `network` (batches at
    the study's size, the literature's protocol) or `predictor` (every frame at its own
    resolution through the Predictor with its K, as the ROS node; adds the constant-depth
    reference); `tasks`: what is scored (seg, depth); `metrics`: which of them enter delta_m
    (seg: miou, pixel_acc; depth: abs_err, abs_rel, rmse, delta1), [] = shown only."""
    name: str = ''
    title: str | None = None
    spec: str | None = None
    split: str = 'test'
    frames: int | None = setting(None, ge=1)
    protocol: Literal['network', 'predictor'] = 'network'
    tasks: list[str] = field(default_factory=lambda: list(TASKS))
    metrics: list[str] = field(default_factory=list)

    def label(self) -> str:
        """How the page names this test set."""
        return self.title or self.name

    def metric_keys(self) -> list[str]:
        """The keys this test set contributes to delta_m: 'name/metric'."""
        return [f'{self.name}/{metric}' for metric in self.metrics]


@dataclass
class StudyTeacherConfig:
    """A single-task teacher: trained once from `config` (a training config with task seg or
    depth) with `steps` and the overrides in `set`, or taken from `checkpoint` (a checkpoint
    of this project, X / X.safetensors / X.json) without training. `spec` / `val_spec`:
    the teacher's own training / validation data (null: the study's `data.spec` /
    `data.val_spec`), e.g. a depth teacher trained only where depth labels exist."""
    config: str = ''
    checkpoint: str | None = None
    spec: str | None = None
    val_spec: str | None = None
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
class TuningCandidate:
    """One setting tried: `name` (folder and row name) and `set`, the overrides applied after
    the tuned variant's own (only the knobs searched, e.g. method.params.alpha=0.5)."""
    name: str = ''
    set: list[str] = field(default_factory=list)


@dataclass
class TuningConfig:
    """A search before the full run: every candidate trains as `variant` plus its overrides
    for each of `seeds`, is scored on the validation sets `tests` (delta_m against the
    teachers over their `metrics`, lower is better), and the best candidate's overrides are
    applied to the variants in `apply_to` (after their own). The first candidate wins ties,
    so list the current defaults first."""
    variant: str = 'jointdistill'
    apply_to: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=lambda: [0])
    tests: list[TestSetConfig] = field(default_factory=list)
    candidates: list[TuningCandidate] = field(default_factory=list)


@dataclass
class EvaluationConfig:
    """checkpoint: which checkpoint of each run is tested ('best' = best validation score;
    use 'last' when the validation split is a test split, as for mtan data).
    batch_size: frames per forward pass of the network protocol.
    latency_repeats: Predictor calls per model for the median latency (ms).
    qualitative_frames: frames of each test set in the qualitative figure.
    qualitative_tests: names of the test sets drawn in that figure (null = all); leave out
    data whose licence forbids publishing pictures of its frames.
    trajectory_variant: the variant whose teacher-weight trajectories are plotted."""
    checkpoint: Literal['best', 'last'] = 'best'
    batch_size: int = setting(8, ge=1)
    latency_repeats: int = setting(20, ge=1)
    qualitative_frames: int = setting(3, ge=1)
    qualitative_tests: list[str] | None = None
    trajectory_variant: str = 'jointdistill'


@dataclass
class StudyConfig:
    """`out`: folder of all runs (OUT/teachers/<task>/, OUT/runs/<variant>/seed<k>/,
    OUT/tuning/<candidate>/seed<k>/). `results_dir` / `results_name`:
    RESULTS_DIR/RESULTS_NAME.{md,json} and RESULTS_DIR/figures/RESULTS_NAME_*.png. `notes`: a
    Markdown file (path relative to the working directory) shown on the page under
    "Investigation notes", after the finding. `jobs`: runs trained at the same time, each
    in its own process with one torch thread (the teachers side by side, then the tuning
    candidates, then the students); on a CPU one per core, 1 = one run at a time in this
    process. `paths`: data folders outside the repository by name, used as `{name}` in the
    data specs (null: must be given, `--real-data DIR` or `--set paths.NAME=DIR`). `amp`,
    `channels_last`: set for every run (teachers, tuning, students); null = each training
    config's own."""
    name: str = 'study'
    data: StudyDataConfig = field(default_factory=StudyDataConfig)
    paths: dict[str, str | None] = field(default_factory=dict)
    tests: list[TestSetConfig] = field(default_factory=list)
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    teachers: StudyTeachersConfig = field(default_factory=StudyTeachersConfig)
    student: StudentBudget = field(default_factory=StudentBudget)
    variants: list[VariantConfig] = field(default_factory=list)
    tuning: TuningConfig | None = None
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    out: str = 'runs/study'
    results_dir: str = 'docs'
    results_name: str = 'results'
    notes: str | None = None
    jobs: int = setting(1, ge=1)
    amp: bool | None = None
    channels_last: bool | None = None

    def delta_m_keys(self) -> list[str]:
        """The metrics of delta_m, 'test/metric', in the order of the test sets."""
        return [key for test in self.tests for key in test.metric_keys()]

    def tuning_keys(self) -> list[str]:
        """The metrics of the tuning score (delta_m over the validation sets)."""
        return [key for test in self.tuning.tests for key in test.metric_keys()] \
            if self.tuning else []

    def test_set(self, name: str) -> TestSetConfig:
        """The test set (or tuning validation set) called `name`."""
        tuning_tests = self.tuning.tests if self.tuning else []
        return next(test for test in [*self.tests, *tuning_tests] if test.name == name)


def metric_task(key: str) -> str:
    """'camvid/miou' -> 'seg'; 'outdoor/delta1' -> 'depth'."""
    metric = key.rpartition('/')[2]
    return next(task for task, names in TASK_METRICS.items() if metric in names)


def _is_word(name: str) -> bool:
    return bool(name) and name.replace('_', '').replace('-', '').isalnum()


def _check_tests(tests: list[TestSetConfig], key: str, fail) -> None:
    for index, test in enumerate(tests):
        where = f'{key}[{index}]'
        if not _is_word(test.name):
            fail(f'{where}.name', f'must be a non-empty word (letters, digits, _ -), got '
                                  f'{test.name!r}')
        if not test.tasks or any(task not in TASKS for task in test.tasks) \
                or len(set(test.tasks)) != len(test.tasks):
            fail(f'{where}.tasks', f'must be a non-empty subset of {list(TASKS)}, got '
                                   f'{test.tasks!r}')
        allowed = [metric for task in test.tasks for metric in TASK_METRICS[task]]
        wrong = [metric for metric in test.metrics if metric not in allowed]
        if wrong or len(set(test.metrics)) != len(test.metrics):
            fail(f'{where}.metrics', f'must be distinct metrics of its tasks ({", ".join(allowed)})'
                                     f', got {test.metrics!r}')


def validate(config: StudyConfig, source: str) -> StudyConfig:
    """Checks across fields and list entries (per-field rules ran while loading); errors
    name the key and the file."""
    def fail(key: str, message: str):
        raise ConfigError(f'{source}: {key}: {message}')

    def unique(key: str, names: list[str]) -> None:
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            fail(key, f'names must be unique, repeated: {", ".join(duplicates)}')

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
        if not _is_word(variant.name):
            fail(f'variants[{index}].name', f'must be a non-empty word (letters, digits, _ -), '
                                            f'got {variant.name!r}')
        if not variant.config:
            fail(f'variants[{index}].config', 'is empty')
    unique('variants', names)
    if not config.tests:
        fail('tests', 'needs at least one test set')
    _check_tests(config.tests, 'tests', fail)
    if not config.delta_m_keys():
        fail('tests', 'no test set names `metrics` for delta_m')
    shown = config.evaluation.qualitative_tests
    if shown is not None:
        unknown = sorted(set(shown) - {test.name for test in config.tests})
        if not shown or unknown:
            fail('evaluation.qualitative_tests', f'names no test set of `tests`: '
                                                 f'{", ".join(unknown) or "empty list"}')
    if config.tuning is not None:
        _validate_tuning(config.tuning, names, fail)
    unique('tests', [test.name for test in config.tests]
           + [test.name for test in (config.tuning.tests if config.tuning else [])])
    for task in TASKS:
        teacher = getattr(config.teachers, task)
        if not teacher.checkpoint and not teacher.config:
            fail(f'teachers.{task}', 'give a training `config` or a `checkpoint`')
    if not config.results_name or '/' in config.results_name:
        fail('results_name', f'must be a file stem without "/", got {config.results_name!r}')
    if SYNTHETIC_PLACEHOLDER in config.paths:
        fail(f'paths.{SYNTHETIC_PLACEHOLDER}', 'is reserved: {synthetic} stands for '
                                               'data.synthetic')
    return config


def _validate_tuning(tuning: TuningConfig, variants: list[str], fail) -> None:
    if tuning.variant not in variants:
        fail('tuning.variant', f'{tuning.variant!r} is not a variant ({", ".join(variants)})')
    unknown = [name for name in tuning.apply_to if name not in variants]
    if unknown:
        fail('tuning.apply_to', f'unknown variant(s) {", ".join(unknown)}')
    if not tuning.seeds:
        fail('tuning.seeds', 'needs at least one seed')
    if not tuning.candidates:
        fail('tuning.candidates', 'needs at least one candidate')
    candidate_names = [candidate.name for candidate in tuning.candidates]
    for index, name in enumerate(candidate_names):
        if not _is_word(name):
            fail(f'tuning.candidates[{index}].name', f'must be a non-empty word, got {name!r}')
    if len(set(candidate_names)) != len(candidate_names):
        fail('tuning.candidates', 'names must be unique')
    if not tuning.tests:
        fail('tuning.tests', 'needs at least one validation set')
    _check_tests(tuning.tests, 'tuning.tests', fail)
    if not any(test.metrics for test in tuning.tests):
        fail('tuning.tests', 'no validation set names `metrics` for the tuning score')


def _resolve_spec(spec: str, key: str, config: StudyConfig, source: str) -> str:
    """`spec` with every {name} replaced: a folder of `paths` (which must be set and exist)
    or, for {synthetic}, data.synthetic."""
    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name == SYNTHETIC_PLACEHOLDER:
            return config.data.synthetic
        if name not in config.paths:
            raise ConfigError(f'{source}: {key}: {{{name}}} is not a key of paths (known: '
                              f'{", ".join(sorted(config.paths)) or "none"})')
        folder = config.paths[name]
        if folder is None:
            raise ConfigError(f'{source}: paths.{name} is not set ({key} needs it): give '
                              f'--real-data DIR (a folder holding {name}/) or '
                              f'--set paths.{name}=DIR')
        if not Path(folder).is_dir():
            raise ConfigError(f'{source}: paths.{name}: no such folder: {folder} ({key} needs '
                              f'it)')
        return folder
    return PLACEHOLDER.sub(replace, spec)


def resolve_specs(config: StudyConfig, source: str) -> StudyConfig:
    """The config with every data spec's placeholders replaced (see `_resolve_spec`)."""
    def spec(value: str | None, key: str) -> str | None:
        return None if value is None else _resolve_spec(value, key, config, source)

    def tests(entries: list[TestSetConfig], key: str) -> list[TestSetConfig]:
        return [dataclasses.replace(test, spec=spec(test.spec, f'{key}[{index}].spec'))
                for index, test in enumerate(entries)]

    data = dataclasses.replace(config.data, spec=spec(config.data.spec, 'data.spec'),
                               val_spec=spec(config.data.val_spec, 'data.val_spec'))
    teachers = StudyTeachersConfig(**{
        task: dataclasses.replace(getattr(config.teachers, task),
                                  spec=spec(getattr(config.teachers, task).spec,
                                            f'teachers.{task}.spec'),
                                  val_spec=spec(getattr(config.teachers, task).val_spec,
                                                f'teachers.{task}.val_spec'))
        for task in TASKS})
    tuning = config.tuning and dataclasses.replace(
        config.tuning, tests=tests(config.tuning.tests, 'tuning.tests'))
    return dataclasses.replace(config, data=data, teachers=teachers, tuning=tuning,
                               tests=tests(config.tests, 'tests'))


def load_study_config(path: str | Path, overrides: list[str] | None = None,
                      real_data: str | Path | None = None) -> StudyConfig:
    """Read FILE, apply 'key=value' overrides, check types and cross-field rules, and
    resolve the data specs. real_data: a folder whose subfolder NAME becomes every
    `paths.NAME` still null (--real-data DIR)."""
    mapping = apply_overrides(load_yaml_mapping(path), overrides or [])
    if real_data is not None:
        paths = mapping.get('paths')
        if isinstance(paths, dict):
            mapping['paths'] = {name: str(Path(real_data) / name) if folder is None else folder
                                for name, folder in paths.items()}
    config = validate(from_dict(StudyConfig, mapping, source=str(path)), str(path))
    return resolve_specs(config, str(path))


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
