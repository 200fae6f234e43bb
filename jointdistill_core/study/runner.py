"""Runs a study: teachers once, then the tuning candidates (if any), then every variant x
seed, each scored on the study's test sets.

Layout under OUT (the study's `out`):
  teachers/<seg|depth>/       a training run of the teacher, plus done.json (its test metrics)
  tuning/<candidate>/seed<k>/ a tuning run, plus done.json (its validation-set metrics)
  runs/<variant>/seed<k>/     a training run of the student, plus done.json (its test metrics)

A run folder with a valid done.json is finished and skipped; when the config names test sets
its done.json lacks, only those are scored (and added). A run folder with a
resume.safetensors but no done.json was interrupted and continues with the trainer's resume
(exactly, same step and RNG state); one whose last checkpoint already reached the step
budget is only evaluated.
"""
from __future__ import annotations

import json
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from jointdistill_core.config import ConfigError
from jointdistill_core.study.config import (
    StudyConfig,
    TestSetConfig,
    TuningCandidate,
    VariantConfig,
)
from jointdistill_core.tasks import TASKS

DONE_NAME = 'done.json'
DONE_FORMAT = 'jointdistill-study-run'
TEACHER_OUTPUTS = {'seg': ('seg_logits',), 'depth': ('depth',)}
STUDENT_OUTPUTS = ('seg_logits', 'depth')
OUTPUT_TASK = {'seg_logits': 'seg', 'depth': 'depth'}
SEG_RESULT_KEYS = ('miou', 'pixel_acc')
DEPTH_RESULT_KEYS = ('abs_err', 'abs_rel', 'rmse', 'delta1', 'delta2', 'delta3',
                     'constant_abs_rel', 'constant_delta1')


class StudyError(RuntimeError):
    """A run of the study cannot be trained or evaluated; the message names the run."""


@dataclass
class RunSpec:
    """One training run: `train_config` + `overrides` is exactly `jointdistill train`.
    group: 'teachers', 'tuning' or 'runs'; name: the task, candidate or variant; tests: the
    test sets its done.json holds metrics of; outputs: the network outputs scored."""
    label: str
    train_config: str
    overrides: list[str]
    out_dir: Path
    outputs: tuple[str, ...]
    tests: list[TestSetConfig]
    group: str
    name: str
    seed: int | None = None

    def command(self) -> str:
        """The one shell command that trains this run."""
        parts = ['jointdistill', 'train', '--config', self.train_config]
        for override in self.overrides:
            parts += ['--set', override]
        return ' '.join(shlex.quote(part) for part in parts)


def _data_overrides(config: StudyConfig, spec: str, val_spec: str | None) -> list[str]:
    data = config.data
    overrides = [f'data.spec={spec}']
    if val_spec is not None:
        overrides.append(f'data.val_spec={val_spec}')
    overrides += [f'data.train_split={data.train_split}', f'data.val_split={data.val_split}',
                  f'data.size={data.size if data.size is not None else "null"}']
    for key, value in (('num_frames', data.train_frames), ('val_frames', data.val_frames)):
        overrides.append(f'data.{key}={value if value is not None else "null"}')
    for key in ('amp', 'channels_last'):
        if getattr(config, key) is not None:
            overrides.append(f'{key}={str(getattr(config, key)).lower()}')
    return overrides


def teacher_checkpoint(config: StudyConfig, task: str) -> str:
    """The checkpoint path of the `task` teacher: the given one or the study's own."""
    given = getattr(config.teachers, task).checkpoint
    return given or str(Path(config.out) / 'teachers' / task / 'best')


def teacher_tests(config: StudyConfig, task: str) -> list[TestSetConfig]:
    """The test and validation sets a teacher is scored on: those that score its task."""
    tuning_tests = config.tuning.tests if config.tuning else []
    return [test for test in [*config.tests, *tuning_tests] if task in test.tasks]


def teacher_run(config: StudyConfig, task: str) -> RunSpec:
    """The training run of the `task` teacher (seg or depth), on its own data if it has."""
    teacher = getattr(config.teachers, task)
    out_dir = Path(config.out) / 'teachers' / task
    data = _data_overrides(config, teacher.spec or config.data.spec,
                           teacher.val_spec or config.data.val_spec)
    overrides = [f'seed={teacher.seed}', f'steps={teacher.steps}',
                 f'val_every={teacher.val_every}', f'data.batch_size={teacher.batch_size}',
                 *data, *teacher.set, f'out={out_dir}']
    return RunSpec(f'teacher {task}', teacher.config, overrides, out_dir, TEACHER_OUTPUTS[task],
                   teacher_tests(config, task), 'teachers', task)


