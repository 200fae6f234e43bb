"""Faults: bad model files and devices at the node, a killed node, a killed training run.

Covered elsewhere and not repeated here: the checkpoint loader refusing a malicious pickle,
truncated weights and other architectures (test_checkpoint.py), a missing or non-checkpoint
model file at the node (test_node_lifecycle.py), the CPU fallback of the Predictor
(test_predictor.py), bit-exact --resume after --stop-at (test_resume.py) and the NaN/Inf loss
stop that keeps the last good checkpoint (test_trainer.py).
"""
from __future__ import annotations

import ast
import hashlib
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from sensor_msgs.msg import Image

from conftest import REPO_ROOT
from node_helpers import (
    LifecycleClient,
    NodeProcess,
    TestNode,
    pattern_image,
    rgb_image_message,
    save_tiny_student,
    set_parameter,
)
from test_trainer import nyuv2_like, on_disk_data, read_csv, tiny_config

__all__ = ['nyuv2_like']  # the fixture, imported so pytest finds it here
MARKER_NAME = 'pickle_code_ran'


class CreatesMarkerWhenUnpickled:
    """Unpickling this calls open(marker, 'w'): the file appears iff pickle code runs."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), 'w')


def plant_malicious_files(directory: Path, marker: Path, good: Path) -> dict[str, Path]:
    """A pickle disguised as a checkpoint (with a JSON whose SHA-256 matches it) and a
    torch.save pickle disguised as a TorchScript export (with the valid sidecar JSON of a
    real export of `good`, so the node gets as far as loading the file)."""
    from jointdistill_core.cli import main
    payload = pickle.dumps(CreatesMarkerWhenUnpickled(marker))
    pickle.loads(payload)  # the payload works: unpickling it does create the marker ...
    assert marker.exists()
    marker.unlink()        # ... and from here on, the marker must never come back
    disguised = directory / 'evil.safetensors'
    disguised.write_bytes(payload)
    config = {'format': 'jointdistill-checkpoint', 'version': 1,
              'model': {'arch': 'student', 'width_mult': 0.25,
                        'decoder_channels': [16, 16, 16]},
              'input_size': [64, 96],
              'weights_sha256': hashlib.sha256(payload).hexdigest(), 'extra': {}}
    (directory / 'evil.json').write_text(json.dumps(config))
    torch_pickle = directory / 'evil.pt'
    torch.save({'model': CreatesMarkerWhenUnpickled(marker)}, torch_pickle)
    exported = directory / 'exported.pt'
    assert main(['export', '--checkpoint', str(good), '--format', 'torchscript',
                 '--out', str(exported)]) == 0
    Path(f'{torch_pickle}.json').write_text(Path(f'{exported}.json').read_text())
    return {'disguised': disguised, 'torch_pickle': torch_pickle}


def truncated_copy(checkpoint: Path, stem: Path) -> Path:
    weights = checkpoint.read_bytes()
    target = stem.with_suffix('.safetensors')
    target.write_bytes(weights[:len(weights) // 2])
    target.with_suffix('.json').write_text(checkpoint.with_suffix('.json').read_text())
    return target


def torn_pair(first: Path, second: Path, stem: Path) -> Path:
    """Weights of `second` with the JSON of `first`: what a crash between two saves leaves
    if the files were not tied together (same architecture, so shapes all match)."""
    target = stem.with_suffix('.safetensors')
    target.write_bytes(second.read_bytes())
    target.with_suffix('.json').write_text(first.with_suffix('.json').read_text())
    return target


def other_architecture(stem: Path) -> Path:
    """A segmentation teacher: loads fine, but predicts no depth."""
    from jointdistill_core.checkpoint import save_checkpoint
    from jointdistill_core.models.factory import build_model
    model = build_model({'arch': 'seg_teacher', 'num_classes': 7, 'width': 8,
                         'blocks': [1, 1, 1, 1]})
    return save_checkpoint(stem, model.eval(), {'input_size': [64, 96]})


@pytest.mark.ros
def test_bad_model_files_fail_configure_clearly_and_run_no_code(ros_env, tmp_path):
    marker = tmp_path / MARKER_NAME
    good = save_tiny_student(tmp_path / 'good', seed=0)
    other_weights = save_tiny_student(tmp_path / 'other', seed=1)
    evil = plant_malicious_files(tmp_path, marker, good)
    cases = [  # (model file, text the node's log must contain for it)
        (evil['disguised'], 'not a valid safetensors file'),
        (evil['torch_pickle'], 'not a loadable TorchScript file'),
        (truncated_copy(good, tmp_path / 'truncated'), 'SHA-256 differs'),
        (torn_pair(good, other_weights, tmp_path / 'torn'), 'do not belong to the same checkpoint'),
        (other_architecture(tmp_path / 'seg_teacher'), 'is a single-task network'),
    ]
    with NodeProcess(ros_env, {'model_path': str(cases[0][0]), 'device': 'cpu'},
                     log_path=tmp_path / 'node.log') as node_process, TestNode('probe') as probe:
        lifecycle = LifecycleClient(probe, node_process.node_name)
        lifecycle.wait_ready()
        for model_file, expected in cases:
            assert set_parameter(probe, node_process.node_name, 'model_path', str(model_file))
            assert lifecycle.change_state('configure') is False, model_file
            assert lifecycle.get_state() == 'unconfigured'
            log = node_process.log()
            assert expected in log and str(model_file) in log, (expected, log)
            assert not marker.exists(), f'code from {model_file} ran in the node'
        # Nothing of the failures lingers: the same process configures a good model.
        assert set_parameter(probe, node_process.node_name, 'model_path', str(good))
        assert lifecycle.change_state('configure') is True
        assert not node_process.exited()
    assert not marker.exists()


@pytest.mark.ros
@pytest.mark.skipif(torch.cuda.is_available(), reason='needs a machine WITHOUT CUDA: the '
                    'fallback cannot happen where a GPU exists')
def test_cuda_without_gpu_falls_back_with_a_warning_or_fails_when_strict(ros_env, tmp_path):
    checkpoint = save_tiny_student(tmp_path / 'student')
    parameters = {'model_path': str(checkpoint), 'device': 'cuda', 'strict_device': True}
    with NodeProcess(ros_env, parameters, log_path=tmp_path / 'node.log') as node_process, \
            TestNode('probe') as probe:
        lifecycle = LifecycleClient(probe, node_process.node_name)
        lifecycle.wait_ready()
        assert lifecycle.change_state('configure') is False
        failure = node_process.log()
        assert "parameter 'device' (cuda, strict_device true)" in failure, failure
        assert set_parameter(probe, node_process.node_name, 'strict_device', False)
        assert lifecycle.change_state('configure') is True
        assert lifecycle.change_state('activate') is True
        log = node_process.log()
    fallback = log[len(failure):]
    assert '[WARN]' in fallback and 'falling back to CPU' in fallback, fallback
    assert 'configured: device cpu' in fallback, fallback


# ----------------------------------------------------------------------- killed node
def launch_file_node_keywords() -> dict[str, ast.AST]:
    tree = ast.parse((REPO_ROOT / 'launch' / 'jointdistill.launch.py').read_text())
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
             and getattr(node.func, 'id', None) == 'LifecycleNode']
    assert len(calls) == 1
    return {keyword.arg: keyword.value for keyword in calls[0].keywords}


def test_launch_file_respawns_the_node_after_a_delay():
    keywords = launch_file_node_keywords()
    assert isinstance(keywords['respawn'], ast.Name)  # the `respawn` launch argument
    assert ast.literal_eval(keywords['respawn_delay']) == 2.0
    source = (REPO_ROOT / 'launch' / 'jointdistill.launch.py').read_text()
    assert "DeclareLaunchArgument('respawn', default_value='true'" in source
    assert "respawn = LaunchConfiguration('respawn').perform(context).lower() == 'true'" \
        in source


def serve_one_frame(probe: TestNode, publisher, received: list, stamp_s: int,
                    node_process: NodeProcess, timeout_s: float = 90) -> None:
    """Publish frames (stamp stamp_s + i ns) until a depth image with such a stamp returns."""
    deadline = time.monotonic() + timeout_s
    index = 0
    while not any(msg.header.stamp.sec == stamp_s for msg in received):
        assert time.monotonic() < deadline, f'no depth image; log: {node_process.log_tail()}'
        assert not node_process.exited(), node_process.log_tail(20)
        publisher.publish(rgb_image_message(pattern_image(96, 128), stamp_s * 10**9 + index,
                                            'cam'))
        index += 1
        probe.spin_for(0.3)


@pytest.mark.ros
def test_node_killed_with_sigkill_serves_again_after_a_restart(ros_env, tmp_path):
    checkpoint = save_tiny_student(tmp_path / 'student')
    parameters = {'model_path': str(checkpoint), 'device': 'cpu', 'autostart': True}
    with TestNode('probe') as probe:
        received: list[Image] = []
        probe.node.create_subscription(Image, 'depth/image', received.append, 10)
        publisher = probe.node.create_publisher(Image, 'image', 10)
        first = NodeProcess(ros_env, parameters, log_path=tmp_path / 'first.log')
        try:
            serve_one_frame(probe, publisher, received, 1, first)
            first.process.send_signal(signal.SIGKILL)
            assert first.process.wait(timeout=10) == -signal.SIGKILL
        finally:
            first.stop()
        # What launch's respawn does: the same command again, on the same topics. The
        # probe keeps its publisher and subscription; nothing is reset by hand.
        with NodeProcess(ros_env, parameters, log_path=tmp_path / 'second.log') as second:
            serve_one_frame(probe, publisher, received, 2, second)
            assert 'configured: device cpu' in second.log()


# ----------------------------------------------------------------------- killed training
def start_training(config: Path, *extra: str) -> subprocess.Popen:
    """`jointdistill train` in a child process. Every run of a comparison is a child with the
    same environment: the number of threads changes float reductions, hence the weights."""
    return subprocess.Popen([sys.executable, '-m', 'jointdistill_core', 'train', '--config',
                             str(config), '--no-progress', *extra],
                            env=dict(os.environ, OMP_NUM_THREADS='1'),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def finish(child: subprocess.Popen, timeout_s: float = 300) -> None:
    _, stderr = child.communicate(timeout=timeout_s)
    assert child.returncode == 0, stderr.decode(errors='replace')[-2000:]


def kill_training_after_first_save(config: Path, out: Path, min_step: int) -> int:
    """Train in a child process, SIGKILLed once OUT/resume.safetensors holds step >= min_step
    (the run goes on after a save, so the kill lands between two saves); returns the step
    of the state left on disk."""
    from jointdistill_core.training.state import load_state
    resume = out / 'resume.safetensors'
    child = start_training(config)
    try:
        deadline = time.monotonic() + 120
        while not (resume.is_file() and load_state(resume)['step'] >= min_step):
            assert child.poll() is None, f'training ended early: {child.stderr.read()!r}'
            assert time.monotonic() < deadline, 'no resume state within 120 s'
            time.sleep(0.02)
        time.sleep(0.1)
        assert child.poll() is None, 'training finished before it could be killed'
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stderr.close()
    return load_state(resume)['step']


def test_training_killed_mid_epoch_resumes_to_the_same_result(tmp_path, nyuv2_like):
    from jointdistill_core.training.state import load_state

    steps = 16  # 8 frames, batch 2: an epoch is 4 steps; saves every 3 steps (mid-epoch)
    configs = {name: tiny_config(tmp_path, name=f'{name}.yaml', out=str(tmp_path / name),
                                 data=on_disk_data(nyuv2_like), steps=steps, val_every=3,
                                 log_every=1)
               for name in ('straight', 'killed')}
    straight = start_training(configs['straight'])  # runs alongside the one to be killed
    saved_step = kill_training_after_first_save(configs['killed'], tmp_path / 'killed', 3)
    assert 3 <= saved_step < steps
    leftovers = [p.name for p in (tmp_path / 'killed').iterdir() if p.name.endswith('.tmp')]
    finish(start_training(configs['killed'], '--resume'))
    finish(straight)

    final = {name: load_state(tmp_path / name / 'resume.safetensors') for name in configs}
    assert final['straight']['step'] == final['killed']['step'] == steps
    for key, value in final['straight']['model'].items():
        assert torch.equal(value, final['killed']['model'][key]), key
    rows = {name: read_csv(tmp_path / name / 'metrics.csv') for name in configs}
    assert [r['step'] for r in rows['killed']] == [r['step'] for r in rows['straight']]
    for straight_row, killed_row in zip(rows['straight'], rows['killed']):
        for column in ('loss/total', 'lr', 'val/miou', 'val/abs_err'):
            assert straight_row.get(column) == killed_row.get(column), (straight_row['step'],
                                                                        column)
    assert rows['straight'][-1].get('val/miou')  # the compared columns exist
    # A crash may leave a hidden temporary file behind, never a half-written file under the
    # real name (the resumed run loaded it and finished).
    assert all(name.startswith('.') for name in leftovers), leftovers


def test_resume_from_a_truncated_state_is_refused_naming_the_file(tmp_path, capsys,
                                                                  nyuv2_like):
    from jointdistill_core.cli import main

    config = tiny_config(tmp_path, steps=2, val_every=1, data=on_disk_data(nyuv2_like))
    assert main(['train', '--config', str(config), '--no-progress']) == 0
    capsys.readouterr()
    state = tmp_path / 'run' / 'resume.safetensors'
    state.write_bytes(state.read_bytes()[:1000])
    assert main(['train', '--config', str(config), '--no-progress', '--resume']) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith('jointdistill train: error: --resume:') and str(state) in error, error
    assert len(error.splitlines()) == 1
