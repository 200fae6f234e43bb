"""The four questions a study page answers, each computed from the numbers only.

1. Does distillation move depth beyond what `mtl` learns (per depth metric in delta_m)?
2. Does JointDistill beat static multi-teacher distillation, and which of its parts carry
   the gain (ablations; teacher-weight trajectories)?
3. Does any student beat its own teachers?
4. What did the tuning search select?

A difference counts when it is larger than two standard deviations of the difference
(sqrt(sd_a^2 + sd_b^2), sample standard deviations over seeds); against a teacher (one run)
the student's own standard deviation is used. With one seed nothing is judged.
"""
from __future__ import annotations

import math
import shlex

from jointdistill_core.study.config import StudyConfig, metric_task
from jointdistill_core.study.results import (
    JOINTDISTILL,
    MTL,
    difference_sd,
    format_mean_std,
    format_metric,
    higher_is_better,
    metric_name,
)

ABLATIONS = {'jointdistill_no_adaptive': 'the adaptive teacher weights',
             'jointdistill_no_trajectory': 'the knowledge trajectory',
             'jointdistill_no_fusion': 'the fusion connector'}
STATIC = 'static_kd'
METRIC_WORDS = {'miou': 'mIoU', 'pixel_acc': 'pixel accuracy', 'abs_err': 'abs err',
                'abs_rel': 'abs rel', 'rmse': 'RMSE', 'delta1': 'delta1'}


def gain(key: str, new: float, old: float) -> float:
    """How much better `new` is than `old` in the metric's direction (> 0 = better)."""
    return new - old if higher_is_better(key) else old - new


def comparison(better: dict, worse: dict, key: str) -> dict:
    """`better` (a summary row) against `worse` on `key`: means, gain (> 0 = `better` is
    better; NaN when a value is undefined), sd of the difference, gain in those sds, beyond
    two sds (None with one seed or an undefined value)."""
    sd = difference_sd(better, worse, key)
    change = gain(key, better['mean'][key], worse['mean'][key])
    judged = sd is not None and math.isfinite(change) and math.isfinite(sd)
    return {'to': better['mean'][key], 'from': worse['mean'][key], 'gain': change, 'sd': sd,
            'z': change / sd if judged and sd > 0 else None,
            'beyond_two_sd': bool(change > 2 * sd) if judged else None}


def describe_key(config: StudyConfig, key: str) -> str:
    """'outdoor/delta1' -> 'outdoor depth (KITTI) delta1' (the test set's title)."""
    test, _, metric = key.rpartition('/')
    return f'{config.test_set(test).label()} {METRIC_WORDS.get(metric, metric)}'


def unit(key: str) -> str:
    """The unit a formatted metric is in: ' %' for rates, ' m' for metres."""
    name = metric_name(key)
    return ' %' if name in ('miou', 'pixel_acc', 'delta1') else \
        (' m' if name in ('abs_err', 'rmse') else '')


def format_gain(key: str, value: float) -> str:
    """A gain in the metric's units: points for percentages, metres, plain ratios."""
    units = ' points' if unit(key) == ' %' else unit(key)
    return f'{"+" if value >= 0 else "-"}{format_metric(key, abs(value))}{units}'


def _z_text(facts: dict) -> str:
    if not math.isfinite(facts['gain']):
        return 'undefined'
    if facts['sd'] is None:
        return 'spread unknown (one seed)'
    if facts['z'] is None:
        return 'no spread over seeds'
    return f'{facts["z"]:+.1f} standard deviations of the difference'


# 1. depth beyond mtl ---------------------------------------------------------------------------

def depth_beyond_mtl(summary: dict[str, dict], keys: list[str]) -> dict | None:
    """Every distillation variant against `mtl` on every depth metric in delta_m; None
    without `mtl` runs or depth metrics."""
    depth_keys = [key for key in keys if metric_task(key) == 'depth']
    if MTL not in summary or not depth_keys:
        return None
    distilled = [name for name, row in summary.items() if row['method'] != MTL]
    comparisons = {name: {key: comparison(summary[name], summary[MTL], key)
                          for key in depth_keys} for name in distilled}
    better = [(name, key) for name in distilled for key in depth_keys
              if comparisons[name][key]['beyond_two_sd']]
    worse = [(name, key) for name in distilled for key in depth_keys
             if comparisons[name][key]['sd'] is not None
             and comparisons[name][key]['gain'] < -2 * comparisons[name][key]['sd']]
    best = {}
    for key in depth_keys:
        defined = [name for name in distilled if math.isfinite(comparisons[name][key]['gain'])]
        if defined:
            best[key] = max(defined, key=lambda name: comparisons[name][key]['gain'])
    return {'keys': depth_keys, 'comparisons': comparisons, 'better_beyond_two_sd': better,
            'worse_beyond_two_sd': worse, 'best': best}


