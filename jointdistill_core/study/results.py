"""Aggregates finished study runs into RESULTS.json and RESULTS.md, the finding included.

delta_m of a student run is measured against the single-task teachers: its mIoU and pixel
accuracy against the segmentation teacher's, its abs err, abs rel, RMSE and delta1 against
the depth teacher's (`jointdistill_core.metrics.delta_m`, in percent). NEGATIVE = BETTER than
the teachers. Means and sample standard deviations (n - 1) are over seeds.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from jointdistill_core.metrics import METRIC_DIRECTIONS, delta_m

SEG_METRICS = ('miou', 'pixel_acc')
DEPTH_METRICS = ('abs_err', 'abs_rel', 'rmse', 'delta1')
TABLE_METRICS = SEG_METRICS + DEPTH_METRICS
METRIC_TITLES = {'miou': 'mIoU (%)', 'pixel_acc': 'pixel acc (%)', 'abs_err': 'abs err (m)',
                 'abs_rel': 'abs rel', 'rmse': 'RMSE (m)', 'delta1': 'delta1 (%)',
                 'delta_m': 'delta_m (%)'}
PERCENT_METRICS = ('miou', 'pixel_acc', 'delta1')
SIGN_NOTE = ('delta_m is the mean relative difference to the single-task teachers in percent '
             '(Maninis et al. 2019); negative = better than the teachers, positive = worse.')
BASELINES = ('static_kd', 'mtl')
JOINTDISTILL = 'jointdistill'


def teacher_baseline(teachers: dict[str, dict]) -> dict[str, float]:
    """The delta_m baseline: seg metrics of the seg teacher, depth metrics of the depth one."""
    baseline = {key: teachers['seg']['test'][key] for key in SEG_METRICS}
    baseline.update({key: teachers['depth']['test'][key] for key in DEPTH_METRICS})
    return baseline


def run_delta_m(metrics: dict[str, float], baseline: dict[str, float]) -> float:
    """delta_m in percent; NaN when undefined (a teacher metric of 0 or NaN, e.g. a teacher
    whose mIoU is 0 after too short a training)."""
    try:
        return delta_m(metrics, baseline, {key: METRIC_DIRECTIONS[key] for key in TABLE_METRICS})
    except ValueError:
        return math.nan


def _mean_std(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (n - 1; None for one value); NaN in -> NaN out."""
    array = np.asarray(values, np.float64)
    return float(array.mean()), float(array.std(ddof=1)) if array.size > 1 else None


def summarize(runs: dict[str, dict[int, dict]], baseline: dict[str, float],
              order: list[str]) -> dict[str, dict]:
    """Per variant (in `order`, only those with finished runs): per-seed metrics with
    delta_m, their mean and standard deviation over seeds."""
    summary = {}
    for name in order:
        seeds = runs.get(name)
        if not seeds:
            continue
        per_seed = {}
        for seed in sorted(seeds):
            metrics = {key: float(seeds[seed]['test'][key]) for key in TABLE_METRICS}
            metrics['delta_m'] = run_delta_m(metrics, baseline)
            per_seed[seed] = metrics
        mean, std = {}, {}
        for key in (*TABLE_METRICS, 'delta_m'):
            mean[key], std[key] = _mean_std([metrics[key] for metrics in per_seed.values()])
        first = seeds[min(seeds)]
        summary[name] = {'method': first['method'], 'n': len(per_seed),
                         'seeds': sorted(per_seed), 'per_seed': per_seed, 'mean': mean,
                         'std': std, 'command': first['command'],
                         'reproduce_seed': min(seeds)}
    return summary


def _gap_sd(first: dict, second: dict) -> float | None:
    """Standard deviation of the difference of two variants' single-seed delta_m."""
    if first['std']['delta_m'] is None or second['std']['delta_m'] is None:
        return None
    return math.hypot(first['std']['delta_m'], second['std']['delta_m'])