def _student_spec(config: StudyConfig, label: str, train_config: str, sets: list[str],
                  seed: int, out_dir: Path, tests: list[TestSetConfig], group: str,
                  name: str) -> RunSpec:
    """A multi-task run with the study's budget and data, and the teachers its method needs."""
    from jointdistill_core.distill import METHODS
    from jointdistill_core.training.config import load_train_config
    budget = config.student
    overrides = [f'seed={seed}', f'steps={budget.steps}', f'val_every={budget.val_every}',
                 f'data.batch_size={budget.batch_size}',
                 *_data_overrides(config, config.data.spec, config.data.val_spec),
                 *budget.set, *sets]
    method_name = load_train_config(train_config, overrides).method.name
    needed = getattr(METHODS.get(method_name), 'teachers_needed', ())
    overrides += [f'teachers.{task}.path={teacher_checkpoint(config, task)}' for task in needed]
    overrides.append(f'out={out_dir}')
    return RunSpec(label, train_config, overrides, out_dir, STUDENT_OUTPUTS, tests, group, name,
                   seed)


def student_run(config: StudyConfig, variant: VariantConfig, seed: int,
                tuned: list[str] | None = None) -> RunSpec:
    """The training run of one variant and seed; `tuned`: the selected tuning candidate's
    overrides, applied after the variant's own (variants in tuning.apply_to)."""
    return _student_spec(config, f'{variant.name} seed{seed}', variant.config,
                         [*variant.set, *(tuned or [])], seed,
                         Path(config.out) / 'runs' / variant.name / f'seed{seed}', config.tests,
                         'runs', variant.name)


def tuning_run(config: StudyConfig, candidate: TuningCandidate, seed: int) -> RunSpec:
    """The training run of one tuning candidate: the tuned variant plus its overrides."""
    variant = next(v for v in config.variants if v.name == config.tuning.variant)
    return _student_spec(config, f'tuning {candidate.name} seed{seed}', variant.config,
                         [*variant.set, *candidate.set], seed,
                         Path(config.out) / 'tuning' / candidate.name / f'seed{seed}',
                         config.tuning.tests, 'tuning', candidate.name)


def read_done(out_dir: Path) -> dict | None:
    """The done.json record of a finished run, or None (absent or not a study record).
    Records of the single-test-split studies ('test': metrics) read as the test set 'test'."""
    path = Path(out_dir) / DONE_NAME
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(record, dict) or record.get('format') != DONE_FORMAT:
        return None
    if 'tests' not in record and isinstance(record.get('test'), dict):
        record['tests'] = {'test': record.pop('test')}
    return record


def _reached_budget(out_dir: Path, steps: int) -> bool:
    from jointdistill_core.checkpoint import CheckpointError, read_checkpoint_config
    try:
        saved = read_checkpoint_config(out_dir / 'last')
    except CheckpointError:
        return False
    return int(saved.get('extra', {}).get('step', 0)) >= steps


def load_test_set(config: StudyConfig, test: TestSetConfig, num_classes: int | None = None):
    """(dataset, num_classes) of a test set: at the study's size for the network protocol,
    at each frame's own size for the predictor protocol."""
    from jointdistill_core.data.registry import build_dataset
    spec = test.spec or config.data.spec
    size = config.data.size_pixels() if test.protocol == 'network' else None
    try:
        return build_dataset(spec, test.split, size=size, num_frames=test.frames,
                             num_classes=num_classes)
    except (ValueError, OSError) as error:
        raise ConfigError(f'test set {test.name!r} ({spec}, split {test.split!r}): '
                          f'{error}') from None


def _result_keys(tasks: list[str]) -> tuple[str, ...]:
    return (SEG_RESULT_KEYS if 'seg' in tasks else ()) + \
        (DEPTH_RESULT_KEYS if 'depth' in tasks else ())


def evaluate_checkpoint(path: str | Path, config: StudyConfig, tests: list[TestSetConfig],
                        outputs: tuple[str, ...], device: torch.device) -> dict[str, dict]:
    """{test name: metrics} of the checkpoint at `path` (fractions; abs_err and rmse in m;
    predictor-protocol depth sets add constant_abs_rel and constant_delta1, the reference
    of one constant depth per frame)."""
    from jointdistill_core.checkpoint import load_checkpoint
    from jointdistill_core.inference import Predictor
    from jointdistill_core.training.evaluate import evaluate_model, evaluate_predictor
    model, saved = load_checkpoint(path, device)
    num_classes = saved.get('extra', {}).get('num_classes')
    results = {}
    for test in tests:
        scored = tuple(output for output in outputs if OUTPUT_TASK[output] in test.tasks)
        dataset, classes = load_test_set(config, test, num_classes)
        if test.protocol == 'network':
            metrics = evaluate_model(model, dataset, classes, device,
                                     batch_size=config.evaluation.batch_size, tasks=scored)
        else:
            predictor = Predictor.from_model(model, tuple(saved['input_size']),
                                             device=str(device), precision='fp32')
            metrics = evaluate_predictor(predictor, dataset, classes)
        keys = _result_keys([OUTPUT_TASK[output] for output in scored])
        results[test.name] = {key: value for key, value in metrics.items() if key in keys}
    return results