def depth_markdown(config: StudyConfig, summary: dict, teachers: dict, facts: dict | None
                   ) -> list[str]:
    """Sentences answering question 1."""
    if facts is None:
        return ['Not answerable: it needs finished `mtl` runs and depth metrics in delta_m.']
    if not facts['comparisons']:
        return ['Not answerable yet: no distillation variant has finished runs.']
    lines = []
    for key in facts['keys']:
        mtl_row = summary[MTL]
        text = (f'- {describe_key(config, key)}: `mtl` {format_mean_std(mtl_row, key)}'
                f'{unit(key)}')
        shown = [name for name in (JOINTDISTILL, facts['best'].get(key)) if name in summary]
        for name in dict.fromkeys(shown):
            item = facts['comparisons'][name][key]
            best = ' (best distillation variant)' if name == facts['best'].get(key) else ''
            text += (f'; `{name}`{best} {format_mean_std(summary[name], key)}{unit(key)} '
                     f'({format_gain(key, item["gain"])}, {_z_text(item)})')
        reference = _reference(config, teachers, key)
        lines.append(text + reference + '.')
    better, worse = facts['better_beyond_two_sd'], facts['worse_beyond_two_sd']
    judged = [(name, key) for name, rows in facts['comparisons'].items() for key in rows
              if rows[key]['z'] is not None]
    if better:
        answer = ('**Yes.** Better than `mtl` by more than two standard deviations of the '
                  'difference: ' + ', '.join(f'`{name}` on {describe_key(config, key)}'
                                              for name, key in better) + '.')
    elif not judged:
        one_seed = all(item['sd'] is None for rows in facts['comparisons'].values()
                       for item in rows.values())
        answer = ('**Not judged:** ' + ('one seed per variant, so the spread is unknown.'
                                        if one_seed else 'the values are undefined or do not '
                                        'vary over seeds.'))
    else:
        name, key = max(judged, key=lambda pair: facts['comparisons'][pair[0]][pair[1]]['z'])
        answer = (f'**No.** No distillation variant improves a depth metric on `mtl` by more '
                  f'than two standard deviations of the difference; the largest step is '
                  f'`{name}` on {describe_key(config, key)}, '
                  f'{facts["comparisons"][name][key]["z"]:+.1f} standard deviations.')
    if worse:
        answer += (' Worse than `mtl` beyond two standard deviations: '
                   + ', '.join(f'`{name}` on {describe_key(config, key)}'
                               for name, key in worse) + '.')
    return lines + ['', answer]


def _reference(config: StudyConfig, teachers: dict, key: str) -> str:
    test, _, metric = key.rpartition('/')
    teacher = teachers.get('depth', {}).get('tests', {}).get(test, {})
    text = ''
    if metric in teacher:
        text += f'; the depth teacher {format_metric(key, teacher[metric])}{unit(key)}'
    constant = teacher.get(f'constant_{metric}')
    if constant is not None:
        text += (f'; one constant depth per frame (an oracle) {format_metric(key, constant)}'
                 f'{unit(key)}')
    return text


# 2. JointDistill against static distillation, and its parts ------------------------------------

def jointdistill_parts(summary: dict[str, dict], trajectories: dict[int, dict]) -> dict:
    """JointDistill against `static_kd` on delta_m (gain > 0: JointDistill is better), each
    ablation's change of delta_m (> 0: removing the part makes delta_m worse, so the part
    carries a gain), and the teacher weights at the end of training."""
    parts, static = {}, None
    if JOINTDISTILL in summary:
        if STATIC in summary:
            static = comparison(summary[JOINTDISTILL], summary[STATIC], 'delta_m')
        for name, part in ABLATIONS.items():
            if name in summary:
                item = comparison(summary[JOINTDISTILL], summary[name], 'delta_m')
                parts[name] = {**item, 'part': part}
    return {'static': static, 'parts': parts,
            'carrying': [name for name, item in parts.items() if item['beyond_two_sd']],
            'weights': weight_summary(trajectories)}


def weight_summary(trajectories: dict[int, dict]) -> dict | None:
    """Final omega_seg / omega_depth (mean over seeds) and their range over training."""
    if not trajectories:
        return None
    final = {key: [trajectory[key][-1] for trajectory in trajectories.values()]
             for key in ('omega_seg', 'omega_depth')}
    everything = {key: [value for trajectory in trajectories.values() for value in trajectory[key]]
                  for key in ('omega_seg', 'omega_depth')}
    return {key: {'final_mean': sum(final[key]) / len(final[key]),
                  'min': min(everything[key]), 'max': max(everything[key])}
            for key in final} | {'seeds': len(trajectories)}


