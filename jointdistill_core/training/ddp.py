"""Data-parallel training under `torchrun` (gloo on CPU, nccl on CUDA).

`torchrun` sets RANK, WORLD_SIZE and LOCAL_RANK; without them training runs in one process.
Batch normalisation is synchronised across processes so that P processes with B/P samples
each compute what one process computes with B samples, with `CrossProcessBatchNorm2d` below
on CPU and CUDA alike (PyTorch's SyncBatchNorm refuses CPU tensors, and one code path is
the one the CPU test checks).
"""
from __future__ import annotations

import itertools
import os
import warnings
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass
class DistContext:
    """This process's place in a DDP run (one process: rank 0 of 1)."""
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device('cpu')  # where collectives' tensors live (nccl: CUDA)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def any_true(self, flag: bool) -> bool:
        """True on every process when `flag` is true on at least one."""
        if not self.enabled:
            return flag
        value = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item() > 0)


def init_distributed(device: torch.device) -> DistContext:
    """Join the process group that torchrun describes in the environment, if any."""
    world_size = int(os.environ.get('WORLD_SIZE', '1'))
    if world_size <= 1:
        return DistContext()
    rank, local_rank = int(os.environ['RANK']), int(os.environ.get('LOCAL_RANK', '0'))
    if device.type == 'cuda':
        device = torch.device('cuda', local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend='nccl' if device.type == 'cuda' else 'gloo')
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank, device=device)


def shutdown_distributed(context: DistContext) -> None:
    """Destroy the process group, if this process created one."""
    if context.enabled and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce(tensor: torch.Tensor) -> torch.Tensor:
    """Differentiable sum over processes (its backward sums the gradients likewise)."""
    from torch.distributed.nn.functional import all_reduce as differentiable_all_reduce
    with warnings.catch_warnings():  # deprecated in favour of a not yet differentiable API
        warnings.simplefilter('ignore', FutureWarning)
        return differentiable_all_reduce(tensor)


class CrossProcessBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training-mode statistics pool the batches of all processes.

    Two passes, each a differentiable all-reduce across processes: the per-channel sum and
    pixel count give the mean, then the sum of squared deviations gives the (biased)
    variance. Two passes, not sum and sum of squares in one, because E[x^2] - E[x]^2 cancels
    badly in float32. The backward pass flows through the other processes' share of the
    statistics, as in SyncBatchNorm. Running statistics use the unbiased variance, as
    nn.BatchNorm2d does. Same parameters and buffers as nn.BatchNorm2d.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized()):
            return super().forward(x)
        channels, input_dtype = x.shape[1], x.dtype
        x = x.to(torch.promote_types(x.dtype, torch.float32))  # float16 under autocast
        count = torch.full((1,), x.numel() / channels, dtype=x.dtype, device=x.device)
        sums = all_reduce(torch.cat([x.sum(dim=(0, 2, 3)), count]))
        total = sums[-1]
        shape = (1, channels, 1, 1)
        centred = x - (sums[:channels] / total).view(shape)
        var = all_reduce((centred * centred).sum(dim=(0, 2, 3))) / total
        if self.track_running_stats:
            self._update_running_stats((sums[:channels] / total).detach(), var.detach(),
                                       total.detach())
        y = centred * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(input_dtype)

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, var: torch.Tensor,
                              count: torch.Tensor) -> None:
        self.num_batches_tracked.add_(1)
        momentum = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                    else self.momentum)
        unbiased = var * count / torch.clamp(count - 1, min=1)
        self.running_mean.mul_(1 - momentum).add_(momentum * mean)
        self.running_var.mul_(1 - momentum).add_(momentum * unbiased)


def synchronize_batch_norm(module: nn.Module) -> nn.Module:
    """Swap every BatchNorm2d for its cross-process version, keeping weights, buffers, device
    and dtype. Returns `module` (changed in place; the state_dict keys are unchanged)."""
    for name, child in module.named_children():
        if type(child) is nn.BatchNorm2d:
            like = next(itertools.chain(child.parameters(), child.buffers()), None)
            placement = {} if like is None else {'device': like.device, 'dtype': like.dtype}
            replacement = CrossProcessBatchNorm2d(child.num_features, child.eps, child.momentum,
                                                  child.affine, child.track_running_stats,
                                                  **placement)
            replacement.load_state_dict(child.state_dict())
            setattr(module, name, replacement)
        else:
            synchronize_batch_norm(child)
    return module