def finding(summary: dict[str, dict]) -> dict:
    """The study's conclusions, computed from the numbers only."""
    ranked = sorted((name for name in summary
                     if math.isfinite(summary[name]['mean']['delta_m'])),
                    key=lambda name: summary[name]['mean']['delta_m'])
    facts: dict = {'undefined_delta_m': [name for name in summary if name not in ranked],
                   'ranking': [{'variant': name, 'delta_m': summary[name]['mean']['delta_m']}
                               for name in ranked]}
    if not ranked:
        return facts
    facts['winner'] = ranked[0]
    if len(ranked) > 1:
        facts['runner_up'] = ranked[1]
        facts['winner_margin'] = (summary[ranked[1]]['mean']['delta_m']
                                  - summary[ranked[0]]['mean']['delta_m'])
    facts['reach_teachers'] = [name for name in ranked if summary[name]['mean']['delta_m'] <= 0]
    if JOINTDISTILL in ranked:
        joint = summary[JOINTDISTILL]
        facts['jointdistill_delta_m'] = joint['mean']['delta_m']
        facts['jointdistill_reaches_teachers'] = joint['mean']['delta_m'] <= 0
        facts['gains'] = {}
        for other in BASELINES:
            if other not in ranked:
                continue
            gain = summary[other]['mean']['delta_m'] - joint['mean']['delta_m']
            spread = _gap_sd(joint, summary[other])
            facts['gains'][other] = {
                'gain': gain, 'sd': spread,
                'beyond_two_sd': None if spread is None else bool(gain > 2 * spread)}
    return facts


def _signed(value: float) -> str:
    return f'{value:+.2f}'


def finding_markdown(summary: dict[str, dict], facts: dict) -> list[str]:
    """Sentences of "The finding", generated from `facts` (see `finding`)."""
    if 'winner' not in facts:
        return ['No finished run has a defined delta_m (no runs yet, or a teacher metric is '
                '0: train the teachers longer).']
    lines = []
    winner = facts['winner']
    sentence = (f'- **Winner: `{winner}`** with delta_m '
                f'{_format_mean_std(summary[winner], "delta_m")} % '
                f'(lowest of {len(summary)} variants)')
    if 'runner_up' in facts:
        sentence += (f'; the next best, `{facts["runner_up"]}`, is '
                     f'{facts["winner_margin"]:.2f} points behind.')
    else:
        sentence += '.'
    lines.append(sentence)
    if 'gains' not in facts:
        lines.append('- `jointdistill` has no finished run with a defined delta_m, so its gains '
                     'cannot be stated.')
    else:
        for other, gain in facts['gains'].items():
            direction = 'lower (better)' if gain['gain'] > 0 else 'higher (worse)'
            text = (f'- `jointdistill` vs `{other}`: delta_m {abs(gain["gain"]):.2f} points '
                    f'{direction}')
            if gain['sd'] is None:
                text += '; with one seed the spread is unknown, so significance is not judged.'
            elif gain['beyond_two_sd']:
                text += (f', a gain larger than two standard deviations of the difference '
                         f'(2 x {gain["sd"]:.2f} = {2 * gain["sd"]:.2f}).')
            else:
                text += (f'; this is NOT a gain larger than two standard deviations of the '
                         f'difference (2 x {gain["sd"]:.2f} = {2 * gain["sd"]:.2f}).')
            lines.append(text)
        reaches = facts['jointdistill_reaches_teachers']
        lines.append(f'- The `jointdistill` student {"reaches" if reaches else "does not reach"} '
                     f'its teachers: mean delta_m {_signed(facts["jointdistill_delta_m"])} % '
                     f'({"<=" if reaches else ">"} 0).')
    if facts['undefined_delta_m']:
        lines.append('- delta_m is undefined (a teacher metric is 0) for: '
                     + ', '.join(f'`{name}`' for name in facts['undefined_delta_m']) + '.')
    reached = facts['reach_teachers']
    lines.append('- Variants at or better than the teachers (delta_m <= 0): '
                 + (', '.join(f'`{name}`' for name in reached) if reached else 'none') + '.')
    return lines


