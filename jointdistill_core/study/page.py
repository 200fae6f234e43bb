"""The results page (Markdown) and its JSON, written from the report of `build_report`."""
from __future__ import annotations

import json
import math
from pathlib import Path

from jointdistill_core.study.config import TASK_METRICS, StudyConfig, metric_task
from jointdistill_core.study.questions import (
    depth_markdown,
    describe_key,
    master_markdown,
    parts_markdown,
    tuning_markdown,
)
from jointdistill_core.study.results import (
    SIGN_NOTE,
    finding_markdown,
    format_mean_std,
    format_metric,
)

METRIC_TITLES = {'miou': 'mIoU (%)', 'pixel_acc': 'pixel acc (%)', 'abs_err': 'abs err (m)',
                 'abs_rel': 'abs rel', 'rmse': 'RMSE (m)', 'delta1': 'delta1 (%)'}
QUESTIONS = ('1. Does distillation move depth beyond what `mtl` learns without those depth '
             'labels?',
             '2. Does JointDistill beat static multi-teacher distillation, and which of its '
             'parts carry the gain?',
             '3. Does any student beat its own teachers ("the student becomes the master")?',
             '4. Tuning record: alpha, beta, K (eval_every), direction')


def _hours(seconds: float) -> str:
    return f'{seconds:,.0f} s ({seconds / 3600:.2f} h)'


def _format_count(value: int | None) -> str:
    return 'n/a' if value is None else f'{value / 1e6:.2f} M'


def _format_ms(value: float | None) -> str:
    return 'n/a' if value is None else f'{value:.1f}'


def _finding(report: dict, config: StudyConfig) -> list[str]:
    keys = report['setup']['delta_m_keys']
    return ['## The finding', '', *finding_markdown(report['variants'], report['finding']), '',
            'delta_m is computed over ' + ', '.join(describe_key(config, key) for key in keys)
            + ': segmentation metrics against the segmentation teacher\'s, depth metrics '
              'against the depth teacher\'s on the same test set (against `mtl`: its mean '
              'over seeds).', '', f'Sign: {SIGN_NOTE}', '']


def _questions(report: dict, config: StudyConfig) -> list[str]:
    summary, questions = report['variants'], report['questions']
    answers = (depth_markdown(config, summary, report['teachers'],
                              questions['depth_beyond_mtl']),
               parts_markdown(summary, questions['jointdistill_parts']),
               master_markdown(config, summary, report['teacher_baseline'],
                               questions['students_vs_teachers'],
                               report['finding'].get('reach_teachers', [])),
               tuning_markdown(config, questions['tuning']))
    lines = ['## The questions', '']
    for title, answer in zip(QUESTIONS, answers):
        lines += [f'### {title}', '', *answer, '']
    return lines


def _setup(report: dict) -> list[str]:
    setup = report['setup']
    lines = ['## Setup', '', *[f'- {key}: {value}' for key, value in setup['sizes'].items()],
             '', '| test set | data | split | frames | protocol | scores | in delta_m |',
             '|---|---|---|---|---|---|---|']
    for test in setup['tests']:
        lines.append(f'| {test["title"]} (`{test["name"]}`) | `{test["spec"]}` | '
                     f'{test["split"] or "-"} | {test["frames"] or "all"} | {test["protocol"]} | '
                     f'{", ".join(test["tasks"])} | {", ".join(test["metrics"]) or "-"} |')
    return lines + ['']


def _delta_m_table(report: dict) -> list[str]:
    lines = ['## delta_m of every variant (mean ± std over seeds)', '',
             '| variant | method | seeds | delta_m vs teachers (%) | delta_m vs `mtl` (%) | '
             'params | latency (ms) |', '|---|---|---|---|---|---|---|']
    for name, row in report['variants'].items():
        lines.append(f'| `{name}` | {row["method"]} | {row["n"]} | '
                     f'{format_mean_std(row, "delta_m")} | '
                     f'{format_mean_std(row, "delta_m_mtl")} | '
                     f'{_format_count(row.get("params"))} | {_format_ms(row.get("latency_ms"))} |')
    setup = report['setup']
    return lines + ['', f'Latency: median of {setup["latency_repeats"]} Predictor calls per '
                        f'model (preprocessing, forward, resizing) at '
                        f'{setup["sizes"]["resolution"]} on {report["latency_device"]}, all '
                        f'models measured in one process in turn.', '']


def _test_set_table(report: dict, test: dict) -> list[str]:
    metrics = [metric for task in test['tasks'] for metric in TASK_METRICS[task]]
    name = test['name']
    titles = [METRIC_TITLES[metric] + (' *' if metric in test['metrics'] else '')
              for metric in metrics]
    split = f'split {test["split"]}, ' if test['split'] else ''
    lines = [f'## {test["title"]}', '',
             f'`{test["spec"]}`, {split}{test["protocol"]} protocol; '
             '* = in delta_m.', '',
             '| model | seeds | ' + ' | '.join(titles) + ' |', '|---|---|' + '---|' * len(titles)]
    for task, teacher in report['teachers'].items():
        scored = teacher['tests'].get(name)
        if scored is None:
            continue
        cells = [format_metric(metric, scored.get(metric))
                 if metric_task(metric) == task else '-' for metric in metrics]
        lines.append(f'| {task} teacher | 1 | ' + ' | '.join(cells) + ' |')
        if task == 'depth' and 'constant_abs_rel' in scored:
            cells = [format_metric(metric, scored.get(f'constant_{metric}'))
                     if f'constant_{metric}' in scored else '-' for metric in metrics]
            lines.append('| one constant depth per frame (oracle) | - | ' + ' | '.join(cells)
                         + ' |')
    for variant, row in report['variants'].items():
        cells = [format_mean_std(row, f'{name}/{metric}') for metric in metrics]
        lines.append(f'| `{variant}` | {row["n"]} | ' + ' | '.join(cells) + ' |')
    return lines + ['']


