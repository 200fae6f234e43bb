"""Aggregates finished study runs: metrics per test set, delta_m, means over seeds, and the
top-level finding.

Metrics are keyed 'test/metric' (e.g. 'camvid/miou', 'outdoor/delta1'). delta_m of a student
run is measured against the single-task teachers over the metrics the test sets contribute
(`StudyConfig.delta_m_keys`): segmentation metrics against the segmentation teacher's on the
same test set, depth metrics against the depth teacher's (`jointdistill_core.metrics.delta_m`,
in percent; NEGATIVE = BETTER than the teachers). delta_m against `mtl` uses the mean over
seeds of `mtl`'s metrics as the baseline. Means and sample standard deviations (n - 1) are
over seeds.
"""
from __future__ import annotations

import math

import numpy as np

from jointdistill_core.metrics import METRIC_DIRECTIONS, delta_m
from jointdistill_core.study.config import metric_task

SIGN_NOTE = ('delta_m is the mean relative difference to the baseline in percent (Maninis et '
             'al. 2019); negative = better than the baseline, positive = worse.')
BASELINES = ('static_kd', 'mtl')
JOINTDISTILL = 'jointdistill'
MTL = 'mtl'


def metric_name(key: str) -> str:
    """'outdoor/delta1' -> 'delta1'."""
    return key.rpartition('/')[2]


def higher_is_better(key: str) -> bool:
    """Direction of a keyed metric ('camvid/miou' -> True) or of delta_m (False)."""
    name = metric_name(key)
    return False if name.startswith('delta_m') else METRIC_DIRECTIONS[name]


def flat_metrics(record: dict) -> dict[str, float]:
    """{'test/metric': value} of a done.json record (None, JSON's NaN, becomes NaN)."""
    return {f'{test}/{key}': math.nan if value is None else float(value)
            for test, metrics in record['tests'].items() for key, value in metrics.items()}


def teacher_baseline(teachers: dict[str, dict], keys: list[str]) -> dict[str, float]:
    """The delta_m baseline: each metric of `keys` from the teacher of its task (NaN when
    that teacher was not scored on it)."""
    flat = {task: flat_metrics(record) for task, record in teachers.items()}
    return {key: flat[metric_task(key)].get(key, math.nan) for key in keys}


def keyed_delta_m(metrics: dict[str, float], baseline: dict[str, float],
                  keys: list[str]) -> float:
    """delta_m in percent over `keys`; NaN when undefined (a missing metric, or a baseline
    of 0 or NaN, e.g. a teacher whose mIoU is 0 after too short a training)."""
    try:
        return delta_m({key: metrics.get(key, math.nan) for key in keys}, baseline,
                       {key: higher_is_better(key) for key in keys})
    except ValueError:
        return math.nan


