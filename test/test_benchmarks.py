"""Smoke runs of the benchmark suite (`make bench`) with tiny sizes and rounds: every code path
runs and writes what docs/benchmarks.json promises. No timing thresholds: only structure and
behaviour that holds by a wide margin (the peer pair has 14x the student's parameters and
costs ~10x its CPU time; a network never beats the machine's matrix-multiply peak; the
shipped Fast DDS profile loses no frame at 30 Hz)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from benchmarks import bench_batching, run
from benchmarks.bench_models import load_network
from benchmarks.bench_training import benchmark_training, render_training_markdown
from conftest import REPO_ROOT
from jointdistill_core.models.profile import count_flops

torch.set_num_threads(1)


def test_network_benchmark_writes_json_and_markdown(tmp_path):
    assert run.main(['--sizes', '64x128', '--rounds', '2', '--skip-node', '--skip-training',
                     '--hot-path-repeats', '1', '--out', str(tmp_path)]) == 0
    results = json.loads((tmp_path / 'benchmarks.json').read_text())
    assert set(results['latency_ms']) == {'64x128'}
    assert set(results['latency_ms']['64x128']) == {'student', 'teachers', 'peer_pair'}
    assert 'node' not in results and 'node_overhead_ms' not in results
    assert results['machine']['cpu_cores'] >= 1 and results['device'] == 'cpu'
    entry = results['models']['sizes']['64x128']
    for name in ('student', 'student_torch', 'teachers', 'teachers_torch', 'peer_pair'):
        timing = entry[name]
        assert timing['runs'] == 2
        assert 0 < timing['min_ms'] <= timing['median_ms'] <= timing['p95_ms']
    for name, latency in results['latency_ms']['64x128'].items():
        assert latency == pytest.approx(entry[name]['median_ms'], abs=0.01)
    assert results['models']['backend'] == 'onnxruntime'
    parameters = results['models']['parameters']
    assert parameters['peer_pair'] > parameters['teachers'] > parameters['student'] > 0
    assert entry['peer_pair']['cpu_ms_median'] > entry['student']['cpu_ms_median']
    ratio = entry['ratios']['peer_pair/student']
    assert ratio['min'] <= ratio['median'] <= ratio['max']
    compute = entry['student_compute']
    # The network measured is the student at this size, and no network outruns the measured
    # matrix-multiply peak: a unit slip (ms for s, FLOPs for GFLOPs) lands far outside (0, 1).
    student, _ = load_network('student')
    assert compute['gflops_per_frame'] == pytest.approx(count_flops(student, (64, 128)) / 1e9,
                                                        abs=1e-3)
    assert 0 < compute['fraction_of_matmul_peak'] < 1
    assert 0 < compute['achieved_gflops'] < results['models']['matmul_peak_gflops']
    names = {target['target'] for target in results['targets']}
    assert any('peer pair at 64x128' in name for name in names)
    assert not any('node' in name for name in names)  # no node run, no node targets
    steps = results['hot_path_cpu_ms']
    assert all(ms >= 0 for ms in steps.values()) and 'Predictor (onnxruntime)' in steps
    assert results['jpeg_decode_ms'] == steps['decode JPEG CompressedImage (quality 90)'] > 0
    # The network dominates a frame: every other step costs less than the Predictor.
    assert max(ms for name, ms in steps.items() if not name.startswith('Predictor')) < \
        min(ms for name, ms in steps.items() if name.startswith('Predictor'))
    batching = results['batching']
    assert list(batching['counts']) == ['1', '2', '4']
    assert (batching['backend'], batching['precision'], batching['clock']) == \
        ('onnxruntime', 'fp32', 'CPU time')
    for count, row in batching['counts'].items():
        assert row['batched_ms_per_frame'] == pytest.approx(row['batched_ms'] / int(count),
                                                            abs=0.01)
        assert 0 < row['speedup']['min'] <= row['speedup']['median'] <= row['speedup']['max']
    markdown = (tmp_path / 'benchmarks.md').read_text()
    assert '| 64x128 |' in markdown and 'No GPU figures' in markdown
    assert '| 4 | ' in markdown.split('## Multi-camera batching in the Predictor')[1]
    # The figures recorded on a GPU machine (docs/benchmarks_cuda_batching.json) are shown.
    recorded = json.loads(run.CUDA_BATCHING.read_text())
    assert f"### On {recorded['machine']['gpu']}" in markdown


def test_bad_arguments_are_refused():
    with pytest.raises(SystemExit) as exit_info:
        run.main(['--rounds', '0'])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        bench_batching.main(['--rounds', '0'])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit):
        run.main(['--sizes', '256by512'])


def test_targets_are_judged_from_the_recorded_figures():
    def ratio(value: float) -> dict:
        return {'median': value, 'min': value, 'max': value}

    results = {
        'models': {'sizes': {'256x512': {
            'ratios': {'peer_pair/student': ratio(12.5), 'teachers/student': ratio(2.9)},
            'student_compute': {'fraction_of_matmul_peak': 0.31}}}},
        'node': {'transport': {'shipped Fast DDS profile': {'processed_fps': 19.5}},
                 'overhead': {'depth+labels': {'overhead_fraction': 0.08}}},
    }
    verdicts = {t['target'].split(' (')[0].split(',')[0]: t['holds']
                for t in run.evaluate_targets(results)}
    assert verdicts == {'student vs peer pair at 256x512': True,
                        'student vs both teachers at 256x512': False,
                        'student compute efficiency at 256x512': True,
                        'frames/s through the node': False,
                        'node overhead': True}


def test_training_cost_runs_every_method_through_the_trainer():
    results = benchmark_training(methods=('mtl', 'jointdistill', 'amalgamation'), size=(32, 64),
                                 batch_size=2, rounds=1)
    assert list(results['methods']) == ['mtl', 'jointdistill', 'amalgamation']
    for method, row in results['methods'].items():
        assert 0 < row['step_s_min'] <= row['step_s_median'] and row['images_per_s'] > 0
    assert results['methods']['mtl']['cost_vs_mtl'] == 1.0
    assert results['methods']['mtl']['teachers'] == []
    assert results['methods']['jointdistill']['teachers'] == ['seg', 'depth']
    assert not torch.are_deterministic_algorithms_enabled()  # the trainer's switch undone
    table = render_training_markdown(results)
    assert sum(line.startswith('| jointdistill |') for line in table) == 1


def in_own_process(module: str, call: str) -> dict:
    """The JSON result of `module.call` run in its own process, as `make bench` runs it: Fast
    DDS reads FASTDDS_DEFAULT_PROFILES_FILE once per process, so after another test has used
    DDS here a benchmark's in-process probe would keep that test's transports and not the
    shipped profile."""
    code = f'import json; import {module} as bench; print(json.dumps(bench.{call}))'
    result = subprocess.run([sys.executable, '-c', code], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.ros
@pytest.mark.slow
def test_node_benchmark_measures_overhead_and_transport():
    from benchmarks.bench_node import OUTPUT_SETS, render_node_markdown

    node = in_own_process('benchmarks.bench_node',
                          'benchmark_node(overhead_frames=1, transport_frames=6)')
    assert set(node['overhead']) == set(OUTPUT_SETS)
    for row in node['overhead'].values():
        assert row['frames'] == 1 and row['predictor_ms_median'] > 0
        # The overhead is what the node adds around the network, never the whole latency.
        assert row['overhead_ms_median'] < row['latency_ms_median']
        assert row['node_peak_rss_mb'] > 50  # the node process itself, with torch loaded
    assert node['overhead_ms'] == node['overhead']['depth+labels']['overhead_ms_median']
    # The shipped profile's point: 640x480 frames at 30 Hz across processes, none lost
    # (Fast DDS defaults lost about 85 % here, DESIGN section 3).
    shipped = node['transport']['shipped Fast DDS profile']
    assert shipped['sent'] == shipped['received'] == 6 and shipped['lost_fraction'] == 0
    assert 1 <= shipped['processed'] <= shipped['received']
    assert any(line.startswith('| shipped Fast DDS profile |')
               for line in render_node_markdown(node))


@pytest.mark.ros
@pytest.mark.slow
def test_cameras_benchmark_compares_one_node_with_one_node_per_camera():
    from benchmarks.bench_cameras import SETUPS, render_cameras_markdown

    cameras = in_own_process('benchmarks.bench_cameras',
                             'benchmark_cameras(counts=(2,), seconds=2)')
    rows = cameras['counts']['2']
    assert list(rows) == list(SETUPS)
    assert (rows['one node']['processes'], rows['one node per camera']['processes']) == (1, 2)
    for row in rows.values():
        # Every camera answered in the window; the totals add up.
        assert 0 < row['fps_per_camera_min'] <= row['fps_per_camera']
        assert row['fps_total'] == pytest.approx(2 * row['fps_per_camera'], abs=0.02)
        assert row['latency_ms_median'] > 0 and row['cpu_ms_per_frame'] > 0
    # One network in one process against two: the memory of a whole node process less.
    assert rows['one node']['peak_rss_mb_total'] < 0.75 * rows['one node per camera'][
        'peak_rss_mb_total']
    assert sum(line.startswith('| 2 | one node') for line in render_cameras_markdown(cameras)) \
        == 2


def test_hot_path_command_refuses_zero_repeats_and_renders_a_table():
    from benchmarks import hot_path

    with pytest.raises(SystemExit) as exit_info:
        hot_path.main(['--repeats', '0'])
    assert exit_info.value.code == 2
    table = hot_path.render_markdown({'overlay': 1.234, 'Predictor (torch)': 40.0})
    assert table[-2:] == ['| overlay | 1.23 |', '| Predictor (torch) | 40.00 |']


def test_training_precision_compares_every_layout_against_fp32():
    from benchmarks.bench_training import benchmark_precision, render_precision_markdown
    from jointdistill_core.training.trainer import cpu_has_bf16
    results = benchmark_precision(size=(32, 64), batch_size=2, rounds=1)
    expected = {'fp32', 'channels_last'} | ({'bf16', 'bf16 + channels_last'} if cpu_has_bf16()
                                            else set())
    assert set(results['variants']) == expected
    assert results['variants']['fp32']['speedup_vs_fp32'] == 1.0
    assert all(row['step_s_median'] > 0 for row in results['variants'].values())
    table = render_precision_markdown(results)
    assert sum(line.startswith('| ') for line in table) == len(expected) + 1