def _budget(report: dict) -> list[str]:
    budget = report['budget']
    lines = ['## Budget and wall time', '', f'Runs on: {budget["machine"]}.', '']
    teachers = ', '.join(f'{task} {_hours(seconds)}' if seconds is not None else
                         f'{task} given (not trained)'
                         for task, seconds in budget['teachers'].items())
    lines.append(f'- Teachers, training: {teachers}.')
    for group in ('tuning', 'students'):
        item = budget[group]
        if item['runs']:
            lines.append(f'- {group.capitalize()}: {item["runs"]} runs, training '
                         f'{_hours(item["train_s"])} summed over runs '
                         f'({item["min_train_s"]:.0f}-{item["max_train_s"]:.0f} s per run), '
                         f'testing {_hours(item["test_s"])}.')
    if budget['per_variant_train_s']:
        lines.append('- Mean training time per run: ' + ', '.join(
            f'`{name}` {seconds:.0f} s' for name, seconds in budget['per_variant_train_s'].items())
            + '.')
    invocations = budget['invocations']
    if invocations:
        total = sum(entry['wall_time_s'] for entry in invocations)
        lines += ['', f'Wall time of the study invocations that trained these runs: '
                      f'{_hours(total)} in all.', '',
                  '| date | jobs | runs trained | wall time | machine |', '|---|---|---|---|---|']
        lines += [f'| {entry["date"]} | {entry["jobs"]} | {entry["runs_trained"]} | '
                  f'{_hours(entry["wall_time_s"])} | {entry["machine"]} |'
                  for entry in invocations]
    return lines + ['']


def _reproduce(report: dict) -> list[str]:
    lines = ['## Reproduce each row', '',
             'Each row trains with one command (shown for its first seed; the other seeds '
             'differ only in `--set seed=K` and the output folder):', '',
             '| row | command |', '|---|---|']
    lines += [f'| `{name}` | `{row["command"]}` |' for name, row in report['variants'].items()]
    tuning = report['questions']['tuning']
    if tuning:
        lines += [f'| tuning `{name}` | `{row["command"]}` |'
                  for name, row in tuning['candidates'].items()]
    lines += [f'| teacher {task} | `{teacher["command"]}` |'
              for task, teacher in report['teachers'].items() if teacher.get('command')]
    return lines + ['']


def _qualitative_sets(report: dict) -> str:
    """Which test sets the qualitative figure draws, in words."""
    shown = report.get('qualitative_tests')
    if shown is None or len(shown) == len(report['setup']['tests']):
        return 'every test set'
    left_out = [test['title'] for test in report['setup']['tests'] if test['title'] not in shown]
    return (f'{", ".join(shown)} (not drawn: {", ".join(left_out)}; '
            '`evaluation.qualitative_tests`)')


def _figures(report: dict) -> list[str]:
    figures = report['figures']
    lines = ['## Teacher weights of JointDistill', '']
    if figures.get('weights'):
        lines += [f'![teacher weights]({figures["weights"]})', '',
                  'omega_seg and omega_depth (they sum to 2) over training steps, per seed, '
                  'from the trainer\'s metrics.csv.']
    else:
        lines.append('No run of the trajectory variant logged teacher weights.')
    lines += ['', '## Qualitative comparison', '']
    if figures.get('qualitative'):
        lines += [f'![qualitative]({figures["qualitative"]})', '',
                  f'The first frames of {_qualitative_sets(report)} through every model '
                  '(first seed), each '
                  'frame at its own resolution through the Predictor with its K: depth colour '
                  'map (near = red, far = blue, one scale per frame; sparse ground truth '
                  'grown to patches) above the label colours; white = not annotated or not '
                  'predicted.']
    return lines + ['']


def results_markdown(report: dict, config: StudyConfig) -> str:
    """The whole results page from the report dictionary (see `build_report`)."""
    setup = report['setup']
    lines = [f'# Distillation study: {setup["name"]}', '',
             f'Generated by `{setup["command"]}` from the runs under `{setup["out"]}`. Every '
             'number on this page, and every sentence stating a result, is computed from '
             'those runs.', '', *_finding(report, config), *_questions(report, config)]
    if report.get('notes'):
        lines += ['## Investigation notes', '', report['notes'].strip(), '']
    lines += _setup(report) + _delta_m_table(report)
    for test in setup['tests']:
        lines += _test_set_table(report, test)
    lines += _budget(report) + _reproduce(report) + _figures(report)
    return '\n'.join(lines)


def write_results(report: dict, config: StudyConfig) -> tuple[Path, Path]:
    """Write RESULTS_DIR/NAME.json and NAME.md atomically; returns their paths."""
    from jointdistill_core.checkpoint import atomic_write_bytes
    results_dir = Path(config.results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    json_path = results_dir / f'{config.results_name}.json'
    md_path = results_dir / f'{config.results_name}.md'
    atomic_write_bytes(json_path, (json.dumps(_json_ready(report), indent=2) + '\n').encode())
    atomic_write_bytes(md_path, results_markdown(report, config).encode())
    return json_path, md_path


def _json_ready(value):
    """Seeds become string keys; NaN/inf become null (JSON has neither)."""
    if isinstance(value, dict):
        return {str(key): _json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