def _change_line(summary: dict, label: str, other: str, item: dict, effect_if_gain: str,
                 effect_if_loss: str) -> str:
    """'- LABEL: delta_m A against B, X points EFFECT (z sds)' for a `comparison` of
    jointdistill (better side) against `other` on delta_m."""
    if not math.isfinite(item['gain']):
        return f'- {label}: delta_m undefined (a teacher metric is 0).'
    effect = effect_if_gain if item['gain'] > 0 else effect_if_loss
    return (f'- {label}: delta_m {format_mean_std(summary[JOINTDISTILL], "delta_m")} against '
            f'{format_mean_std(summary[other], "delta_m")} %, {abs(item["gain"]):.2f} points '
            f'{effect} ({_z_text(item)}).')


def parts_markdown(summary: dict, facts: dict) -> list[str]:
    """Sentences answering question 2."""
    if JOINTDISTILL not in summary:
        return ['Not answerable yet: `jointdistill` has no finished runs.']
    lines = []
    static = facts['static']
    if static is not None:
        lines.append(_change_line(summary, '`jointdistill` against `static_kd`', STATIC, static,
                                  'better', 'worse'))
    for name, item in facts['parts'].items():
        lines.append(_change_line(summary, f'Without {item["part"]} (`{name}`)', name, item,
                                  'worse without it', 'better without it'))
    weights = facts['weights']
    if weights is not None:
        lines.append(f'- Teacher weights ({weights["seeds"]} seed(s), figure below): omega_seg '
                     f'ends at {weights["omega_seg"]["final_mean"]:.3f} and omega_depth at '
                     f'{weights["omega_depth"]["final_mean"]:.3f} (they start at 1 and sum to '
                     f'2); over training omega_depth ranged '
                     f'{weights["omega_depth"]["min"]:.3f}-{weights["omega_depth"]["max"]:.3f}.')
    if static is None:
        answer = '**Not answerable:** `static_kd` has no finished runs'
    elif static['beyond_two_sd'] is None:
        answer = ('**Not judged:** one seed, or delta_m undefined, so the difference to '
                  '`static_kd` has no spread to compare with')
    elif static['beyond_two_sd']:
        answer = ('**Yes**, JointDistill beats `static_kd` by more than two standard deviations '
                  'of the difference')
    else:
        answer = ('**No**, JointDistill does not beat `static_kd` by more than two standard '
                  'deviations of the difference')
    if not facts['parts']:
        return lines + ['', answer + '. No ablation has finished runs.']
    if all(item['beyond_two_sd'] is None for item in facts['parts'].values()):
        return lines + ['', answer + '. The ablations are not judged either (one seed, or '
                                     'delta_m undefined).']
    carrying = [f'{facts["parts"][name]["part"]} (`{name}`)' for name in facts['carrying']]
    answer += ('. Parts whose removal costs more than two standard deviations of the '
               'difference: ' + (', '.join(carrying) if carrying else 'none') + '.')
    return lines + ['', answer]


# 3. students against their own teachers --------------------------------------------------------

def students_vs_teachers(summary: dict[str, dict], baseline: dict[str, float],
                         keys: list[str]) -> dict:
    """Per variant, the delta_m metrics on which its mean beats the teacher of that metric,
    and those where it does by more than two of its own standard deviations."""
    facts = {}
    for name, row in summary.items():
        beats, beyond = [], []
        for key in keys:
            change = gain(key, row['mean'][key], baseline[key])
            if not math.isfinite(change) or change <= 0:
                continue
            beats.append(key)
            sd = row['std'][key]
            if sd is not None and change > 2 * sd:
                beyond.append(key)
        facts[name] = {'beats': beats, 'beyond_two_sd': beyond}
    return facts


def master_markdown(config: StudyConfig, summary: dict, baseline: dict, facts: dict,
                    reach: list[str]) -> list[str]:
    """Sentences answering question 3."""
    if not summary:
        return ['Not answerable yet: no finished runs.']
    lines = []
    for name, item in facts.items():
        if not item['beats']:
            continue
        details = ', '.join(
            f'{describe_key(config, key)} {format_mean_std(summary[name], key)}{unit(key)} vs '
            f'{format_metric(key, baseline[key])}{unit(key)}'
            + (' (beyond 2 sd)' if key in item['beyond_two_sd'] else '')
            for key in item['beats'])
        lines.append(f'- `{name}` beats its teacher on {details}.')
    masters = [name for name, item in facts.items() if item['beyond_two_sd']]
    if masters:
        named = [f'`{name}` ('
                 + ', '.join(describe_key(config, key) for key in facts[name]['beyond_two_sd'])
                 + ')' for name in masters]
        answer = ('**Yes, on some metrics:** ' + ', '.join(named) + ' beat the teacher by more '
                  'than two of their own standard deviations over seeds.')
    else:
        answer = ('**No.** No student beats its teacher on a delta_m metric by more than two of '
                  'its own standard deviations over seeds.')
    answer += (' Over all delta_m metrics (delta_m <= 0): '
               + (', '.join(f'`{name}`' for name in reach) if reach else 'no variant') + '.')
    return (lines or ['- No variant beats a teacher on any delta_m metric.']) + ['', answer]


