"""DDP: two CPU processes on gloo (torchrun) with 1 sample each reach the parameters of one
process with the same global batch of 2."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from conftest import REPO_ROOT
from jointdistill_core.training import load_train_config, train
from jointdistill_core.training.ddp import CrossProcessBatchNorm2d, synchronize_batch_norm
from jointdistill_core.training.state import load_state
from test_trainer import nyuv2_like, on_disk_data, save_tiny_teachers, tiny_config

__all__ = ['nyuv2_like']  # the fixture, imported so pytest finds it here


@pytest.mark.slow
def test_two_gloo_processes_match_one_process_on_the_same_global_batch(tmp_path, nyuv2_like):
    # static_kd: the method's adaptors train too, so their gradients must be averaged as well.
    # Float32 rounding: this tiny network is badly conditioned (its float32 gradients differ
    # from float64 ones by 2 %, while DDP's differ from one process's by 0.03 %), so a
    # rounding-level difference in the weights grows fast over steps; hence a comparison of
    # the updates to 1 %, and small steps (lr 1e-4) that keep the second step's gradients
    # comparable. optim.eps = 1e-3: parameters whose exact
    # gradient is zero (a BatchNorm bias feeding another BatchNorm) get rounding noise
    # (~1e-8) as gradient, which Adam's default eps = 1e-8 would turn into full-size steps.
    # Every pixel of this data set is labelled and has depth, so the per-process mean losses
    # average to the one-process mean loss exactly.
    teachers = save_tiny_teachers(tmp_path, num_classes=13)
    path = tiny_config(tmp_path, teachers=teachers, method={'name': 'static_kd'},
                       data=on_disk_data(nyuv2_like, batch_size=2, num_frames=8),
                       steps=2, val_every=2, log_every=1, optim={'lr': 1e-4, 'eps': 1e-3})
    train(load_train_config(path, [f'out={tmp_path / "single"}']), progress=False)

    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONUNBUFFERED': '1'}
    command = [sys.executable, '-m', 'torch.distributed.run', '--standalone',
               '--nproc_per_node=2', '-m', 'jointdistill_core', 'train', '--config', str(path),
               '--out', str(tmp_path / 'ddp'), '--no-progress']
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    single = load_file(str(tmp_path / 'single' / 'last.safetensors'))
    ddp = load_file(str(tmp_path / 'ddp' / 'last.safetensors'))
    assert single.keys() == ddp.keys()
    # The weights before training: the trainer builds the student under the config's seed.
    from jointdistill_core.models.factory import build_model
    torch.manual_seed(3)
    initial = build_model({'arch': 'student', 'width_mult': 0.25, 'num_classes': 13,
                           'decoder_channels': [16, 16, 16]}).state_dict()
    parameters = [key for key in single if 'running_' not in key and 'num_batches' not in key]
    update_single = torch.cat([(single[k] - initial[k]).flatten() for k in parameters])
    update_ddp = torch.cat([(ddp[k] - initial[k]).flatten() for k in parameters])
    assert float(update_single.abs().max()) > 1e-5  # training moved the weights
    # the two updates agree to 1 % (a missing BatchNorm synchronisation or a wrong data shard
    # gives differences of the order of the update itself)
    relative = float((update_ddp - update_single).norm() / update_single.norm())
    assert relative < 1e-2, relative
    assert float((update_ddp - update_single).abs().max()) < 0.05 * float(update_single.abs().max())
    # BatchNorm running statistics and the method's adaptors agree too
    for key in set(single) - set(parameters):
        assert torch.allclose(single[key].double(), ddp[key].double(), rtol=1e-2, atol=1e-3), key
    single_method = load_state(tmp_path / 'single' / 'resume.safetensors')['method']
    ddp_state = load_state(tmp_path / 'ddp' / 'resume.safetensors')
    assert ddp_state['step'] == 2 and single_method.keys() == ddp_state['method'].keys()
    assert single_method
    for key in single_method:
        assert torch.allclose(single_method[key].double(), ddp_state['method'][key].double(),
                              rtol=1e-3, atol=1e-5), key
    # only rank 0 wrote logs: one header plus one row per step
    assert len((tmp_path / 'ddp' / 'metrics.csv').read_text().splitlines()) == 3


def test_batch_norm_swap_keeps_weights_and_acts_as_batch_norm_without_a_process_group():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4),
                                torch.nn.Sequential(torch.nn.BatchNorm2d(4)))
    with torch.no_grad():
        model[1].weight.uniform_(0.5, 1.5)
        model[1].running_mean.fill_(0.3)
    reference = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(2, 3, 8, 8)
    expected = model(x)
    synchronize_batch_norm(model, torch.device('cpu'))
    assert isinstance(model[1], CrossProcessBatchNorm2d)
    assert isinstance(model[2][0], CrossProcessBatchNorm2d)
    assert model.state_dict().keys() == reference.keys()
    model.load_state_dict(reference)
    assert torch.allclose(model(x), expected, atol=1e-6)
