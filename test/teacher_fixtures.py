"""Tiny foreign teachers for the adapter tests, built here, nothing downloaded.

transformers models are built from their configurations with random weights (a few hundred
thousand parameters at most) and written with `save_pretrained`, exactly the folder a user
brings. The project's own teachers are exported with `jointdistill export` and their ONNX
graphs extended (`onnx.helper`), so the foreign-file paths are exercised on real ONNX files.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CITYSCAPES_19 = 19
# Where each of the 7 categories sits among Cityscapes' 19 classes in a widened teacher:
# flat -> sidewalk, construction -> fence, object -> pole, nature -> terrain, sky -> sky,
# human -> rider, vehicle -> train; the other 12 classes are padding.
CATEGORY_POSITIONS = [1, 4, 5, 9, 10, 12, 16]


def _transformers():
    import transformers
    transformers.logging.set_verbosity_error()
    return transformers


def _swin(transformers):
    return transformers.SwinConfig(embed_dim=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1],
                                   window_size=4,
                                   out_features=['stage1', 'stage2', 'stage3', 'stage4'])


def _dinov2(transformers):
    return transformers.Dinov2Config(hidden_size=16, num_attention_heads=2, num_hidden_layers=4,
                                     intermediate_size=32, image_size=518, patch_size=14,
                                     out_indices=[1, 2, 3, 4], reshape_hidden_states=False,
                                     apply_layernorm=True)


def _dpt_config(transformers, **task):
    return transformers.DPTConfig(hidden_size=16, num_hidden_layers=4, num_attention_heads=2,
                                  intermediate_size=32, image_size=64, patch_size=16,
                                  backbone_out_indices=[0, 1, 2, 3],
                                  neck_hidden_sizes=[8, 16, 24, 32], fusion_hidden_size=16,
                                  **task)


def build_hf_model(name: str, num_labels: int = CITYSCAPES_19):
    """A tiny random-weight transformers model: 'segformer', 'upernet', 'dpt_seg',
    'mask2former', 'oneformer' (segmentation, `num_labels` classes) or 'depth_anything',
    'dpt_depth', 'zoedepth', 'glpn' (depth)."""
    t = _transformers()
    torch.manual_seed(0)
    if name == 'segformer':
        config = t.SegformerConfig(num_labels=num_labels, hidden_sizes=[8, 16, 24, 32],
                                   depths=[1, 1, 1, 1], num_attention_heads=[1, 1, 1, 1],
                                   decoder_hidden_size=32)
        return t.SegformerForSemanticSegmentation(config)
    if name == 'upernet':
        backbone = t.ConvNextConfig(hidden_sizes=[8, 16, 24, 32], depths=[1, 1, 1, 1],
                                    out_features=['stage1', 'stage2', 'stage3', 'stage4'])
        config = t.UperNetConfig(backbone_config=backbone, num_labels=num_labels, hidden_size=16,
                                 auxiliary_in_channels=24, auxiliary_channels=8)
        return t.UperNetForSemanticSegmentation(config)
    if name == 'dpt_seg':
        return t.DPTForSemanticSegmentation(_dpt_config(t, num_labels=num_labels))
    if name == 'mask2former':
        config = t.Mask2FormerConfig(backbone_config=_swin(t), num_labels=num_labels,
                                     hidden_dim=32, num_queries=10, encoder_layers=1,
                                     decoder_layers=2, dim_feedforward=32,
                                     encoder_feedforward_dim=32, mask_feature_size=32,
                                     feature_size=32, num_attention_heads=2)
        return t.Mask2FormerForUniversalSegmentation(config)
    if name == 'oneformer':
        config = t.OneFormerConfig(backbone_config=_swin(t), num_labels=num_labels,
                                   hidden_dim=32, num_queries=10, encoder_layers=1,
                                   decoder_layers=2, dim_feedforward=32, conv_dim=32,
                                   mask_dim=32, num_attention_heads=2, text_encoder_width=32,
                                   text_encoder_num_layers=1, text_encoder_proj_layers=1,
                                   text_encoder_vocab_size=100, text_encoder_n_ctx=4,
                                   encoder_feedforward_dim=32, is_training=False)
        return t.OneFormerForUniversalSegmentation(config)
    if name == 'depth_anything':
        config = t.DepthAnythingConfig(backbone_config=_dinov2(t),
                                       neck_hidden_sizes=[8, 16, 24, 32], fusion_hidden_size=16,
                                       head_hidden_size=8, reassemble_hidden_size=16,
                                       reassemble_factors=[4, 2, 1, 0.5],
                                       depth_estimation_type='relative')
        return t.DepthAnythingForDepthEstimation(config)
    if name == 'dpt_depth':
        return t.DPTForDepthEstimation(_dpt_config(t, head_in_index=-1))
    if name == 'zoedepth':
        backbone = t.BeitConfig(hidden_size=16, num_hidden_layers=4, num_attention_heads=2,
                                intermediate_size=32, image_size=64, patch_size=16,
                                out_indices=[1, 2, 3, 4], use_relative_position_bias=True,
                                reshape_hidden_states=False)
        config = t.ZoeDepthConfig(
            backbone_config=backbone, neck_hidden_sizes=[8, 16, 24, 32], fusion_hidden_size=16,
            reassemble_hidden_size=16, bottleneck_features=16, num_relative_features=8,
            bin_configurations=[{'n_bins': 8, 'min_depth': 0.001, 'max_depth': 10.0,
                                 'name': 'nyu'}],
            num_attractors=[4, 4, 2, 1], bin_embedding_dim=16,
            patch_transformer_hidden_size=16, patch_transformer_intermediate_size=32,
            patch_transformer_num_attention_heads=2)
        return t.ZoeDepthForDepthEstimation(config)
    if name == 'glpn':
        config = t.GLPNConfig(hidden_sizes=[8, 16, 24, 32], depths=[1, 1, 1, 1],
                              num_attention_heads=[1, 1, 1, 1], decoder_hidden_size=16)
        return t.GLPNForDepthEstimation(config)
    raise ValueError(f'no tiny model {name!r}')


def spread_weights(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Redraw every weight matrix with variance 1 / fan-in, so a random model's outputs vary
    across classes and pixels (transformers' small initial weights make them nearly flat)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() > 1:
                fan_in = parameter[0].numel()
                parameter.copy_(torch.randn(parameter.shape, generator=generator) / fan_in ** 0.5)
    return model


def save_hf_model(name: str, folder: Path, num_labels: int = CITYSCAPES_19) -> Path:
    """Build, spread the weights, `save_pretrained` to `folder` (with OneFormer's tokenizer),
    return the folder."""
    model = spread_weights(build_hf_model(name, num_labels)).eval()
    model.save_pretrained(folder)
    if name == 'oneformer':
        save_tiny_clip_tokenizer(folder)
    return folder


def save_tiny_clip_tokenizer(folder: Path) -> None:
    """A CLIP tokenizer whose vocabulary spells OneFormer's task prompt (letters, then one BPE
    merge per pair), saved next to the model as the OneFormerProcessor would."""
    t = _transformers()
    vocab = {'<|startoftext|>': 0, '<|endoftext|>': 1}
    merges = []
    for letter in map(chr, range(ord('a'), ord('z') + 1)):
        vocab.setdefault(letter, len(vocab))
        vocab.setdefault(letter + '</w>', len(vocab))
    for word in ('the', 'task', 'is', 'semantic'):
        parts = list(word[:-1]) + [word[-1] + '</w>']
        while len(parts) > 1:
            merges.append(f'{parts[0]} {parts[1]}')
            parts = [parts[0] + parts[1]] + parts[2:]
            vocab.setdefault(parts[0], len(vocab))
    source = folder / 'tokenizer_source'
    source.mkdir()
    (source / 'vocab.json').write_text(json.dumps(vocab))
    (source / 'merges.txt').write_text('#version: 0.2\n' + '\n'.join(merges) + '\n')
    t.CLIPTokenizer(vocab_file=str(source / 'vocab.json'),
                    merges_file=str(source / 'merges.txt')).save_pretrained(folder)


# ---- the project's own teachers, exported and disguised as foreign ones ---------------------
def export_onnx(checkpoint: Path, out: Path, size: str) -> Path:
    """`jointdistill export` of a checkpoint to ONNX at `size` ('HxW')."""
    from jointdistill_core.cli import main
    assert main(['export', '--checkpoint', str(checkpoint), '--format', 'onnx', '--size', size,
                 '--out', str(out)]) == 0
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
