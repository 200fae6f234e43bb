"""The tuning search of a study (`tuning` in the config): scores of the candidates on the
validation sets and the selected candidate, whose overrides the variants in
`tuning.apply_to` train with.

A candidate's score is its delta_m against the teachers over the validation sets' metrics
(`StudyConfig.tuning_keys`), mean over the tuning seeds; lower is better, the first
candidate in config order wins ties.
"""
from __future__ import annotations

import math

from jointdistill_core.study.config import StudyConfig, TuningCandidate
from jointdistill_core.study.results import summarize, teacher_baseline


def candidate_summary(config: StudyConfig, teachers: dict[str, dict],
                      records: dict[str, dict[int, dict]]) -> dict[str, dict]:
    """Per finished candidate (config order): per-seed metrics with delta_m over the
    validation metrics, mean and standard deviation over seeds (see results.summarize)."""
    keys = config.tuning_keys()
    order = [candidate.name for candidate in config.tuning.candidates]
    return summarize(records, teacher_baseline(teachers, keys), keys, order)


def selected_candidate(config: StudyConfig, teachers: dict[str, dict],
                       records: dict[str, dict[int, dict]]) -> TuningCandidate:
    """The candidate with the lowest mean validation delta_m (the first on ties). Every
    candidate must have finished every tuning seed with a defined score."""
    from jointdistill_core.study.runner import StudyError
    summary = candidate_summary(config, teachers, records)
    scores = {}
    for candidate in config.tuning.candidates:
        row = summary.get(candidate.name)
        if row is None or row['n'] < len(config.tuning.seeds):
            raise StudyError(f'tuning: candidate {candidate.name!r} has not finished every '
                             f'tuning seed')
        scores[candidate.name] = row['mean']['delta_m']
    defined = [name for name, score in scores.items() if math.isfinite(score)]
    if not defined:
        raise StudyError('tuning: no candidate has a defined validation delta_m (a teacher '
                         'metric is 0: train the teachers longer)')
    best = min(defined, key=lambda name: scores[name])  # min keeps the first of equals
    return next(candidate for candidate in config.tuning.candidates if candidate.name == best)
