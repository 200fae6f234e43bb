"""The project's own teachers disguised as foreign ones, on real ONNX files: the
segmentation teacher as a 19-class model (its 7 logits permuted into 19 channels, the others
padded) and the depth teacher as a relative_inverse model (s / depth + b with a scale and a
shift that change per image, computed inside the graph). Shared by the adapter tests
(test/test_teachers.py) and the adapter-vs-built-in comparison (adapter_comparison.py).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

# Where each of the 7 categories sits among Cityscapes' 19 classes in a widened teacher:
# flat -> sidewalk, construction -> fence, object -> pole, nature -> terrain, sky -> sky,
# human -> rider, vehicle -> train; the other 12 classes are padding.
CATEGORY_POSITIONS = [1, 4, 5, 9, 10, 12, 16]
CITYSCAPES_19 = 19


def run_command(argv: list[str]) -> None:
    """`jointdistill ARGV` through a parser holding only that subcommand, so nothing the others
    import (rosbags for `bag`) is needed; RuntimeError when it fails."""
    import argparse
    import importlib

    from jointdistill_core.cli import main
    parser = argparse.ArgumentParser(prog='jointdistill')
    subcommands = parser.add_subparsers(dest='command', required=True)
    importlib.import_module(f'jointdistill_core.cli.{argv[0]}').register(subcommands)
    if main(argv, parser) != 0:
        raise RuntimeError(f'jointdistill {" ".join(argv)} failed (message above)')


def export_onnx(checkpoint: Path, out: Path, size: str) -> Path:
    """`jointdistill export` of a checkpoint to ONNX at `size` ('HxW')."""
    run_command(['export', '--checkpoint', str(checkpoint), '--format', 'onnx', '--size', size,
                 '--out', str(out)])
    return out


def _constant(name: str, array: np.ndarray) -> onnx.NodeProto:
    return helper.make_node('Constant', [], [name], value=numpy_helper.from_array(array, name))


def _replace_output(model: onnx.ModelProto, nodes: list, name: str, shape: list[int]) -> None:
    model.graph.node.extend(nodes)
    del model.graph.output[:]
    model.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))


def widen_seg_onnx(source: Path, out: Path, positions: list[int], width: int,
                   pad_logit: float) -> Path:
    """The exported seg teacher's logits (1, C, H, W) placed at channels `positions` of a
    (1, width, H, W) output whose other channels hold `pad_logit`: a teacher with a bigger,
    permuted label set that a class map brings back."""
    model = onnx.load(str(source))
    logits = model.graph.output[0]
    dims = [d.dim_value for d in logits.type.tensor_type.shape.dim]
    classes, height, width_px = dims[1], dims[2], dims[3]
    pad = np.full((1, width - classes, height, width_px), pad_logit, np.float32)
    order = np.empty(width, np.int64)  # channel j of the output = channel order[j] of concat
    others = [j for j in range(width) if j not in positions]
    order[positions] = np.arange(classes)
    order[others] = classes + np.arange(width - classes)
    nodes = [_constant('pad_logits', pad), _constant('channel_order', order),
             helper.make_node('Concat', [logits.name, 'pad_logits'], ['stacked'], axis=1),
             helper.make_node('Gather', ['stacked', 'channel_order'], ['wide_logits'], axis=1)]
    _replace_output(model, nodes, 'wide_logits', [1, width, height, width_px])
    onnx.checker.check_model(model)
    onnx.save(model, str(out))
    return out


def inverse_depth_onnx(source: Path, out: Path) -> Path:
    """The exported depth teacher turned into a relative_inverse teacher: with m the mean of
    the input image, it returns s / depth + b with s = 2 + 3 m and b = 0.5 m, a scale and a
    shift that change from image to image (as a disparity network's do)."""
    model = onnx.load(str(source))
    depth = model.graph.output[0]
    dims = [d.dim_value for d in depth.type.tensor_type.shape.dim]
    image = model.graph.input[0].name
    # `jointdistill export` writes opset 17, where ReduceMean takes its axes as an attribute.
    nodes = [helper.make_node('ReduceMean', [image], ['image_mean'], keepdims=1, axes=[1, 2, 3]),
             _constant('two', np.array(2.0, np.float32)),
             _constant('three', np.array(3.0, np.float32)),
             _constant('half', np.array(0.5, np.float32)),
             helper.make_node('Mul', ['image_mean', 'three'], ['scaled_mean']),
             helper.make_node('Add', ['scaled_mean', 'two'], ['scale']),
             helper.make_node('Mul', ['image_mean', 'half'], ['shift']),
             helper.make_node('Div', ['scale', depth.name], ['scaled_inverse']),
             helper.make_node('Add', ['scaled_inverse', 'shift'], ['disparity'])]
    _replace_output(model, nodes, 'disparity', dims)
    onnx.checker.check_model(model)
    onnx.save(model, str(out))
    return out


def inverse_depth_scale_shift(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The (scale, shift) per image of `inverse_depth_onnx`, each (N, 1, 1, 1)."""
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    return 2.0 + 3.0 * mean, 0.5 * mean
