"""The pair of networks a user would otherwise run: SegFormer-B0 for segmentation plus
Depth-Anything-V2-Small for depth, built from their published configurations with random
weights through `transformers` (nothing is downloaded; latency does not depend on weights).

Published configurations used (Hugging Face model cards):
- nvidia/segformer-b0-finetuned-cityscapes-1024-1024: MiT-b0 encoder, hidden sizes
  [32, 64, 160, 256], depths [2, 2, 2, 2], decoder 256, 19 labels (3.7 M parameters).
- depth-anything/Depth-Anything-V2-Small-hf: DINOv2-S backbone (384 wide, 12 layers,
  6 heads, patch 14, features from layers 3/6/9/12), DPT neck [48, 96, 192, 384], fusion 64,
  head 32, reassemble factors [4, 2, 1, 0.5] (24.8 M parameters).

Both run the same pre- and post-processing work as the student's Predictor: resize the
camera image to the model input, normalise, run, bring depth and labels back to the camera
resolution. Depth-Anything needs sides that are multiples of 14, so its input is the model
size rounded down to a multiple of 14 (252x504 for 256x512), as its own pipeline does.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from jointdistill_core.inference import Prediction

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def build_segformer_b0() -> torch.nn.Module:
    """SegFormer-B0 from its published configuration, random weights, eval mode."""
    from transformers import SegformerConfig, SegformerForSemanticSegmentation
    config = SegformerConfig(num_labels=19, hidden_sizes=[32, 64, 160, 256], depths=[2, 2, 2, 2],
                             decoder_hidden_size=256)
    return SegformerForSemanticSegmentation(config).eval()


def build_depth_anything_v2_small() -> torch.nn.Module:
    """Depth-Anything-V2-Small from its published configuration, random weights, eval
    mode."""
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config
    backbone = Dinov2Config(hidden_size=384, num_attention_heads=6, num_hidden_layers=12,
                            image_size=518, patch_size=14, out_indices=[3, 6, 9, 12],
                            reshape_hidden_states=False, apply_layernorm=True)
    config = DepthAnythingConfig(backbone_config=backbone, neck_hidden_sizes=[48, 96, 192, 384],
                                 fusion_hidden_size=64, head_hidden_size=32,
                                 reassemble_factors=[4, 2, 1, 0.5],
                                 depth_estimation_type='relative')
    return DepthAnythingForDepthEstimation(config).eval()


def _to_tensor(image: np.ndarray, height: int, width: int, device: torch.device) -> torch.Tensor:
    resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    normalised = (resized.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    return torch.from_numpy(normalised.transpose(2, 0, 1)).unsqueeze(0).to(device)


class PeerPair:
    """SegFormer-B0 + Depth-Anything-V2-Small behind the Predictor's `predict` signature,
    eager PyTorch (fp16 autocast on CUDA, like the student's torch backend there)."""

    def __init__(self, input_size: tuple[int, int], device: str = 'cpu'):
        self.input_size = input_size
        self.device = torch.device(device)
        self.segformer = build_segformer_b0().to(self.device)
        self.depth_anything = build_depth_anything_v2_small().to(self.device)

    def parameter_count(self) -> int:
        return sum(p.numel() for m in (self.segformer, self.depth_anything) for p in m.parameters())

    @torch.inference_mode()
    def predict(self, image: np.ndarray) -> Prediction:
        """(H, W, 3) uint8 RGB -> depth (H, W) float32 (relative), labels (H, W) uint8."""
        height, width = image.shape[:2]
        model_h, model_w = self.input_size
        with torch.autocast('cuda', dtype=torch.float16, enabled=self.device.type == 'cuda'):
            logits = self.segformer(
                pixel_values=_to_tensor(image, model_h, model_w, self.device)).logits
            depth_input = _to_tensor(image, model_h // 14 * 14, model_w // 14 * 14, self.device)
            depth = self.depth_anything(pixel_values=depth_input).predicted_depth[0]
        logits = torch.nn.functional.interpolate(logits.float(), size=(height, width),
                                                 mode='bilinear', align_corners=False)
        labels = logits.max(1).indices[0].to(torch.uint8).cpu().numpy()
        depth = cv2.resize(depth.float().cpu().numpy(), (width, height),
                           interpolation=cv2.INTER_LINEAR)
        return Prediction(depth, labels)
