"""The real-data study (`config/study/real_smoke.yaml`) end to end on fixtures made here: a
tiny CamVid in the SegNet layout, tiny outdoor and indoor depth folders with per-frame K,
synthetic frames rendered on the fly. Every number the page and its JSON state is checked
against a computation from the runs' done.json files; plus the data-path errors, the
shipped real-study config, and the question logic on hand-made numbers."""
from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from conftest import REPO_ROOT
from jointdistill_core.cli import main
from jointdistill_core.config import ConfigError
from jointdistill_core.study.config import load_study_config
from jointdistill_core.study.questions import (
    depth_beyond_mtl,
    jointdistill_parts,
    parts_markdown,
    students_vs_teachers,
)
from jointdistill_core.study.runner import student_run, teacher_run
from jointdistill_core.training import load_train_config
from test_mixed_data import write_camvid

SMOKE = REPO_ROOT / 'config' / 'study' / 'real_smoke.yaml'
REAL = REPO_ROOT / 'config' / 'study' / 'real.yaml'
DELTA_M_KEYS = {('camvid', 'miou'): True, ('camvid', 'pixel_acc'): True,
                ('outdoor', 'abs_rel'): False, ('outdoor', 'delta1'): True,
                ('indoor', 'abs_rel'): False, ('indoor', 'delta1'): True}
TASK_OF = {'miou': 'seg', 'pixel_acc': 'seg', 'abs_rel': 'depth', 'delta1': 'depth'}


