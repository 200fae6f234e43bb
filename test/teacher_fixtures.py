"""Tiny foreign teachers for the adapter tests, built here, nothing downloaded.

transformers models are built from their configurations with random weights (a few hundred
thousand parameters at most) and written with `save_pretrained`, exactly the folder a user
brings. The project's own teachers disguised as foreign ONNX files come from
benchmarks/foreign_teachers.py (shared with the adapter comparison).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from benchmarks.foreign_teachers import (  # noqa: F401  (re-exported to the tests)
    CATEGORY_POSITIONS,
    CITYSCAPES_19,
    export_onnx,
    inverse_depth_onnx,
    inverse_depth_scale_shift,
    widen_seg_onnx,
)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


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
