"""The main job on a tiny bag: `jointdistill demo` makes the bag, runs the node live, writes the
report and prints the summary table; a second run reuses the matching bag."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import REPO_ROOT
from jointdistill_ros.cli import main
from jointdistill_ros.demo import bag_is_reusable
from node_helpers import save_tiny_student

pytestmark = pytest.mark.ros

SUMMARY_ROWS = ('mIoU', 'pixel accuracy', 'abs rel', 'RMSE', 'delta1', 'latency mean',
                'latency p95', 'throughput', 'frames dropped')


def test_demo_end_to_end_on_a_tiny_bag(tmp_path, ros_env):
    model = save_tiny_student(tmp_path / 'student', (64, 96))
    out = tmp_path / 'demo'
    command = [sys.executable, '-m', 'jointdistill_ros', 'demo', '--out', str(out),
               '--frames', '6', '--size', '120x160', '--rate', '15', '--model', str(model)]
    env = dict(ros_env, OMP_NUM_THREADS='1')
    env.pop('FASTDDS_DEFAULT_PROFILES_FILE', None)
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                            timeout=400)
    assert result.returncode == 0, result.stdout + result.stderr
    for row in SUMMARY_ROWS:
        assert row in result.stdout, row
    report = json.loads((out / 'report.json').read_text())
    assert report['mode'] == 'live' and report['model'] == str(model)
    assert report['frames']['input'] == 6 and report['frames']['matched'] >= 1
    for key in ('miou', 'pixel_acc', 'abs_err', 'abs_rel', 'rmse', 'delta1'):
        assert report['metrics'][key] is not None, key
    assert report['latency_ms']['mean'] > 0
    assert (out / 'report.md').is_file() and (out / 'latency_histogram.png').is_file()
    assert bag_is_reusable(out / 'bag', 6, (120, 160), 15.0)
    assert not bag_is_reusable(out / 'bag', 6, (240, 320), 15.0)
    assert not bag_is_reusable(out / 'bag', 7, (120, 160), 15.0)
    assert not bag_is_reusable(out / 'bag', 6, (120, 160), 30.0)
    assert not bag_is_reusable(out / 'nothing', 6, (120, 160), 15.0)


def test_demo_refuses_a_missing_model(tmp_path, capsys):
    assert main(['demo', '--out', str(tmp_path / 'demo'), '--frames', '2', '--size', '32x32',
                 '--model', str(tmp_path / 'missing.safetensors')]) == 2
    assert 'missing.safetensors not found' in capsys.readouterr().err
    assert not (tmp_path / 'demo').exists()