def mean_std(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (n - 1; None for one value); NaN in -> NaN out."""
    array = np.asarray(values, np.float64)
    return float(array.mean()), float(array.std(ddof=1)) if array.size > 1 else None


def _aggregate(per_seed: dict[int, dict[str, float]]) -> tuple[dict, dict]:
    keys = set.intersection(*(set(metrics) for metrics in per_seed.values()))
    mean, std = {}, {}
    for key in sorted(keys):
        mean[key], std[key] = mean_std([metrics[key] for metrics in per_seed.values()])
    return mean, std


def summarize(runs: dict[str, dict[int, dict]], baseline: dict[str, float], keys: list[str],
              order: list[str]) -> dict[str, dict]:
    """Per variant (in `order`, only those with finished runs): per-seed metrics with
    'delta_m' (against `baseline` over `keys`) and, when `mtl` has finished runs,
    'delta_m_mtl' (against the mean of mtl's metrics); their mean and standard deviation
    over seeds."""
    summary = {}
    for name in order:
        seeds = runs.get(name)
        if not seeds:
            continue
        per_seed = {}
        for seed in sorted(seeds):
            metrics = flat_metrics(seeds[seed])
            metrics['delta_m'] = keyed_delta_m(metrics, baseline, keys)
            per_seed[seed] = metrics
        first = seeds[min(seeds)]
        summary[name] = {'method': first['method'], 'n': len(per_seed),
                         'seeds': sorted(per_seed), 'per_seed': per_seed,
                         'command': first['command'], 'reproduce_seed': min(seeds)}
    if MTL in summary:
        mtl_mean, _ = _aggregate(summary[MTL]['per_seed'])
        mtl_baseline = {key: mtl_mean.get(key, math.nan) for key in keys}
        for row in summary.values():
            for metrics in row['per_seed'].values():
                metrics['delta_m_mtl'] = keyed_delta_m(metrics, mtl_baseline, keys)
    for row in summary.values():
        row['mean'], row['std'] = _aggregate(row['per_seed'])
    return summary


def difference_sd(first: dict, second: dict, key: str = 'delta_m') -> float | None:
    """Standard deviation of the difference of two variants' single-seed values of `key`."""
    if first['std'].get(key) is None or second['std'].get(key) is None:
        return None
    return math.hypot(first['std'][key], second['std'][key])


def finding(summary: dict[str, dict]) -> dict:
    """The study's top-level conclusions, computed from the numbers only."""
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
            spread = difference_sd(joint, summary[other])
            facts['gains'][other] = {
                'gain': gain, 'sd': spread,
                'beyond_two_sd': None if spread is None else bool(gain > 2 * spread)}
    return facts


def signed(value: float) -> str:
    """'+1.23' / '-0.50'."""
    return f'{value:+.2f}'


def finding_markdown(summary: dict[str, dict], facts: dict) -> list[str]:
    """Sentences of "The finding", generated from `facts` (see `finding`)."""
    if 'winner' not in facts:
        return ['No finished run has a defined delta_m (no runs yet, or a teacher metric is '
                '0: train the teachers longer).']
    lines = []
    winner = facts['winner']
    sentence = (f'- **Winner: `{winner}`** with delta_m '
                f'{format_mean_std(summary[winner], "delta_m")} % '
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
            lines.append(text + significance(gain['gain'], gain['sd']))
        reaches = facts['jointdistill_reaches_teachers']
        lines.append(f'- The `jointdistill` student {"reaches" if reaches else "does not reach"} '
                     f'its teachers: mean delta_m {signed(facts["jointdistill_delta_m"])} % '
                     f'({"<=" if reaches else ">"} 0).')
    if facts['undefined_delta_m']:
        lines.append('- delta_m is undefined (a teacher metric is 0) for: '
                     + ', '.join(f'`{name}`' for name in facts['undefined_delta_m']) + '.')
    reached = facts['reach_teachers']
    lines.append('- Variants at or better than the teachers (delta_m <= 0): '
                 + (', '.join(f'`{name}`' for name in reached) if reached else 'none') + '.')
    return lines


def significance(gain: float, sd: float | None) -> str:
    """The end of a comparison sentence: is `gain` (> 0 = better) beyond two standard
    deviations `sd` of the difference?"""
    if sd is None:
        return '; with one seed the spread is unknown, so significance is not judged.'
    if gain > 2 * sd:
        return (f', a gain larger than two standard deviations of the difference '
                f'(2 x {sd:.2f} = {2 * sd:.2f}).')
    return (f'; this is NOT a gain larger than two standard deviations of the difference '
            f'(2 x {sd:.2f} = {2 * sd:.2f}).')


PERCENT_METRICS = ('miou', 'pixel_acc', 'delta1', 'delta2', 'delta3', 'constant_delta1')
METRE_METRICS = ('abs_err', 'rmse')


def format_metric(key: str, value: float | None) -> str:
    """A metric as the page prints it: percent for rates, metres with 4 decimals, a signed
    number for delta_m; n/a when undefined."""
    if value is None or not math.isfinite(value):
        return 'n/a'
    name = metric_name(key)
    if name in PERCENT_METRICS:
        return f'{100 * value:.2f}'
    if name.startswith('delta_m'):
        return signed(value)
    return f'{value:.4f}'


def format_mean_std(row: dict, key: str) -> str:
    """'mean ± std' of a summary row in the units of `format_metric`."""
    mean, std = row['mean'].get(key), row['std'].get(key)
    text = format_metric(key, mean)
    if std is not None and math.isfinite(std) and text != 'n/a':
        name = metric_name(key)
        if name in PERCENT_METRICS:
            text += f' ± {100 * std:.2f}'
        elif name.startswith('delta_m'):
            text += f' ± {std:.2f}'
        else:
            text += f' ± {std:.4f}'
    return text
