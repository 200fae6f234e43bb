"""DDP: processes on gloo reach the parameters of one process with the same global batch.

Two levels. In float64 the data-parallel machinery (CrossProcessBatchNorm2d, DDP's gradient
averaging, AdamW) is checked to be exact: 2 processes x 2 images equal 1 process x 4 images
after 3 steps to 1e-9. End to end (`torchrun ... jointdistill_core train`, the trainer, a
method with its own adaptors, float32), the difference is bounded by what float32 rounding
allows for this network and compared with a control that lacks the synchronisation.
"""
from __future__ import annotations

import os
import subprocess
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from conftest import REPO_ROOT
from jointdistill_core.distill.losses import masked_cross_entropy, masked_l1
from jointdistill_core.models.factory import build_model
from jointdistill_core.training import load_train_config, train
from jointdistill_core.training.ddp import CrossProcessBatchNorm2d, synchronize_batch_norm
from jointdistill_core.training.state import load_state
from test_trainer import nyuv2_like, on_disk_data, save_tiny_teachers, tiny_config, write_nyuv2_like

__all__ = ['nyuv2_like']  # the fixture, imported so pytest finds it here

FLOAT64_STEPS, FLOAT64_BATCH, NUM_CLASSES = 3, 4, 7


class StudentLoss(nn.Module):
    """Student + the multi-task loss: (images, labels, depth) -> scalar, for DDP to wrap."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.student = build_model({'arch': 'student', 'width_mult': 0.25,
                                    'num_classes': NUM_CLASSES}).double()

    def forward(self, images, labels, depth):
        out = self.student(images)
        return masked_cross_entropy(out.seg_logits, labels) + masked_l1(out.depth, depth)


def float64_batches() -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(1)
    shape = (FLOAT64_BATCH, 64, 128)
    return [(torch.rand(FLOAT64_BATCH, 3, *shape[1:], generator=generator, dtype=torch.float64),
             torch.randint(0, NUM_CLASSES, shape, generator=generator),
             1 + 49 * torch.rand(FLOAT64_BATCH, 1, *shape[1:], generator=generator,
                                 dtype=torch.float64))
            for _ in range(FLOAT64_STEPS)]


def train_float64(module: nn.Module, parameters, part: slice) -> None:
    optimizer = torch.optim.AdamW(parameters, lr=1e-3)
    for images, labels, depth in float64_batches():
        optimizer.zero_grad()
        module(images[part], labels[part], depth[part]).backward()
        optimizer.step()


def float64_replica(rank: int, world_size: int, store: str, result: str) -> None:
    """One DDP process: its slice of every global batch; rank 0 saves the weights."""
    dist.init_process_group('gloo', init_method=f'file://{store}', rank=rank,
                            world_size=world_size)
    try:
        model = synchronize_batch_norm(StudentLoss())
        local = FLOAT64_BATCH // world_size
        train_float64(DistributedDataParallel(model), model.parameters(),
                      slice(rank * local, (rank + 1) * local))
        if rank == 0:
            save_file({k: v.contiguous() for k, v in model.state_dict().items()}, result)
    finally:
        dist.destroy_process_group()


def test_two_processes_equal_one_process_exactly_in_float64(tmp_path):
    torch.set_num_threads(1)
    single = StudentLoss()
    train_float64(single, single.parameters(), slice(None))
    control = StudentLoss()  # rank 0's images only: what an unsynchronised process computes
    train_float64(control, control.parameters(), slice(0, FLOAT64_BATCH // 2))
    mp.spawn(float64_replica, args=(2, str(tmp_path / 'store'), str(tmp_path / 'ddp.st')),
             nprocs=2)
    ddp = load_file(str(tmp_path / 'ddp.st'))
    initial = StudentLoss().state_dict()
    reference, control = single.state_dict(), control.state_dict()
    assert ddp.keys() == reference.keys()
    assert all(ddp[key].dtype == reference[key].dtype for key in reference)
    for key in reference:  # parameters and BatchNorm running statistics alike
        if key.endswith('num_batches_tracked'):
            assert int(ddp[key]) == int(reference[key]) == FLOAT64_STEPS
            continue
        # AdamW moves every weight by about lr = 1e-3 per step; 1e-9 is float64 rounding
        # amplified by Adam's normalisation where the exact gradient is zero (a BatchNorm
        # bias that only feeds another BatchNorm).
        assert torch.allclose(ddp[key], reference[key], rtol=1e-7, atol=1e-9), key

    def relative_update_difference(weights: dict) -> float:
        keys = [key for key in reference if not key.endswith('num_batches_tracked')]
        update = torch.cat([(reference[k] - initial[k]).flatten() for k in keys])
        other = torch.cat([(weights[k] - initial[k]).flatten() for k in keys])
        return float((other - update).norm() / update.norm())

    assert relative_update_difference(ddp) < 1e-8  # measured 3e-10
    assert relative_update_difference(control) > 0.1  # the check fails without the sync


def test_torchrun_training_matches_one_process_on_the_same_global_batch(tmp_path):
    # static_kd: the method's adaptors train too, so their gradients must be averaged as well.
    # Every pixel of this data set is labelled and has depth, so the per-process mean losses
    # average to the one-process mean loss exactly; what remains is float32 rounding in a
    # different summation order. This network's float32 gradients are only about 1 % exact
    # (measured against float64 at initialisation), so the bound is a few percent, far
    # below the control. Adam runs in its linear regime (eps = 100 >> |g|, each step
    # lr * m / eps): with the default eps its normalised step turns rounding noise on a
    # near-zero gradient into a full-size step.
    teachers = save_tiny_teachers(tmp_path, num_classes=13)
    steps = 3
    data = write_nyuv2_like(tmp_path / 'data', {'train': 8, 'val': 4}, size=(128, 256))
    path = tiny_config(tmp_path, teachers=teachers, method={'name': 'static_kd'},
                       data=on_disk_data(data, batch_size=2, num_frames=8),
                       steps=steps, val_every=steps, log_every=1,
                       optim={'lr': 0.01, 'eps': 100.0, 'weight_decay': 0.0})
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
    torch.manual_seed(3)
    initial = build_model({'arch': 'student', 'width_mult': 0.25, 'num_classes': 13,
                           'decoder_channels': [16, 16, 16]}).state_dict()
    parameters = [key for key in initial if 'running_' not in key and 'num_batches' not in key]
    update = {name: torch.cat([(weights[k] - initial[k]).flatten() for k in parameters])
              for name, weights in runs.items()}

    def relative_difference(name: str) -> float:
        return float((update[name] - update['single']).norm() / update['single'].norm())

    assert float(update['single'].abs().max()) > 1e-5  # training moved the weights
    # measured: DDP about 1 %, control about 160 %
    assert relative_difference('ddp') < 0.05
    assert relative_difference('control') > 0.5
    # the method's adaptors agree too
    single_method = load_state(tmp_path / 'single' / 'resume.safetensors')['method']
    ddp_state = load_state(tmp_path / 'ddp' / 'resume.safetensors')
    assert ddp_state['step'] == steps and single_method.keys() == ddp_state['method'].keys()
    assert single_method
    for key in single_method:
        difference = (single_method[key] - ddp_state['method'][key]).norm()
        assert difference <= 0.05 * single_method[key].norm() + 1e-6, key
    # only rank 0 wrote logs: one header plus one row per step
    assert len((tmp_path / 'ddp' / 'metrics.csv').read_text().splitlines()) == steps + 1


def test_batch_norm_swap_keeps_weights_and_acts_as_batch_norm_without_a_process_group():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4),
                                torch.nn.Sequential(torch.nn.BatchNorm2d(4)))
    with torch.no_grad():
        model[1].weight.uniform_(0.5, 1.5)
        model[1].running_mean.fill_(0.3)
    reference = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(2, 3, 8, 8)
    expected = model(x)
    synchronize_batch_norm(model)
    assert isinstance(model[1], CrossProcessBatchNorm2d)
    assert isinstance(model[2][0], CrossProcessBatchNorm2d)
    assert model.state_dict().keys() == reference.keys()
    model.load_state_dict(reference)
    assert torch.allclose(model(x), expected, atol=1e-6)
