"""`jointdistill study` end to end on a tiny mtan-format Cityscapes fixture, plus the finding
logic and config errors on hand-made numbers."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from conftest import REPO_ROOT
from jointdistill_core.cli import main
from jointdistill_core.config import ConfigError
from jointdistill_core.study.config import load_study_config, select_variants
from jointdistill_core.study.results import finding, finding_markdown

H, W = 64, 128
SEG_KEYS = ('miou', 'pixel_acc')
DEPTH_KEYS = ('abs_err', 'abs_rel', 'rmse', 'delta1')
HIGHER_IS_BETTER = {'miou': True, 'pixel_acc': True, 'abs_err': False, 'abs_rel': False,
                    'rmse': False, 'delta1': True}


def write_cityscapes_split(root: Path, split: str, count: int, seed: int) -> None:
    """mtan Cityscapes: image (H, W, 3) float [0, 1], label_7 float (-1 void), depth as
    stored disparity (H, W, 1) (0 = invalid). Scene: sky (class 4) on top, road (0) below,
    a vehicle (6) box; nearer rows have larger disparity."""
    rng = np.random.default_rng(seed)
    for folder in ('image', 'label_7', 'depth'):
        (root / split / folder).mkdir(parents=True)
    rows = np.arange(H, dtype=np.float32)[:, None].repeat(W, 1)
    for index in range(count):
        labels = np.where(rows < H // 3, 4.0, 0.0).astype(np.float32)
        left = int(rng.integers(0, W - 32))
        labels[H // 3:H // 3 + 16, left:left + 32] = 6.0
        labels[-2:, :] = -1.0
        image = np.zeros((H, W, 3), np.float32)
        image[labels == 4] = (0.5, 0.7, 0.95)
        image[labels == 0] = (0.35, 0.35, 0.35)
        image[labels == 6] = (0.8, 0.1, 0.1)
        image = np.clip(image + rng.normal(0, 0.03, image.shape), 0, 1).astype(np.float32)
        disparity = np.where(labels == 4, 0.0, 0.05 + 0.008 * (rows - H // 3).clip(0))
        np.save(root / split / 'image' / f'{index}.npy', image)
        np.save(root / split / 'label_7' / f'{index}.npy', labels)
        np.save(root / split / 'depth' / f'{index}.npy', disparity.astype(np.float32)[..., None])


def write_yaml(path: Path, mapping: dict) -> Path:
    path.write_text(yaml.safe_dump(mapping, sort_keys=False))
    return path


TINY_STUDENT = {'arch': 'student', 'kwargs': {'width_mult': 0.25,
                                              'decoder_channels': [16, 16, 16]}}
TINY_TEACHER = {'width': 8, 'blocks': [1, 1, 1, 1]}


@pytest.fixture
def tiny_study(tmp_path):
    """A Cityscapes-like mtan fixture, tiny training configs and a study config over them."""
    data = tmp_path / 'cityscapes'
    write_cityscapes_split(data, 'train', 6, seed=1)
    write_cityscapes_split(data, 'val', 4, seed=2)
    configs = tmp_path / 'train_configs'
    configs.mkdir()
    common = {'steps': 1, 'log_every': 1, 'device': 'cpu', 'optim': {'lr': 0.003}}
    write_yaml(configs / 'teacher_seg.yaml', {**common, 'task': 'seg', 'model': {
        'arch': 'seg_teacher', 'kwargs': TINY_TEACHER}})
    write_yaml(configs / 'teacher_depth.yaml', {**common, 'task': 'depth', 'model': {
        'arch': 'depth_teacher', 'kwargs': TINY_TEACHER}})
    write_yaml(configs / 'mtl.yaml', {**common, 'model': TINY_STUDENT, 'method': {'name': 'mtl'}})
    write_yaml(configs / 'jointdistill.yaml', {**common, 'model': TINY_STUDENT, 'method': {
        'name': 'jointdistill', 'params': {'eval_every': 1, 'probe_size': 2, 'topk': 8,
                                           'connector_channels': 8}}})
    teacher = {'steps': 6, 'batch_size': 2, 'val_every': 3,
               'set': ['optim.lr=0.01']}  # enough for a non-zero teacher mIoU
    notes = tmp_path / 'notes.md'
    notes.write_text('Tried `temperature` 1 and 2 on the fixture.\n')
    study = write_yaml(tmp_path / 'study.yaml', {
        'name': 'tiny cityscapes',
        'data': {'spec': 'synthetic', 'size': f'{H}x{W}', 'train_split': 'train',
                 'val_split': 'val', 'val_frames': 2},
        'tests': [{'name': 'test', 'split': 'val', 'frames': 4,
                   'metrics': list(HIGHER_IS_BETTER)}],
        'seeds': [0, 1],
        'teachers': {'seg': {'config': str(configs / 'teacher_seg.yaml'), **teacher},
                     'depth': {'config': str(configs / 'teacher_depth.yaml'), **teacher}},
        'student': {'steps': 3, 'batch_size': 2, 'val_every': 3},
        'variants': [
            {'name': 'mtl', 'config': str(configs / 'mtl.yaml')},
            {'name': 'jointdistill', 'config': str(configs / 'jointdistill.yaml')},
            {'name': 'jointdistill_no_fusion', 'config': str(configs / 'jointdistill.yaml'),
             'set': ['method.params.fusion=false']}],
        'evaluation': {'checkpoint': 'last', 'batch_size': 4, 'latency_repeats': 2,
                       'qualitative_frames': 2},
        'notes': str(notes),
    })
    return {'study': study, 'data': f'cityscapes:{data}', 'out': tmp_path / 'out',
            'results': tmp_path / 'docs'}


def independent_delta_m(metrics: dict, seg_teacher: dict, depth_teacher: dict) -> float:
    terms = []
    for key, higher in HIGHER_IS_BETTER.items():
        base = seg_teacher[key] if key in SEG_KEYS else depth_teacher[key]
        relative = (metrics[key] - base) / base * 100
        terms.append(-relative if higher else relative)
    return sum(terms) / len(terms)


def run_study_cli(tiny_study, *extra: str) -> int:
    torch.set_num_threads(1)
    return main(['study', '--config', str(tiny_study['study']), '--data', tiny_study['data'],
                 '--out', str(tiny_study['out']), '--results-dir', str(tiny_study['results']),
                 '--seeds', '0', '--only', 'mtl', 'jointdistill', '--no-progress', *extra])


def test_study_on_mtan_fixture_writes_consistent_results_and_skips_finished_runs(
        tiny_study, capsys):
    from jointdistill_core.study.runner import student_run
    from jointdistill_core.training import load_train_config, train
    # An interrupted run: the mtl student stopped after step 1 of 3 (before the study).
    config = load_study_config(tiny_study['study'], [f'data.spec={tiny_study["data"]}',
                                                     f'out={tiny_study["out"]}'])
    interrupted = student_run(config, config.variants[0], 0)
    train(load_train_config(interrupted.train_config, interrupted.overrides), progress=False,
          stop_at=1)
    assert not (interrupted.out_dir / 'done.json').exists()

    assert run_study_cli(tiny_study) == 0
    out, results_dir = tiny_study['out'], tiny_study['results']
    done = {name: json.loads((out / 'runs' / name / 'seed0' / 'done.json').read_text())
            for name in ('mtl', 'jointdistill')}
    assert done['mtl']['resumed'] is True and done['mtl']['steps'] == 3
    assert done['jointdistill']['resumed'] is False
    assert not (out / 'runs' / 'jointdistill_no_fusion').exists()  # not selected by --only
    assert not (out / 'runs' / 'mtl' / 'seed1').exists()  # --seeds 0 replaces the config's
    teachers = {task: json.loads((out / 'teachers' / task / 'done.json').read_text())['tests']
                ['test'] for task in ('seg', 'depth')}

    report = json.loads((results_dir / 'results.json').read_text())
    assert list(report['variants']) == ['mtl', 'jointdistill']
    for name, row in report['variants'].items():
        assert row['n'] == 1 and row['seeds'] == [0]
        expected = independent_delta_m(done[name]['tests']['test'], teachers['seg'],
                                       teachers['depth'])
        assert row['mean']['delta_m'] == pytest.approx(expected, rel=1e-9, abs=1e-9)
        for key in HIGHER_IS_BETTER:
            assert row['mean'][f'test/{key}'] == pytest.approx(done[name]['tests']['test'][key])
        assert row['std']['delta_m'] is None  # one seed: no spread
        assert row['params'] > 0 and row['latency_ms'] > 0
        assert '--set seed=0' in row['command'] and f'out={out}/runs/{name}/seed0' in row['command']
    assert 'teachers.seg.path' in report['variants']['jointdistill']['command']
    assert 'teachers.' not in report['variants']['mtl']['command']  # mtl needs no teacher
    winner = min(report['variants'], key=lambda name: independent_delta_m(
        done[name]['tests']['test'], teachers['seg'], teachers['depth']))
    assert report['finding']['winner'] == winner

    page = (results_dir / 'results.md').read_text()
    assert page.index('## The finding') < page.index('## The questions') \
        < page.index('## delta_m of every variant')
    notes_at = page.index('## Investigation notes\n\nTried `temperature` 1 and 2 on the fixture.')
    assert page.index('## The questions') < notes_at < page.index('## Setup')
    assert f'**Winner: `{winner}`**' in page
    for name in ('mtl', 'jointdistill'):
        row_sign = f'{report["variants"][name]["mean"]["delta_m"]:+.2f}'
        assert f'| `{name}` | {done[name]["method"]} | 1 | {row_sign} |' in page
    assert 'negative = better than the baseline' in page
    for figure in report['figures'].values():
        assert (results_dir / figure).read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert set(report['figures']) == {'weights', 'qualitative'}

    # A second invocation trains nothing: every run is skipped, no file rewritten.
    watched = [out / 'runs' / 'mtl' / 'seed0' / 'done.json',
               out / 'runs' / 'jointdistill' / 'seed0' / 'last.safetensors',
               out / 'teachers' / 'seg' / 'best.safetensors']
    stamps = [path.stat().st_mtime_ns for path in watched]
    capsys.readouterr()
    assert run_study_cli(tiny_study) == 0
    printed = capsys.readouterr().out
    assert printed.count('finished earlier, skipped') == 4
    assert [path.stat().st_mtime_ns for path in watched] == stamps


def test_parallel_jobs_train_the_same_runs_as_one_at_a_time(tiny_study, tmp_path, capsys):
    """--jobs 2: teachers side by side, then students, each in a worker process with one
    torch thread; training is deterministic on CPU, so every tested metric is identical."""
    assert run_study_cli(tiny_study) == 0
    parallel_out = tmp_path / 'parallel'
    capsys.readouterr()
    assert run_study_cli(tiny_study, '--jobs', '2', '--out', str(parallel_out),
                         '--results-dir', str(tmp_path / 'parallel_docs')) == 0
    printed = capsys.readouterr().out
    assert 'finished earlier' not in printed
    assert all(printed.count(f'[{k}/4] ') == 1 for k in range(1, 5))  # 2 teachers, 2 students
    folders = [Path('teachers') / task for task in ('seg', 'depth')]
    folders += [Path('runs') / name / 'seed0' for name in ('mtl', 'jointdistill')]
    for folder in folders:
        one_at_a_time = json.loads((tiny_study['out'] / folder / 'done.json').read_text())
        parallel = json.loads((parallel_out / folder / 'done.json').read_text())
        assert parallel['tests'] == one_at_a_time['tests'], folder
    report = json.loads((tmp_path / 'parallel_docs' / 'results.json').read_text())
    assert '--jobs 2' in report['setup']['command']


def summary_row(deltas: list[float]) -> dict:
    array = np.asarray(deltas)
    return {'mean': {'delta_m': float(array.mean())},
            'std': {'delta_m': float(array.std(ddof=1)) if len(deltas) > 1 else None},
            'n': len(deltas)}


def test_finding_ranks_by_delta_m_and_judges_two_standard_deviations():
    summary = {'mtl': summary_row([4.0, 5.0, 6.0]),          # mean 5, sd 1
               'static_kd': summary_row([1.0, 1.5, 2.0]),    # mean 1.5, sd 0.5
               'jointdistill': summary_row([-1.0, 0.0, 1.0])}  # mean 0, sd 1
    facts = finding(summary)
    assert facts['winner'] == 'jointdistill'
    assert facts['winner_margin'] == pytest.approx(1.5)
    # vs mtl: gain 5 > 2 * sqrt(1 + 1) = 2.83; vs static_kd: 1.5 < 2 * sqrt(1 + 0.25) = 2.24
    assert facts['gains']['mtl']['beyond_two_sd'] is True
    assert facts['gains']['static_kd']['beyond_two_sd'] is False
    assert facts['gains']['static_kd']['sd'] == pytest.approx(math.sqrt(1.25))
    assert facts['jointdistill_reaches_teachers'] is True  # mean 0 <= 0
    assert facts['reach_teachers'] == ['jointdistill']
    text = '\n'.join(finding_markdown(summary, facts))
    assert 'vs `static_kd`: delta_m 1.50 points lower (better); this is NOT' in text
    assert 'vs `mtl`: delta_m 5.00 points lower (better), a gain larger' in text


def test_finding_when_jointdistill_loses_and_has_one_seed():
    summary = {'static_kd': summary_row([-2.0]), 'jointdistill': summary_row([3.0])}
    facts = finding(summary)
    assert facts['winner'] == 'static_kd'
    assert facts['gains']['static_kd']['gain'] == pytest.approx(-5.0)
    assert facts['gains']['static_kd']['beyond_two_sd'] is None
    text = '\n'.join(finding_markdown(summary, facts))
    assert 'delta_m 5.00 points higher (worse); with one seed' in text
    assert 'does not reach its teachers: mean delta_m +3.00 %' in text


def test_bad_study_configs_name_the_key(tmp_path):
    base = {'teachers': {'seg': {'config': 'a.yaml'}, 'depth': {'config': 'b.yaml'}},
            'variants': [{'name': 'mtl', 'config': 'mtl.yaml'}],
            'tests': [{'name': 'test', 'metrics': ['miou']}]}
    path = write_yaml(tmp_path / 'study.yaml', base)
    with pytest.raises(ConfigError, match='student.stepz'):
        load_study_config(path, ['student.stepz=3'])
    with pytest.raises(ConfigError, match='variants: names must be unique, repeated: mtl'):
        load_study_config(path, ['variants=[{name: mtl, config: a}, {name: mtl, config: b}]'])
    with pytest.raises(ConfigError, match='data.size.*multiples of 32'):
        load_study_config(path, ['data.size=100x200'])
    with pytest.raises(ConfigError, match='jobs: must be >= 1, got 0'):
        load_study_config(path, ['jobs=0'])
    with pytest.raises(ConfigError, match='notes: no such file: missing.md'):
        load_study_config(path, ['notes=missing.md'])
    with pytest.raises(ConfigError, match='evaluation.qualitative_tests: .*: tset'):
        load_study_config(path, ['evaluation.qualitative_tests=[test, tset]'])
    with pytest.raises(ConfigError, match='evaluation.qualitative_tests: .*empty list'):
        load_study_config(path, ['evaluation.qualitative_tests=[]'])
    with pytest.raises(ConfigError, match='--only: unknown variant.*xdistil'):
        select_variants(load_study_config(path), ['xdistil'])
    assert main(['study', '--config', str(path), '--only', 'nope', '--no-progress']) == 2


@pytest.mark.parametrize('name', ['synthetic', 'smoke', 'cityscapes', 'nyuv2'])
def test_shipped_study_configs_load_and_reference_existing_train_configs(name):
    config = load_study_config(REPO_ROOT / 'config' / 'study' / f'{name}.yaml')
    paths = [variant.config for variant in config.variants]
    paths += [config.teachers.seg.config, config.teachers.depth.config]
    for path in paths:
        assert (REPO_ROOT / path).is_file(), f'{name}.yaml references missing {path}'
    if name in ('synthetic', 'cityscapes', 'nyuv2'):
        assert [v.name for v in config.variants] == [
            'mtl', 'static_kd', 'jointdistill', 'jointdistill_no_adaptive',
            'jointdistill_no_trajectory', 'jointdistill_no_fusion', 'sd_mtcnn', 'xdistill',
            'amalgamation']
        assert len(config.seeds) >= 3