def _format_metric(key: str, value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return 'n/a'
    if key in PERCENT_METRICS:
        return f'{100 * value:.2f}'
    if key == 'delta_m':
        return _signed(value)
    return f'{value:.4f}'


def _format_mean_std(row: dict, key: str) -> str:
    mean, std = row['mean'][key], row['std'][key]
    text = _format_metric(key, mean)
    if std is not None:
        scale = 100 if key in PERCENT_METRICS else 1
        text += f' ± {std * scale:.2f}' if key in PERCENT_METRICS or key == 'delta_m' \
            else f' ± {std * scale:.4f}'
    return text


def results_markdown(report: dict) -> str:
    """The whole results page from the report dictionary (see `build_report`)."""
    summary, facts, setup = report['variants'], report['finding'], report['setup']
    lines = [f'# Distillation study: {setup["name"]}', '',
             f'Generated by `{setup["command"]}` from the runs under `{setup["out"]}`. '
             'Every number on this page is computed from those runs.', '',
             '## The finding', '', *finding_markdown(summary, facts), '',
             f'Sign: {SIGN_NOTE}', '']
    if report.get('notes'):
        lines += ['## Investigation notes', '', report['notes'].strip(), '']
    lines += ['## Setup', '']
    lines += [f'- {key}: {value}' for key, value in setup['sizes'].items()]
    lines += ['', '## Teachers (test split)', '',
              '| teacher | ' + ' | '.join(METRIC_TITLES[k] for k in TABLE_METRICS)
              + ' | params | latency (ms) |',
              '|---|' + '---|' * (len(TABLE_METRICS) + 2)]
    for task, teacher in report['teachers'].items():
        cells = [_format_metric(k, teacher['test'].get(k)) if k in teacher['test'] else '-'
                 for k in TABLE_METRICS]
        lines.append(f'| {task} | ' + ' | '.join(cells)
                     + f' | {_format_count(teacher.get("params"))} | '
                       f'{_format_ms(teacher.get("latency_ms"))} |')
    lines += ['', '## Students (test split, mean ± std over seeds)', '',
              '| variant | method | seeds | ' + ' | '.join(METRIC_TITLES[k] for k in
                                                         ('delta_m', *TABLE_METRICS))
              + ' | params | latency (ms) |',
              '|---|---|---|' + '---|' * (len(TABLE_METRICS) + 3)]
    for name, row in summary.items():
        cells = [_format_mean_std(row, key) for key in ('delta_m', *TABLE_METRICS)]
        lines.append(f'| `{name}` | {row["method"]} | {row["n"]} | ' + ' | '.join(cells)
                     + f' | {_format_count(row.get("params"))} | '
                       f'{_format_ms(row.get("latency_ms"))} |')
    lines += ['', f'Latency: median of {setup["latency_repeats"]} Predictor calls per model '
              f'(preprocessing, forward, resizing) at {setup["sizes"]["resolution"]} on '
              f'{report["latency_device"]}, all models measured in one process in turn.', '',
              '## Reproduce each row', '',
              'Each row trains with one command (shown for its first seed; the other seeds '
              'differ only in `--set seed=K` and the output folder):', '',
              '| variant | command |', '|---|---|']
    for name, row in summary.items():
        lines.append(f'| `{name}` | `{row["command"]}` |')
    for task, teacher in report['teachers'].items():
        if teacher.get('command'):
            lines.append(f'| teacher {task} | `{teacher["command"]}` |')
    lines += ['', '## Teacher weights of JointDistill', '']
    if report['figures'].get('weights'):
        lines.append(f'![teacher weights]({report["figures"]["weights"]})')
        lines.append('')
        lines.append('omega_seg and omega_depth (they sum to 2) over training steps, per seed, '
                     'from the trainer\'s metrics.csv.')
    else:
        lines.append('No run of the trajectory variant logged teacher weights.')
    lines += ['', '## Qualitative comparison', '']
    if report['figures'].get('qualitative'):
        lines.append(f'![qualitative]({report["figures"]["qualitative"]})')
        lines.append('')
        lines.append('The same test frames for every model (first seed): depth colour map '
                     '(near = red, far = blue, shared scale) above the label colours.')
    lines.append('')
    return '\n'.join(lines)


def _format_count(value: int | None) -> str:
    return 'n/a' if value is None else f'{value / 1e6:.2f} M'


def _format_ms(value: float | None) -> str:
    return 'n/a' if value is None else f'{value:.1f}'


def write_results(report: dict, results_dir: Path, name: str) -> tuple[Path, Path]:
    """Write RESULTS_DIR/NAME.json and NAME.md atomically; returns their paths."""
    from jointdistill_core.checkpoint import atomic_write_bytes
    results_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = results_dir / f'{name}.json', results_dir / f'{name}.md'
    atomic_write_bytes(json_path, (json.dumps(_json_ready(report), indent=2) + '\n').encode())
    atomic_write_bytes(md_path, results_markdown(report).encode())
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
