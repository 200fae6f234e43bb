"""Model size and cost: parameters, FLOPs and activation memory, counted with forward hooks."""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those with requires_grad)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _run_with_hooks(model: nn.Module, size: tuple[int, int],
                    hook: Callable[[nn.Module, tuple, object], None],
                    module_filter: Callable[[nn.Module], bool]) -> None:
    height, width = size
    handles = [m.register_forward_hook(hook) for m in model.modules() if module_filter(m)]
    was_training = model.training
    try:
        model.eval()
        device = next(model.parameters()).device
        with torch.no_grad():
            model(torch.zeros(1, 3, height, width, device=device))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)


def count_flops(model: nn.Module, size: tuple[int, int]) -> int:
    """FLOPs of one forward pass of a (1, 3, H, W) image, size = (H, W) pixels.

    Counts 2 x multiply-accumulates of every Conv2d and Linear (bias adds, BatchNorm,
    activations, resizing and elementwise ops are not counted: the usual convention, and
    below 2% of the total for these networks).
    """
    total = 0

    def hook(module: nn.Module, inputs: tuple, output: object) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            kernel_h, kernel_w = module.kernel_size
            macs_per_output = kernel_h * kernel_w * module.in_channels // module.groups
            total += 2 * output.numel() * macs_per_output
        else:  # nn.Linear
            total += 2 * output.numel() * module.in_features

    _run_with_hooks(model, size, hook, lambda m: isinstance(m, (nn.Conv2d, nn.Linear)))
    return total


def activation_bytes(model: nn.Module, size: tuple[int, int]) -> int:
    """Bytes of all leaf-module outputs for one (1, 3, H, W) fp32 image, size = (H, W).

    An estimate of the activation memory training keeps for backward per image (in-place
    activations counted as separate tensors, so an upper bound); inference needs far less.
    """
    total = 0

    def hook(module: nn.Module, inputs: tuple, output: object) -> None:
        nonlocal total
        if isinstance(output, torch.Tensor):
            total += output.numel() * output.element_size()

    _run_with_hooks(model, size, hook, lambda m: len(list(m.children())) == 0)
    return total
