"""DDP: two CPU processes on gloo (torchrun) with 1 sample each reach the parameters of one
process with the same global batch of 2."""
from __future__ import annotations

import os
import subprocess
import sys

import torch
from safetensors.torch import load_file

from conftest import REPO_ROOT
from jointdistill_core.training import load_train_config, train
from jointdistill_core.training.ddp import CrossProcessBatchNorm2d, synchronize_batch_norm
from jointdistill_core.training.state import load_state
from test_trainer import nyuv2_like, on_disk_data, save_tiny_teachers, tiny_config

__all__ = ['nyuv2_like']  # the fixture, imported so pytest finds it here


def test_two_gloo_processes_match_one_process_on_the_same_global_batch(tmp_path, nyuv2_like):
    # static_kd: the method's adaptors train too, so their gradients must be averaged as well.
    # Every pixel of this data set is labelled and has depth, so the per-process mean losses
    # average to the one-process mean loss exactly. Float32 rounding: this tiny network is
    # badly conditioned (its float32 gradients differ from float64 ones by 2 %, DDP's from
    # one process's by 0.03 %), and Adam's normalised steps turn that into a few percent of
    # the update, so the DDP update is compared with a control run that lacks the
    # synchronisation. optim.eps = 1e-3: parameters whose exact gradient is zero (a
    # BatchNorm bias feeding another BatchNorm) get rounding noise (~1e-8) as gradient, which
    # the default eps = 1e-8 would turn into full-size steps.
    teachers = save_tiny_teachers(tmp_path, num_classes=13)
    path = tiny_config(tmp_path, teachers=teachers, method={'name': 'static_kd'},
                       data=on_disk_data(nyuv2_like, batch_size=2, num_frames=8),
                       steps=1, val_every=1, log_every=1, optim={'lr': 1e-4, 'eps': 1e-3})
    train(load_train_config(path, [f'out={tmp_path / "single"}']), progress=False)
    # The control: one process that sees only rank 0's frames (batch 1), i.e. what a DDP
    # without gradient averaging and BatchNorm synchronisation would compute on rank 0.
    train(load_train_config(path, [f'out={tmp_path / "control"}', 'data.batch_size=1']),
          progress=False)

    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONUNBUFFERED': '1'}
    command = [sys.executable, '-m', 'torch.distributed.run', '--standalone',
               '--nproc_per_node=2', '-m', 'jointdistill_core', 'train', '--config', str(path),
               '--out', str(tmp_path / 'ddp'), '--no-progress']
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    runs = {name: load_file(str(tmp_path / name / 'last.safetensors'))
            for name in ('single', 'ddp', 'control')}
    assert runs['single'].keys() == runs['ddp'].keys()
    # The weights before training: the trainer builds the student under the config's seed.
    from jointdistill_core.models.factory import build_model
    torch.manual_seed(3)
    initial = build_model({'arch': 'student', 'width_mult': 0.25, 'num_classes': 13,
                           'decoder_channels': [16, 16, 16]}).state_dict()
    parameters = [key for key in initial if 'running_' not in key and 'num_batches' not in key]
    update = {name: torch.cat([(weights[k] - initial[k]).flatten() for k in parameters])
              for name, weights in runs.items()}

    def relative_difference(name: str) -> float:
        return float((update[name] - update['single']).norm() / update['single'].norm())

    def sign_agreement(name: str) -> float:
        return float((update[name].sign() == update['single'].sign()).float().mean())

    assert float(update['single'].abs().max()) > 1e-5  # training moved the weights
    # measured: DDP 5 % / 99.8 % of signs; control 140 % / 50 % of signs
    assert relative_difference('ddp') < 0.15
    assert relative_difference('ddp') < 0.1 * relative_difference('control')
    assert sign_agreement('ddp') > 0.99 > 0.9 > sign_agreement('control')
    # One step: the rounding differences grow fast with every further step (two steps at
    # this lr: 20 %), which says more about this tiny network than about DDP.
    # the method's adaptors agree too
    single_method = load_state(tmp_path / 'single' / 'resume.safetensors')['method']
    ddp_state = load_state(tmp_path / 'ddp' / 'resume.safetensors')
    assert ddp_state['step'] == 1 and single_method.keys() == ddp_state['method'].keys()
    assert single_method
    for key in single_method:
        assert torch.allclose(single_method[key], ddp_state['method'][key],
                              rtol=0.05, atol=2e-5), key
    # only rank 0 wrote logs: one header plus one row per step
    assert len((tmp_path / 'ddp' / 'metrics.csv').read_text().splitlines()) == 2


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
