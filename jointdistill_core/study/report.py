"""From finished runs to the results page: summaries, side-by-side latency, figures."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from jointdistill_core.study.config import StudyConfig
from jointdistill_core.study.figures import (
    measure_models,
    plot_qualitative,
    plot_weight_trajectories,
    predict_frames,
    read_weight_trajectory,
)
from jointdistill_core.study.results import finding, summarize, teacher_baseline
from jointdistill_core.study.runner import load_test_split
from jointdistill_core.tasks import TASKS


def _setup(config: StudyConfig, seeds: list[int], command: str) -> dict:
    data, budget = config.data, config.student
    sizes = {
        'data': data.spec,
        'resolution': data.size or 'the dataset\'s own',
        'frames (train / val / test)': f'{data.train_frames or "all"} / '
                                       f'{data.val_frames or "all"} / {data.test_frames or "all"}',
        'splits (train / val / test)': f'{data.train_split} / {data.val_split} / '
                                       f'{data.test_split}',
        'student budget': f'{budget.steps} steps x batch {budget.batch_size} '
                          f'({budget.steps * budget.batch_size} images), validation every '
                          f'{budget.val_every} steps, tested checkpoint: '
                          f'{config.evaluation.checkpoint}',
        'seeds': ', '.join(str(seed) for seed in seeds),
    }
    for task in TASKS:
        teacher = getattr(config.teachers, task)
        sizes[f'{task} teacher'] = (f'given checkpoint {teacher.checkpoint}' if teacher.checkpoint
                                    else f'{teacher.steps} steps x batch {teacher.batch_size}, '
                                         f'seed {teacher.seed}')
    return {'name': config.name, 'command': command, 'out': config.out, 'sizes': sizes,
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


def build_report(config: StudyConfig, teachers: dict[str, dict], runs: dict[str, dict[int, dict]],
                 seeds: list[int], command: str, results_dir: Path) -> dict:
    """Everything the results page shows; writes the figures under RESULTS_DIR/figures/."""
    order = [variant.name for variant in config.variants]
    summary = summarize(runs, teacher_baseline(teachers), order)
    test_set, num_classes = load_test_split(config)
    samples = [test_set[index] for index in
               range(min(config.evaluation.qualitative_frames, len(test_set)))]
    size = config.data.size_pixels() or tuple(samples[0]['image'].shape[-2:])
    checkpoints = {f'teacher {task}': teachers[task]['checkpoint'] for task in TASKS}
    checkpoints.update({name: row_first_checkpoint(runs[name]) for name in summary})
    image = (samples[0]['image'].numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8)
    measured = measure_models(checkpoints, size, config.evaluation.latency_repeats, image)
    teacher_rows = {}
    for task in TASKS:
        teacher_rows[task] = {**teachers[task], **measured[f'teacher {task}']}
    for name in summary:
        summary[name].update({key: measured[name][key] for key in ('params', 'latency_ms')})
    figures_dir = results_dir / 'figures'
    figures = {}
    trajectories = _trajectories(config, sorted(runs.get(config.evaluation.trajectory_variant, {})))
    if trajectories:
        path = figures_dir / f'{config.results_name}_teacher_weights.png'
        plot_weight_trajectories(trajectories, config.evaluation.trajectory_variant, path)
        figures['weights'] = str(path.relative_to(results_dir))
    images = torch.stack([sample['image'] for sample in samples])
    teacher_seg = predict_frames(teachers['seg']['checkpoint'], images)[0]
    teacher_depth = predict_frames(teachers['depth']['checkpoint'], images)[1]
    columns = {'teachers (seg, depth)': (teacher_seg, teacher_depth)}
    columns.update({name: predict_frames(checkpoints[name], images) for name in summary})
    path = figures_dir / f'{config.results_name}_qualitative.png'
    plot_qualitative(samples, columns, num_classes, path)
    figures['qualitative'] = str(path.relative_to(results_dir))
    return {'setup': _setup(config, seeds, command), 'sign': 'negative delta_m = better than '
            'the single-task teachers', 'teachers': teacher_rows, 'variants': summary,
            'finding': finding(summary), 'figures': figures,
            'notes': Path(config.notes).read_text() if config.notes else None,
            'weight_trajectories': {config.evaluation.trajectory_variant: trajectories},
            'latency_device': next(iter(measured.values()))['device']}


def row_first_checkpoint(seeds: dict[int, dict]) -> str:
    """The tested checkpoint of a variant's first finished seed."""
    return seeds[min(seeds)]['checkpoint']
