"""Runs a study: teachers once, then every variant x seed, each evaluated on the test split.

Layout under OUT (the study's `out`):
  teachers/<seg|depth>/   a training run of the teacher, plus done.json (its test metrics)
  runs/<variant>/seed<k>/ a training run of the student, plus done.json (its test metrics)

A run folder with a valid done.json is finished and skipped. A run folder with a
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
from jointdistill_core.study.config import StudyConfig, VariantConfig
from jointdistill_core.tasks import TASKS

DONE_NAME = 'done.json'
DONE_FORMAT = 'jointdistill-study-run'
TEACHER_OUTPUTS = {'seg': ('seg_logits',), 'depth': ('depth',)}
STUDENT_OUTPUTS = ('seg_logits', 'depth')


class StudyError(RuntimeError):
    """A run of the study cannot be trained or evaluated; the message names the run."""


@dataclass
class RunSpec:
    """One training run: `train_config` + `overrides` is exactly `jointdistill train`."""
    label: str
    train_config: str
    overrides: list[str]
    out_dir: Path
    tasks: tuple[str, ...]
    variant: str | None = None
    seed: int | None = None

    def command(self) -> str:
        """The one shell command that trains this run."""
        parts = ['jointdistill', 'train', '--config', self.train_config]
        for override in self.overrides:
            parts += ['--set', override]
        return ' '.join(shlex.quote(part) for part in parts)


def _data_overrides(config: StudyConfig) -> list[str]:
    data = config.data
    overrides = [f'data.spec={data.spec}', f'data.train_split={data.train_split}',
                 f'data.val_split={data.val_split}',
                 f'data.size={data.size if data.size is not None else "null"}']
    for key, value in (('num_frames', data.train_frames), ('val_frames', data.val_frames)):
        overrides.append(f'data.{key}={value if value is not None else "null"}')
    return overrides


def teacher_checkpoint(config: StudyConfig, task: str) -> str:
    """The checkpoint path of the `task` teacher: the given one or the study's own."""
    given = getattr(config.teachers, task).checkpoint
    return given or str(Path(config.out) / 'teachers' / task / 'best')


def teacher_run(config: StudyConfig, task: str) -> RunSpec:
    """The training run of the `task` teacher (seg or depth)."""
    teacher = getattr(config.teachers, task)
    out_dir = Path(config.out) / 'teachers' / task
    overrides = [f'seed={teacher.seed}', f'steps={teacher.steps}',
                 f'val_every={teacher.val_every}', f'data.batch_size={teacher.batch_size}',
                 *_data_overrides(config), *teacher.set, f'out={out_dir}']
    return RunSpec(f'teacher {task}', teacher.config, overrides, out_dir, TEACHER_OUTPUTS[task])


def student_run(config: StudyConfig, variant: VariantConfig, seed: int) -> RunSpec:
    """The training run of one variant and seed, with the study's budget and teachers."""
    from jointdistill_core.distill import METHODS
    from jointdistill_core.training.config import load_train_config
    budget = config.student
    out_dir = Path(config.out) / 'runs' / variant.name / f'seed{seed}'
    overrides = [f'seed={seed}', f'steps={budget.steps}', f'val_every={budget.val_every}',
                 f'data.batch_size={budget.batch_size}', *_data_overrides(config),
                 *budget.set, *variant.set]
    method_name = load_train_config(variant.config, overrides).method.name
    needed = getattr(METHODS.get(method_name), 'teachers_needed', ())
    overrides += [f'teachers.{task}.path={teacher_checkpoint(config, task)}' for task in needed]
    overrides.append(f'out={out_dir}')
    return RunSpec(f'{variant.name} seed{seed}', variant.config, overrides, out_dir,
                   STUDENT_OUTPUTS, variant.name, seed)


def read_done(out_dir: Path) -> dict | None:
    """The done.json record of a finished run, or None (absent or not a study record)."""
    path = Path(out_dir) / DONE_NAME
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(record, dict) or record.get('format') != DONE_FORMAT:
        return None
    return record


def _reached_budget(out_dir: Path, steps: int) -> bool:
    from jointdistill_core.checkpoint import CheckpointError, read_checkpoint_config
    try:
        saved = read_checkpoint_config(out_dir / 'last')
    except CheckpointError:
        return False
    return int(saved.get('extra', {}).get('step', 0)) >= steps


def evaluate_checkpoint(path: str | Path, config: StudyConfig, tasks: tuple[str, ...],
                        device: torch.device) -> dict[str, float]:
    """Test-split metrics of the checkpoint at `path` (fractions; abs_err and rmse in m)."""
    from jointdistill_core.checkpoint import load_checkpoint
    from jointdistill_core.training.evaluate import evaluate_model
    model, saved = load_checkpoint(path, device)
    test_set, num_classes = load_test_split(config, saved.get('extra', {}).get('num_classes'))
    return evaluate_model(model, test_set, num_classes, device,
                          batch_size=config.evaluation.batch_size, tasks=tasks)