def _write_done(out_dir: Path, record: dict) -> None:
    from jointdistill_core.checkpoint import atomic_write_bytes
    atomic_write_bytes(out_dir / DONE_NAME, (json.dumps(record, indent=2) + '\n').encode())


def execute_run(run: RunSpec, config: StudyConfig, device: torch.device,
                progress: bool) -> tuple[dict, str]:
    """Train (or resume) and test one run; write its done.json. Returns (record, state):
    state 'trained', 'skipped' (finished earlier) or 'tested' (finished earlier, scored now
    on test sets its done.json lacked)."""
    from jointdistill_core.training import TrainingError, load_train_config, train
    finished = read_done(run.out_dir)
    if finished is not None:
        missing = [test for test in run.tests if test.name not in finished['tests']]
        if not missing:
            return finished, 'skipped'
        started = time.perf_counter()
        finished['tests'].update(evaluate_checkpoint(finished['checkpoint'], config, missing,
                                                     run.outputs, device))
        finished['test_wall_time_s'] = round(finished.get('test_wall_time_s', 0.0)
                                             + time.perf_counter() - started, 1)
        _write_done(run.out_dir, finished)
        return finished, 'tested'
    train_config = load_train_config(run.train_config, run.overrides)
    resumable = (run.out_dir / 'resume.safetensors').is_file()
    wall_time = 0.0
    if not (resumable and _reached_budget(run.out_dir, train_config.steps)):
        try:
            result = train(train_config, resume=resumable, progress=progress)
        except (ConfigError, TrainingError) as error:
            raise StudyError(f'{run.label} ({run.out_dir}): {error}') from error
        wall_time = result.wall_time_s
    checkpoint = run.out_dir / config.evaluation.checkpoint
    started = time.perf_counter()
    tests = evaluate_checkpoint(checkpoint, config, run.tests, run.outputs, device)
    record = {
        'format': DONE_FORMAT, 'label': run.label, 'group': run.group, 'name': run.name,
        'seed': run.seed,
        'method': train_config.method.name, 'steps': train_config.steps,
        'batch_size': train_config.data.batch_size, 'resumed': resumable,
        'train_wall_time_s': round(wall_time, 1), 'checkpoint': str(checkpoint),
        'command': run.command(), 'tests': tests,
        'test_wall_time_s': round(time.perf_counter() - started, 1),
    }
    _write_done(run.out_dir, record)
    return record, 'trained'


def _given_teacher_record(config: StudyConfig, task: str, device: torch.device) -> dict:
    path = teacher_checkpoint(config, task)
    try:
        tests = evaluate_checkpoint(path, config, teacher_tests(config, task),
                                    TEACHER_OUTPUTS[task], device)
    except (ValueError, OSError) as error:
        raise StudyError(f'teachers.{task}.checkpoint: {error}') from error
    return {'format': DONE_FORMAT, 'label': f'teacher {task}', 'checkpoint': path,
            'command': None, 'tests': tests}


def _print_now(line: str) -> None:
    print(line, flush=True)  # one line per finished run, also when stdout is a file


class _Progress:
    """Counts finished runs, prints one line per run, files each record by group."""

    def __init__(self, total: int, progress: bool, log) -> None:
        self.total, self.completed, self.started = total, 0, time.perf_counter()
        self.log = log
        self.bar = tqdm(total=total, desc='study', unit='run', disable=not progress,
                        dynamic_ncols=True, position=0)
        self.write = self.bar.write if progress else log
        self.results: dict[str, dict] = {'teachers': {}, 'tuning': {}, 'runs': {}}
        self.trained = 0

    def finished(self, run: RunSpec, record: dict, state: str, elapsed: float) -> None:
        self.completed += 1
        self.trained += state == 'trained'
        text = {'skipped': 'finished earlier, skipped',
                'tested': f'finished earlier, scored on new test sets in {elapsed:.0f} s'
                }.get(state, f'{elapsed:.0f} s')
        self.write(f'[{self.completed}/{self.total}] {run.label}: {text} (study elapsed '
                   f'{time.perf_counter() - self.started:.0f} s)')
        if run.group == 'teachers':
            self.results['teachers'][run.name] = record
        else:
            self.results[run.group].setdefault(run.name, {})[run.seed] = record
        self.bar.update(1)