# 4. the tuning record --------------------------------------------------------------------------

def tuning_facts(config: StudyConfig, teachers: dict, records: dict,
                 runs: dict[str, dict[int, dict]]) -> dict | None:
    """Scores of the tuning candidates, the selection, what it was scored on, and whether
    the finished runs of the variants it applies to trained with it."""
    from jointdistill_core.study.tuning import candidate_summary, selected_candidate
    if config.tuning is None:
        return None
    summary = candidate_summary(config, teachers, records)
    facts = {'candidates': summary, 'keys': config.tuning_keys(), 'selected': None,
             'overlapping_tests': _overlapping_tests(config), 'stale_runs': {}}
    try:
        winner = selected_candidate(config, teachers, records)
    except RuntimeError:  # StudyError: not every candidate has finished
        return facts
    facts['selected'] = winner.name
    expected = [f'--set {shlex.quote(override)}' for override in winner.set]
    for name in config.tuning.apply_to:
        stale = [seed for seed, record in runs.get(name, {}).items()
                 if not all(text in record['command'] for text in expected)]
        if stale:
            facts['stale_runs'][name] = sorted(stale)
    return facts


def _overlapping_tests(config: StudyConfig) -> list[str]:
    """Validation sets that are also test sets (same data and split)."""
    used = {(test.spec or config.data.spec, test.split) for test in config.tests}
    return [test.name for test in config.tuning.tests
            if (test.spec or config.data.spec, test.split) in used]


def tuning_markdown(config: StudyConfig, facts: dict | None) -> list[str]:
    """The tuning record: every candidate's validation scores and the selection."""
    if facts is None:
        return ['No tuning search is configured (`tuning`): the variants train with the '
                'values of their configs.']
    tuning = config.tuning
    sets = ', '.join(f'{test.label()} (`{test.spec or config.data.spec}`, split '
                     f'`{test.split}`, {test.protocol} protocol)' for test in tuning.tests)
    lines = [f'Candidates train as `{tuning.variant}` plus their overrides, with the study\'s '
             f'teachers and budget, seeds {", ".join(map(str, tuning.seeds))}; each is scored '
             f'by its delta_m against the teachers over '
             f'{", ".join(describe_key(config, key) for key in facts["keys"])} on {sets} '
             f'(lower is better; the first candidate wins ties).']
    if facts['overlapping_tests']:
        lines.append(f'Warning: the validation set(s) {", ".join(facts["overlapping_tests"])} '
                     'are also test sets, so the selected variant\'s test numbers are '
                     'optimistic.')
    else:
        lines.append('No validation set is a test set.')
    lines += ['', '| candidate | overrides | seeds | validation delta_m (%) | '
              + ' | '.join(describe_key(config, key) for key in facts['keys']) + ' |',
              '|---|---|---|---|' + '---|' * len(facts['keys'])]
    for candidate in tuning.candidates:
        row = facts['candidates'].get(candidate.name)
        mark = ' **(selected)**' if candidate.name == facts['selected'] else ''
        overrides = ', '.join(f'`{override}`' for override in candidate.set) or '-'
        if row is None:
            lines.append(f'| `{candidate.name}` | {overrides} | not run | | '
                         + ' | ' * len(facts['keys']))
            continue
        cells = [format_mean_std(row, key) for key in ('delta_m', *facts['keys'])]
        lines.append(f'| `{candidate.name}`{mark} | {overrides} | '
                     f'{", ".join(map(str, row["seeds"]))} | ' + ' | '.join(cells) + ' |')
    lines.append('')
    if facts['selected'] is None:
        lines.append('Not every candidate has finished, so nothing is selected yet.')
        return lines
    winner = next(c for c in tuning.candidates if c.name == facts['selected'])
    applied = ', '.join(f'`{name}`' for name in tuning.apply_to) or 'no variant'
    lines.append(f'**Selected: `{winner.name}`** (validation delta_m '
                 f'{format_mean_std(facts["candidates"][winner.name], "delta_m")} %). '
                 f'{applied} train with its overrides '
                 f'({", ".join(f"`{o}`" for o in winner.set) or "none"}) after their own.')
    for name, seeds in facts['stale_runs'].items():
        lines.append(f'Warning: the finished runs of `{name}` (seeds {", ".join(map(str, seeds))}) '
                     'were trained without the selected overrides: delete them and run the '
                     'study again.')
    return lines
