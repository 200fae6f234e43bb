"""From finished runs to the report behind the results page: summaries, the answers to the
page's questions, side-by-side latency, the budget and the figures."""
from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from jointdistill_core.study.config import StudyConfig
from jointdistill_core.study.figures import (
    measure_models,
    plot_qualitative,
    plot_weight_trajectories,
    predict_samples,
    read_weight_trajectory,
)
from jointdistill_core.study.questions import (
    depth_beyond_mtl,
    jointdistill_parts,
    students_vs_teachers,
    tuning_facts,
)
from jointdistill_core.study.results import finding, summarize, teacher_baseline
from jointdistill_core.study.runner import load_test_set
from jointdistill_core.tasks import TASKS

WALL_TIME_LOG = 'wall_time.json'


def machine_description() -> str:
    """CPU model, core count and GPU of this machine, in words."""
    model = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as handle:
            model = next((line.split(':', 1)[1].strip() for line in handle
                          if line.startswith('model name')), model)
    except OSError:
        pass
    import torch
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU'
    return f'{model}, {os.cpu_count()} cores, {gpu}'


def record_invocation(config: StudyConfig, outcome: dict, command: str) -> None:
    """Append this invocation's wall time to OUT/wall_time.json when it trained or tested
    anything (so the page keeps the measured time when a later invocation skips all)."""
    from jointdistill_core.checkpoint import atomic_write_bytes
    if not outcome['runs_trained']:
        return
    path = Path(config.out) / WALL_TIME_LOG
    entries = json.loads(path.read_text()) if path.is_file() else []
    entries.append({'date': time.strftime('%Y-%m-%d %H:%M'), 'command': command,
                    'jobs': config.jobs, 'runs_trained': outcome['runs_trained'],
                    'wall_time_s': outcome['wall_time_s'], 'machine': machine_description()})
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, (json.dumps(entries, indent=2) + '\n').encode())


def _setup(config: StudyConfig, seeds: list[int], command: str) -> dict:
    data, budget = config.data, config.student
    sizes = {
        'training data': data.spec,
        'validation data': f'{data.val_spec or data.spec}, split {data.val_split}',
        'resolution': data.size or 'the dataset\'s own',
        'frames (train / val)': f'{data.train_frames or "all"} / {data.val_frames or "all"}',
        'student budget': f'{budget.steps} steps x batch {budget.batch_size} '
                          f'({budget.steps * budget.batch_size} images), validation every '
                          f'{budget.val_every} steps, tested checkpoint: '
                          f'{config.evaluation.checkpoint}',
        'student overrides (every variant)': ', '.join(f'`{o}`' for o in budget.set) or 'none',
        'seeds': ', '.join(str(seed) for seed in seeds),
    }
    for task in TASKS:
        teacher = getattr(config.teachers, task)
        sizes[f'{task} teacher'] = (
            f'given checkpoint {teacher.checkpoint}' if teacher.checkpoint else
            f'{teacher.steps} steps x batch {teacher.batch_size}, seed {teacher.seed}, on '
            f'{teacher.spec or data.spec}')
    specs = {test.name: test.spec or data.spec for test in config.tests}
    tests = [{'name': test.name, 'title': test.label(), 'spec': specs[test.name],
              'split': None if specs[test.name].startswith('folder:') else test.split,
              'frames': test.frames, 'protocol': test.protocol,
              'tasks': test.tasks, 'metrics': test.metrics} for test in config.tests]
    return {'name': config.name, 'command': command, 'out': config.out, 'sizes': sizes,
            'tests': tests, 'delta_m_keys': config.delta_m_keys(),
            'latency_repeats': config.evaluation.latency_repeats}


def _trajectories(config: StudyConfig, seeds: list[int]) -> dict[int, dict]:
    variant = config.evaluation.trajectory_variant
    found = {}
    for seed in seeds:
        trajectory = read_weight_trajectory(
            Path(config.out) / 'runs' / variant / f'seed{seed}' / 'metrics.csv')
        if trajectory is not None:
            found[seed] = trajectory
    return found


def _budget(config: StudyConfig, teachers: dict, tuning: dict, runs: dict) -> dict:
    """Measured times of every run (seconds) and of the invocations that trained them."""
    def times(records: list[dict]) -> dict:
        train = [record.get('train_wall_time_s', 0.0) for record in records]
        test = [record.get('test_wall_time_s', 0.0) for record in records]
        return {'runs': len(records), 'train_s': round(sum(train), 1),
                'test_s': round(sum(test), 1), 'min_train_s': min(train, default=0.0),
                'max_train_s': max(train, default=0.0)}

    log = Path(config.out) / WALL_TIME_LOG
    return {
        'teachers': {task: record.get('train_wall_time_s') for task, record in teachers.items()},
        'tuning': times([r for seeds in tuning.values() for r in seeds.values()]),
        'students': times([r for seeds in runs.values() for r in seeds.values()]),
        'per_variant_train_s': {name: round(float(np.mean([r.get('train_wall_time_s', 0.0)
                                                           for r in seeds.values()])), 1)
                                for name, seeds in runs.items()},
        'invocations': json.loads(log.read_text()) if log.is_file() else [],
        'machine': machine_description(),
    }