def run_study(config: StudyConfig, variants: list[VariantConfig], seeds: list[int],
              progress: bool = True, log=_print_now) -> dict:
    """Train and test the teachers, the tuning candidates (when a selected variant is tuned)
    and every variant x seed, skipping finished runs, one at a time in this process or
    `config.jobs` at a time in worker processes.

    Returns {'teachers': {task: record}, 'tuning': {candidate: {seed: record}},
    'runs': {variant: {seed: record}}, 'device', 'wall_time_s', 'runs_trained'} where a
    record is the run's done.json content. `log` receives one line per run.
    """
    from jointdistill_core.device import resolve_device
    from jointdistill_core.study.tuning import selected_candidate
    device = resolve_device('auto')
    teacher_tasks = [task for task in TASKS if not getattr(config.teachers, task).checkpoint]
    tuned = config.tuning is not None and any(variant.name in config.tuning.apply_to
                                              for variant in variants)
    tuning_runs = [tuning_run(config, candidate, seed) for candidate in config.tuning.candidates
                   for seed in config.tuning.seeds] if tuned else []
    total = len(teacher_tasks) + len(tuning_runs) + len(variants) * len(seeds)
    tracker = _Progress(total, progress, log)
    tracker.results['teachers'] = {task: _given_teacher_record(config, task, device)
                                   for task in TASKS if task not in teacher_tasks}
    try:
        _execute(config, [teacher_run(config, task) for task in teacher_tasks], device,
                 progress, tracker)
        _execute(config, tuning_runs, device, progress, tracker)
        winner = selected_candidate(config, tracker.results['teachers'],
                                    tracker.results['tuning']) if tuned else None
        students = [student_run(config, variant, seed,
                                winner.set if winner and variant.name in config.tuning.apply_to
                                else None)
                    for variant in variants for seed in seeds]
        _execute(config, students, device, progress, tracker)
    finally:
        tracker.bar.close()
    return {**tracker.results, 'device': str(device),
            'wall_time_s': round(time.perf_counter() - tracker.started, 1),
            'runs_trained': tracker.trained}


def _execute(config: StudyConfig, runs: list[RunSpec], device: torch.device, progress: bool,
             tracker: _Progress) -> None:
    """One phase: every run in this process (jobs 1) or in worker processes."""
    if config.jobs == 1:
        for run in runs:
            tracker.finished(run, *_timed_run(run, config, device, progress))
    else:
        _execute_in_workers(runs, config, device, tracker.finished)


def _worker_init() -> None:
    torch.set_num_threads(1)


def _timed_run(run: RunSpec, config: StudyConfig, device: torch.device | str,
               progress: bool = False) -> tuple[dict, str, float]:
    """execute_run plus its wall time in seconds (device as a string in worker processes)."""
    started = time.perf_counter()
    record, state = execute_run(run, config, torch.device(device), progress)
    return record, state, time.perf_counter() - started


def _execute_in_workers(runs: list[RunSpec], config: StudyConfig, device: torch.device,
                        finished) -> None:
    """execute_run for every run, `config.jobs` worker processes at a time, one torch thread
    each; `finished(run, record, state, seconds)` as each completes. The first failure
    cancels the runs not yet started and is raised."""
    import multiprocessing
    from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
    if not runs:
        return
    context = multiprocessing.get_context('spawn')  # fork would copy torch's thread pools
    with ProcessPoolExecutor(max_workers=min(config.jobs, len(runs)), mp_context=context,
                             initializer=_worker_init) as pool:
        pending = {pool.submit(_timed_run, run, config, str(device)): run for run in runs}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_EXCEPTION)
                for future in done:
                    run = pending.pop(future)
                    finished(run, *future.result())
        except BaseException:
            for future in pending:
                future.cancel()
            raise


def collect_finished(config: StudyConfig, seeds: list[int],
                     group: str = 'runs') -> dict[str, dict[int, dict]]:
    """done.json records of every configured variant x seed ('runs') or tuning candidate x
    tuning seed ('tuning') that has finished (also runs of earlier invocations)."""
    if group == 'tuning':
        names = [candidate.name for candidate in config.tuning.candidates] \
            if config.tuning else []
    else:
        names = [variant.name for variant in config.variants]
    finished: dict[str, dict[int, dict]] = {}
    for name in names:
        for seed in seeds:
            record = read_done(Path(config.out) / group / name / f'seed{seed}')
            if record is not None:
                finished.setdefault(name, {})[seed] = record
    return finished