def load_test_split(config: StudyConfig, num_classes: int | None = None):
    """(dataset, num_classes) of the study's test split at the study's size."""
    from jointdistill_core.data.registry import build_dataset
    data = config.data
    try:
        return build_dataset(data.spec, data.test_split, size=data.size_pixels(),
                             num_frames=data.test_frames, num_classes=num_classes)
    except (ValueError, OSError) as error:
        raise ConfigError(f'data: test split {data.test_split!r} of {data.spec}: {error}') from None


def execute_run(run: RunSpec, config: StudyConfig, device: torch.device,
                progress: bool) -> tuple[dict, bool]:
    """Train (or resume) and test one run; write its done.json. Returns (record, skipped)."""
    from jointdistill_core.training import TrainingError, load_train_config, train
    finished = read_done(run.out_dir)
    if finished is not None:
        return finished, True
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
    record = {
        'format': DONE_FORMAT, 'label': run.label, 'variant': run.variant, 'seed': run.seed,
        'method': train_config.method.name, 'steps': train_config.steps,
        'batch_size': train_config.data.batch_size, 'resumed': resumable,
        'train_wall_time_s': round(wall_time, 1), 'checkpoint': str(checkpoint),
        'command': run.command(),
        'test': evaluate_checkpoint(checkpoint, config, run.tasks, device),
    }
    from jointdistill_core.checkpoint import atomic_write_bytes
    atomic_write_bytes(run.out_dir / DONE_NAME, (json.dumps(record, indent=2) + '\n').encode())
    return record, False


def _given_teacher_record(config: StudyConfig, task: str, device: torch.device) -> dict:
    path = teacher_checkpoint(config, task)
    try:
        metrics = evaluate_checkpoint(path, config, TEACHER_OUTPUTS[task], device)
    except (ValueError, OSError) as error:
        raise StudyError(f'teachers.{task}.checkpoint: {error}') from error
    return {'format': DONE_FORMAT, 'label': f'teacher {task}', 'checkpoint': path,
            'command': None, 'test': metrics}


def _print_now(line: str) -> None:
    print(line, flush=True)  # one line per finished run, also when stdout is a file


def run_study(config: StudyConfig, variants: list[VariantConfig], seeds: list[int],
              progress: bool = True, log=_print_now) -> dict:
    """Train and test the teachers and every variant x seed (skipping finished runs), one at a
    time in this process or `config.jobs` at a time in worker processes.

    Returns {'teachers': {task: record}, 'runs': {variant: {seed: record}}} where a record is
    the run's done.json content. `log` receives one line per run.
    """
    from jointdistill_core.device import resolve_device
    device = resolve_device('auto')
    teacher_tasks = [task for task in TASKS if not getattr(config.teachers, task).checkpoint]
    phases = [[teacher_run(config, task) for task in teacher_tasks],
              [student_run(config, variant, seed) for variant in variants for seed in seeds]]
    teachers = {task: _given_teacher_record(config, task, device) for task in TASKS
                if task not in teacher_tasks}
    results: dict[str, dict[int, dict]] = {}
    total, started, completed = sum(map(len, phases)), time.perf_counter(), 0
    bar = tqdm(total=total, desc='study', unit='run', disable=not progress,
               dynamic_ncols=True, position=0)

    def finished(run: RunSpec, record: dict, skipped: bool, elapsed: float) -> None:
        nonlocal completed
        completed += 1
        state = 'finished earlier, skipped' if skipped else f'{elapsed:.0f} s'
        line = (f'[{completed}/{total}] {run.label}: {state} (study elapsed '
                f'{time.perf_counter() - started:.0f} s)')
        (bar.write if progress else log)(line)
        if run.variant is None:
            teachers[run.label.split()[-1]] = record
        else:
            results.setdefault(run.variant, {})[run.seed] = record
        bar.update(1)

    try:
        for phase in phases:  # the students need the teachers' checkpoints
            if config.jobs == 1:
                for run in phase:
                    finished(run, *_timed_run(run, config, device, progress))
            else:
                _execute_in_workers(phase, config, device, finished)
    finally:
        bar.close()
    return {'teachers': teachers, 'runs': results, 'device': str(device)}


def _worker_init() -> None:
    torch.set_num_threads(1)


def _timed_run(run: RunSpec, config: StudyConfig, device: torch.device | str,
               progress: bool = False) -> tuple[dict, bool, float]:
    """execute_run plus its wall time in seconds (device as a string in worker processes)."""
    started = time.perf_counter()
    record, skipped = execute_run(run, config, torch.device(device), progress)
    return record, skipped, time.perf_counter() - started


def _execute_in_workers(runs: list[RunSpec], config: StudyConfig, device: torch.device,
                        finished) -> None:
    """execute_run for every run, `config.jobs` worker processes at a time, one torch thread
    each; `finished(run, record, skipped, seconds)` as each completes. The first failure
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


def collect_finished(config: StudyConfig, seeds: list[int]) -> dict[str, dict[int, dict]]:
    """done.json records of every configured variant x seed that has finished (also runs
    finished by earlier invocations with other --only selections)."""
    finished: dict[str, dict[int, dict]] = {}
    for variant in config.variants:
        for seed in seeds:
            record = read_done(Path(config.out) / 'runs' / variant.name / f'seed{seed}')
            if record is not None:
                finished.setdefault(variant.name, {})[seed] = record
    return finished