def _qualitative(config: StudyConfig, teachers: dict, checkpoints: dict[str, str],
                 num_classes: int, path: Path) -> None:
    """The qualitative grid: the first frames of the drawn test sets through every model."""
    frames = []
    for test in qualitative_tests(config):
        dataset, _ = load_test_set(config, test, num_classes)
        count = min(config.evaluation.qualitative_frames, len(dataset))
        frames += [(f'{test.label()} {index}', dataset[index]) for index in range(count)]
    samples = [sample for _, sample in frames]
    seg = predict_samples(teachers['seg']['checkpoint'], samples)
    depth = predict_samples(teachers['depth']['checkpoint'], samples)
    columns = {'teachers (seg, depth)': [(labels, depth_map) for (labels, _), (_, depth_map)
                                         in zip(seg, depth)]}
    columns.update({name: predict_samples(checkpoint, samples)
                    for name, checkpoint in checkpoints.items()})
    plot_qualitative(frames, columns, num_classes, path)


def qualitative_tests(config: StudyConfig) -> list:
    """The test sets drawn in the qualitative figure, in config order."""
    shown = config.evaluation.qualitative_tests
    return [test for test in config.tests if shown is None or test.name in shown]


def _latency_image(config: StudyConfig, size: tuple[int, int], num_classes: int
                   ) -> np.ndarray:
    """The first frame of the first test set at `size` (H, W), uint8 RGB."""
    import cv2

    from jointdistill_core.training.evaluate import sample_rgb8
    dataset, _ = load_test_set(config, config.tests[0], num_classes)
    image = sample_rgb8(dataset[0])
    return cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_AREA)


def build_report(config: StudyConfig, teachers: dict[str, dict],
                 runs: dict[str, dict[int, dict]], tuning: dict[str, dict[int, dict]],
                 seeds: list[int], command: str, results_dir: Path) -> dict:
    """Everything the results page shows; writes the figures under RESULTS_DIR/figures/."""
    keys = config.delta_m_keys()
    baseline = teacher_baseline(teachers, keys)
    summary = summarize(runs, baseline, keys, [variant.name for variant in config.variants])
    facts = finding(summary)
    trajectories = _trajectories(config, sorted(runs.get(config.evaluation.trajectory_variant,
                                                         {})))
    from jointdistill_core.checkpoint import read_checkpoint_config
    seg_teacher = read_checkpoint_config(teachers['seg']['checkpoint'])
    num_classes = seg_teacher['model']['num_classes']  # the seg teacher's classes: the study's
    size = config.data.size_pixels() or tuple(seg_teacher['input_size'])
    checkpoints = {name: row_first_checkpoint(runs[name]) for name in summary}
    measured = measure_models({**{f'teacher {task}': teachers[task]['checkpoint']
                                  for task in TASKS}, **checkpoints},
                              size, config.evaluation.latency_repeats,
                              _latency_image(config, size, num_classes))
    teacher_rows = {task: {**teachers[task], **measured[f'teacher {task}']} for task in TASKS}
    for name in summary:
        summary[name].update({key: measured[name][key] for key in ('params', 'latency_ms')})
    figures_dir, figures = results_dir / 'figures', {}
    if trajectories:
        path = figures_dir / f'{config.results_name}_teacher_weights.png'
        plot_weight_trajectories(trajectories, config.evaluation.trajectory_variant, path)
        figures['weights'] = str(path.relative_to(results_dir))
    path = figures_dir / f'{config.results_name}_qualitative.png'
    _qualitative(config, teachers, checkpoints, num_classes, path)
    figures['qualitative'] = str(path.relative_to(results_dir))
    questions = {
        'depth_beyond_mtl': depth_beyond_mtl(summary, keys),
        'jointdistill_parts': jointdistill_parts(summary, trajectories),
        'students_vs_teachers': students_vs_teachers(summary, baseline, keys),
        'tuning': tuning_facts(config, teachers, tuning, runs),
    }
    return {'setup': _setup(config, seeds, command), 'sign': 'negative delta_m = better than '
            'the baseline', 'teachers': teacher_rows, 'teacher_baseline': baseline,
            'variants': summary, 'finding': facts, 'questions': questions,
            'budget': _budget(config, teachers, tuning, runs), 'figures': figures,
            'qualitative_tests': [test.label() for test in qualitative_tests(config)],
            'notes': Path(config.notes).read_text() if config.notes else None,
            'weight_trajectories': {config.evaluation.trajectory_variant: trajectories},
            'latency_device': next(iter(measured.values()))['device']}


def row_first_checkpoint(seeds: dict[int, dict]) -> str:
    """The tested checkpoint of a variant's first finished seed."""
    return seeds[min(seeds)]['checkpoint']