def write_depth_folder(root: Path, sizes: list[tuple[int, int]], focal: float, seed: int) -> Path:
    """The folder format with depth: rgb/<stem>.png, depth/<stem>.npy (metres, a geometric
    ramp from 0.5 m to 400 m so that any plausible prediction is right somewhere, every
    third pixel invalid), K/<stem>.npy. Frames of different sizes, like KITTI's."""
    rng = np.random.default_rng(seed)
    for folder in ('rgb', 'depth', 'K'):
        (root / folder).mkdir(parents=True)
    for index, (height, width) in enumerate(sizes):
        stem = f'frame_{index}'
        cv2.imwrite(str(root / 'rgb' / f'{stem}.png'),
                    rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
        depth = np.geomspace(0.5, 400.0, height * width).reshape(height, width)
        depth.flat[::3] = 0.0
        np.save(root / 'depth' / f'{stem}.npy', depth.astype(np.float32))
        K = np.array([[focal, 0, (width - 1) / 2], [0, focal, (height - 1) / 2], [0, 0, 1]])
        np.save(root / 'K' / f'{stem}.npy', K)
    return root


@pytest.fixture
def real_data(tmp_path) -> Path:
    """DIR/camvid, DIR/depth_outdoor, DIR/depth_indoor as --real-data expects them."""
    root = tmp_path / 'realdev'
    write_camvid(root / 'camvid', {'train': 4, 'val': 3}, size=(48, 64))
    write_depth_folder(root / 'depth_outdoor', [(40, 124), (42, 128)], focal=70.0, seed=1)
    write_depth_folder(root / 'depth_indoor', [(48, 64), (48, 64)], focal=52.0, seed=2)
    return root


def study_args(real_data: Path, out: Path, *extra: str) -> list[str]:
    return ['study', '--config', str(SMOKE), '--real-data', str(real_data),
            '--out', str(out / 'runs'), '--results-dir', str(out / 'docs'),
            '--only', 'mtl', 'jointdistill', '--jobs', '1', '--no-progress', *extra]


def done(path: Path) -> dict:
    return json.loads((path / 'done.json').read_text())


def recomputed_delta_m(metrics: dict, baseline: dict, keys) -> float:
    """Maninis et al.'s delta_m in percent, written out here."""
    terms = []
    for (test, metric), higher in keys.items():
        relative = (metrics[test][metric] - baseline[test][metric]) / baseline[test][metric]
        terms.append(-100 * relative if higher else 100 * relative)
    return sum(terms) / len(terms)


def constant_depth_reference(folder: Path) -> tuple[float, float]:
    """abs rel and delta1 of one constant depth per frame (its ground-truth median), pooled
    over the valid pixels of every frame at the frame's own resolution."""
    ratios, deltas = [], []
    for path in sorted((folder / 'depth').glob('*.npy')):
        truth = np.load(path).astype(np.float64)
        valid = truth[truth > 0]
        guess = np.median(valid)
        ratios.append(np.abs(guess - valid) / valid)
        deltas.append(np.maximum(guess / valid, valid / guess) < 1.25)
    return float(np.concatenate(ratios).mean()), float(np.concatenate(deltas).mean())


def test_real_study_page_and_json_are_computed_from_the_runs(real_data, tmp_path, monkeypatch,
                                                             capsys):
    monkeypatch.chdir(REPO_ROOT)  # the config names training configs relative to the root
    assert main(study_args(real_data, tmp_path)) == 0
    runs = tmp_path / 'runs'
    teachers = {task: done(runs / 'teachers' / task)['tests'] for task in ('seg', 'depth')}
    records = {name: {seed: done(runs / 'runs' / name / f'seed{seed}') for seed in (0, 1)}
               for name in ('mtl', 'jointdistill')}
    report = json.loads((tmp_path / 'docs' / 'results_real.json').read_text())
    page = (tmp_path / 'docs' / 'results_real.md').read_text()

    # Every run is scored on the four test sets, each on what it annotates.
    for seeds in records.values():
        for record in seeds.values():
            assert set(record['tests']) == {'camvid', 'outdoor', 'indoor', 'synthetic'}
            assert set(record['tests']['camvid']) == {'miou', 'pixel_acc'}
            assert 'miou' not in record['tests']['outdoor']
    assert set(teachers['seg']) == {'camvid', 'synthetic', 'validation'}
    assert set(teachers['depth']) == {'outdoor', 'indoor', 'synthetic', 'validation'}
    # The predictor protocol scores each frame at its own size: the constant-depth oracle,
    # which depends on the ground truth only, matches a computation from the files.
    for name in ('outdoor', 'indoor'):
        abs_rel, delta1 = constant_depth_reference(real_data / f'depth_{name}')
        assert teachers['depth'][name]['constant_abs_rel'] == pytest.approx(abs_rel, rel=1e-5)
        assert teachers['depth'][name]['constant_delta1'] == pytest.approx(delta1, rel=1e-5)

    # delta_m against the teachers and against mtl, per seed, mean and std over seeds.
    baseline = {test: teachers[TASK_OF[metric]][test] for test, metric in DELTA_M_KEYS}
    mtl_mean: dict[str, dict] = {test: {} for test, _ in DELTA_M_KEYS}
    for test, metric in DELTA_M_KEYS:
        mtl_mean[test][metric] = np.mean([records['mtl'][s]['tests'][test][metric]
                                          for s in (0, 1)])
    for name, seeds in records.items():
        row = report['variants'][name]
        expected = [recomputed_delta_m(seeds[s]['tests'], baseline, DELTA_M_KEYS) for s in (0, 1)]
        against_mtl = [recomputed_delta_m(seeds[s]['tests'], mtl_mean, DELTA_M_KEYS)
                       for s in (0, 1)]
        for seed in (0, 1):
            assert row['per_seed'][str(seed)]['delta_m'] == pytest.approx(expected[seed])
        assert row['mean']['delta_m'] == pytest.approx(np.mean(expected))
        assert row['std']['delta_m'] == pytest.approx(np.std(expected, ddof=1))
        assert row['mean']['delta_m_mtl'] == pytest.approx(np.mean(against_mtl), abs=1e-9)
        assert f'| `{name}` | {row["method"]} | 2 | {np.mean(expected):+.2f} ± ' \
               f'{np.std(expected, ddof=1):.2f} | {np.mean(against_mtl):+.2f} ± ' in page
    assert report['variants']['mtl']['mean']['delta_m_mtl'] == pytest.approx(0.0, abs=1e-9)

    # Question 1, from the numbers: outdoor delta1 of mtl and jointdistill, the gain in
    # standard deviations of the difference, and the 2-sd verdict.
    values = {name: [records[name][s]['tests']['outdoor']['delta1'] for s in (0, 1)]
              for name in records}
    gain = np.mean(values['jointdistill']) - np.mean(values['mtl'])
    sd = math.hypot(np.std(values['jointdistill'], ddof=1), np.std(values['mtl'], ddof=1))
    facts = report['questions']['depth_beyond_mtl']['comparisons']['jointdistill']
    assert facts['outdoor/delta1']['gain'] == pytest.approx(gain)
    assert facts['outdoor/delta1']['beyond_two_sd'] == bool(gain > 2 * sd)
    line = next(text for text in page.splitlines()
                if text.startswith('- outdoor depth (KITTI) delta1: '))
    assert f'`mtl` {100 * np.mean(values["mtl"]):.2f} ± {100 * np.std(values["mtl"], ddof=1):.2f}' \
        in line
    assert f'`jointdistill` (best distillation variant) ' \
           f'{100 * np.mean(values["jointdistill"]):.2f}' in line
    if sd > 0:
        assert f'{gain / sd:+.1f} standard deviations of the difference' in line
    verdicts = [facts[key]['beyond_two_sd'] for key in facts]
    assert ('**Yes.**' in page) == any(verdicts)

    # The tuning search: the selected candidate has the lowest validation delta_m, computed
    # here from the tuning runs, and the jointdistill students trained with its overrides.
    tuning_keys = {('validation', metric): higher for metric, higher in
                   (('miou', True), ('pixel_acc', True), ('abs_rel', False), ('delta1', True))}
    validation_baseline = {'validation': {**teachers['seg']['validation'],
                                          **teachers['depth']['validation']}}
    scores = {name: recomputed_delta_m(done(runs / 'tuning' / name / 'seed0')['tests'],
                                       validation_baseline, tuning_keys)
              for name in ('defaults', 'alpha_2')}
    selected = min(scores, key=scores.get)
    assert report['questions']['tuning']['selected'] == selected
    assert f'**Selected: `{selected}`**' in page
    alpha_set = '--set method.params.alpha=2.0'
    for seed in (0, 1):
        assert (alpha_set in records['jointdistill'][seed]['command']) == (selected == 'alpha_2')
        assert alpha_set not in records['mtl'][seed]['command']  # mtl is not tuned

    # Budget, figures, commands.
    students = report['budget']['students']
    assert students['runs'] == 4
    assert students['train_s'] == pytest.approx(sum(
        record['train_wall_time_s'] for seeds in records.values() for record in seeds.values()),
        abs=0.11)
    assert len(report['budget']['invocations']) == 1
    assert report['budget']['invocations'][0]['runs_trained'] == 8  # 2 teachers, 2 tuning, 4
    for figure in ('weights', 'qualitative'):
        assert (tmp_path / 'docs' / report['figures'][figure]).read_bytes()[:4] == b'\x89PNG'
    # Only the synthetic frames are drawn (the real frames' licences forbid publishing them).
    assert report['qualitative_tests'] == ['synthetic test split']
    assert ('The first frames of synthetic test split (not drawn: CamVid val, outdoor depth '
            '(KITTI), indoor depth (NYUv2 + Kinect)') in page
    assert records['jointdistill'][0]['command'] in page
    assert f'camvid:{real_data / "camvid"}' in records['mtl'][0]['command']

    # A test set added later is scored on every finished run without training again.
    config = yaml.safe_load(SMOKE.read_text())
    config['tests'].append({'name': 'extra', 'spec': '{synthetic}', 'split': 'val',
                            'frames': 2, 'tasks': ['seg'], 'metrics': []})
    extended = tmp_path / 'extended.yaml'
    extended.write_text(yaml.safe_dump(config))
    checkpoint = runs / 'runs' / 'mtl' / 'seed0' / 'best.safetensors'
    stamp = checkpoint.stat().st_mtime_ns
    capsys.readouterr()
    assert main(study_args(real_data, tmp_path)[:2] + [str(extended)]
                + study_args(real_data, tmp_path)[3:]) == 0
    printed = capsys.readouterr().out
    assert printed.count('scored on new test sets') == 4 + 1  # the students, the seg teacher
    assert printed.count('finished earlier, skipped') == 3  # depth teacher, tuning runs
    assert 'miou' in done(runs / 'runs' / 'mtl' / 'seed0')['tests']['extra']
    assert checkpoint.stat().st_mtime_ns == stamp


def test_missing_real_data_paths_are_errors_naming_the_key(real_data, tmp_path, monkeypatch,
                                                           capsys):
    monkeypatch.chdir(REPO_ROOT)
    with pytest.raises(ConfigError, match=r'paths\.camvid is not set .*--real-data DIR'):
        load_study_config(REAL)
    with pytest.raises(ConfigError, match=r'paths\.depth_outdoor: no such folder: /nowhere'):
        load_study_config(REAL, ['paths.depth_outdoor=/nowhere'], real_data=real_data)
    (real_data / 'depth_indoor').rename(tmp_path / 'elsewhere')
    assert main(study_args(real_data, tmp_path)) == 2
    error = capsys.readouterr().err
    assert 'paths.depth_indoor: no such folder' in error
    assert str(real_data / 'depth_indoor') in error
    # An explicit --set wins over --real-data, and a placeholder must name a path.
    config = load_study_config(REAL, [f'paths.depth_indoor={tmp_path / "elsewhere"}'],
                               real_data=real_data)
    assert config.tests[2].spec == f'folder:{tmp_path / "elsewhere"}'
    with pytest.raises(ConfigError, match=r'tests\[0\]\.spec: \{camvidd\} is not a key of paths'):
        load_study_config(REAL, ['tests=[{name: a, spec: "camvid:{camvidd}", metrics: [miou]}]',
                                 'evaluation.qualitative_tests=[a]'], real_data=real_data)


def test_shipped_real_study_config(real_data, monkeypatch):
    """config/study/real.yaml asks for what the study needs: the seven variants, 3 seeds,
    10x the synthetic study's student steps at 128x256 or more, amp and channels_last, two
    jobs, students with the teachers' camera convention, the four test sets, tuning of
    alpha, beta, K and direction applied to JointDistill and its ablations."""
    monkeypatch.chdir(REPO_ROOT)
    config = load_study_config(REAL, real_data=real_data)
    synthetic = load_study_config(REPO_ROOT / 'config' / 'study' / 'synthetic.yaml')
    assert [v.name for v in config.variants] == [
        'mtl', 'static_kd', 'amalgamation', 'jointdistill', 'jointdistill_no_adaptive',
        'jointdistill_no_trajectory', 'jointdistill_no_fusion']
    for variant in config.variants:
        assert (REPO_ROOT / variant.config).is_file()
    assert len(config.seeds) >= 3 and config.jobs == 2
    assert config.amp is True and config.channels_last is True
    assert config.student.steps >= 10 * synthetic.student.steps
    height, width = config.data.size_pixels()
    assert height >= 128 and width >= 256
    # Every student predicts depth for the depth teacher's camera, with its loss.
    depth_teacher = trained(teacher_run(config, 'depth'))
    assert depth_teacher.model.kwargs['canonical_focal_px'] == 300.0
    for variant in config.variants:
        student = trained(student_run(config, variant, 0))
        for key in ('canonical_focal_px', 'max_depth'):
            assert student.model.kwargs[key] == depth_teacher.model.kwargs[key], variant.name
        assert student.method.params['depth_loss'] == 'log_l1'
        assert student.amp and student.channels_last
    assert depth_teacher.method.params['depth_loss'] == 'log_l1'
    assert config.data.spec == f'synthetic@0.6,camvid:{real_data / "camvid"}@0.4'
    assert config.teachers.depth.spec == 'synthetic'  # depth labels only there
    assert config.teachers.seg.spec is None  # synthetic + CamVid
    protocols = {test.name: (test.protocol, test.metrics) for test in config.tests}
    assert protocols['outdoor'][0] == protocols['indoor'][0] == 'predictor'
    assert protocols['synthetic'][1] == []  # shown, not in delta_m
    assert config.delta_m_keys() == [f'{test}/{metric}' for test, metric in DELTA_M_KEYS]
    searched = {override.split('=')[0] for candidate in config.tuning.candidates
                for override in candidate.set}
    assert searched == {f'method.params.{knob}' for knob in
                        ('alpha', 'beta', 'eval_every', 'direction')}
    assert config.tuning.candidates[0].set == []  # the defaults win ties
    assert set(config.tuning.apply_to) == {v.name for v in config.variants
                                           if v.name.startswith('jointdistill')}
    assert not {(t.spec, t.split) for t in config.tuning.tests} & \
        {(t.spec, t.split) for t in config.tests}  # tuned on validation data only


def trained(run):
    """The training config a study run trains with."""
    return load_train_config(run.train_config, run.overrides)


def row(values: dict[str, list[float]]) -> dict:
    """A summary row with the mean and sample sd of each key's per-seed values."""
    return {'method': 'x', 'n': len(next(iter(values.values()))),
            'mean': {key: float(np.mean(v)) for key, v in values.items()},
            'std': {key: float(np.std(v, ddof=1)) if len(v) > 1 else None
                    for key, v in values.items()}}


def test_question_logic_on_hand_made_numbers():
    summary = {
        'mtl': {**row({'out/delta1': [0.20, 0.22, 0.24], 'out/abs_rel': [0.5, 0.5, 0.5],
                       'delta_m': [10.0, 11.0, 12.0]}), 'method': 'mtl'},
        # delta1 +0.10 with sd 0.02 each: difference sd 0.0283, 3.5 sds, beyond two.
        'jointdistill': row({'out/delta1': [0.30, 0.32, 0.34], 'out/abs_rel': [0.6, 0.5, 0.4],
                             'delta_m': [1.0, 2.0, 3.0]}),
        # delta1 +0.03: 1.06 sds, not beyond.
        'static_kd': row({'out/delta1': [0.23, 0.25, 0.27], 'out/abs_rel': [0.5, 0.5, 0.5],
                          'delta_m': [5.0, 6.0, 7.0]}),
        'jointdistill_no_fusion': row({'out/delta1': [0.3, 0.3, 0.3], 'out/abs_rel': [1, 1, 1],
                                       'delta_m': [1.5, 2.5, 3.5]}),
    }
    facts = depth_beyond_mtl(summary, ['out/delta1', 'out/abs_rel', 'cam/miou'])
    assert facts['keys'] == ['out/delta1', 'out/abs_rel']
    joint = facts['comparisons']['jointdistill']['out/delta1']
    assert joint['gain'] == pytest.approx(0.10)
    assert joint['sd'] == pytest.approx(math.hypot(0.02, 0.02))
    assert joint['z'] == pytest.approx(0.10 / math.hypot(0.02, 0.02))
    assert facts['comparisons']['static_kd']['out/delta1']['beyond_two_sd'] is False
    # abs rel is lower-is-better: the no-fusion ablation's 1.0 against 0.5 is a loss.
    assert facts['comparisons']['jointdistill_no_fusion']['out/abs_rel']['gain'] == \
        pytest.approx(-0.5)
    assert ('jointdistill', 'out/delta1') in facts['better_beyond_two_sd']
    assert facts['best'] == {'out/delta1': 'jointdistill', 'out/abs_rel': 'jointdistill'}

    trajectory = {'step': [10, 20], 'omega_seg': [0.9, 0.8], 'omega_depth': [1.1, 1.2]}
    parts = jointdistill_parts(summary, {0: trajectory, 1: {**trajectory, 'omega_seg': [1.0, 1.1],
                                                           'omega_depth': [1.0, 0.9]}})
    # delta_m 2 against static_kd's 6, sds 1 and 1: a gain of 4 > 2 x sqrt(2).
    assert parts['static']['gain'] == pytest.approx(4.0)
    assert parts['static']['beyond_two_sd'] is True
    # Removing fusion raises delta_m by 0.5 with a difference sd of sqrt(2): not carried.
    assert parts['parts']['jointdistill_no_fusion']['gain'] == pytest.approx(0.5)
    assert parts['carrying'] == []
    assert parts['weights']['omega_depth'] == {'final_mean': pytest.approx(1.05), 'min': 0.9,
                                               'max': 1.2}
    text = '\n'.join(parts_markdown(summary, parts))
    assert '**Yes**, JointDistill beats `static_kd`' in text
    assert ('Without the fusion connector (`jointdistill_no_fusion`): delta_m +2.00 ± 1.00 '
            'against +2.50 ± 1.00 %, 0.50 points worse without it (+0.4 standard deviations '
            'of the difference)') in text
    assert 'costs more than two standard deviations of the difference: none.' in text

    teachers = {'out/delta1': 0.25, 'out/abs_rel': 0.45}
    masters = students_vs_teachers(summary, teachers, ['out/delta1', 'out/abs_rel'])
    # jointdistill: delta1 0.32 > 0.25 by 0.07 > 2 x 0.02; abs rel 0.5 > 0.45: not better.
    assert masters['jointdistill'] == {'beats': ['out/delta1'], 'beyond_two_sd': ['out/delta1']}
    # static_kd: delta1 0.25 = teacher: not better.
    assert masters['static_kd'] == {'beats': [], 'beyond_two_sd': []}

