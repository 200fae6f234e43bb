"""Evaluation shared by training validation and `jointdistill evaluate`.

Both run the network directly (not the Predictor) on batches at the dataset's resolution,
so validation during training and the evaluate command compute the same numbers. Labels
are the arg-max of the logits; depth is the network's output in metres (a canonical-camera
network's output converted with each sample's K). Metrics are
pooled over the whole split (jointdistill_core.metrics, docs/metrics.md).
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from jointdistill_core.canonical import metric_predictions, model_canonical_focal
from jointdistill_core.metrics import DepthAccumulator, SegmentationAccumulator

SEG_KEYS = ('miou', 'pixel_acc')
DEPTH_KEYS = ('abs_err', 'abs_rel', 'rmse', 'delta1', 'delta2', 'delta3')


@torch.no_grad()
def predict_batch(model: nn.Module, images: torch.Tensor,
                  K: torch.Tensor | None = None) -> tuple[torch.Tensor | None,
                                                          torch.Tensor | None]:
    """images (N, 3, H, W) in [0, 1] -> (labels (N, H, W) int64 or None,
    depth (N, H, W) metres or None). K (N, 3, 3): the images' intrinsics, which turn a
    canonical-camera network's depth into metres (needed for those networks only)."""
    output = model(images)
    labels = output.seg_logits.argmax(dim=1) if output.seg_logits is not None else None
    depth = None
    if output.depth is not None:
        canonical_focal = model_canonical_focal(model)
        if canonical_focal is not None and K is None:
            raise ValueError('a canonical-camera network needs the images\' intrinsics K')
        depth = metric_predictions(output.depth, K, canonical_focal)[:, 0]
    return labels, depth


@torch.no_grad()
def evaluate_model(model: nn.Module, dataset: Dataset, num_classes: int, device: torch.device,
                   batch_size: int = 8, tasks: Iterable[str] = ('seg_logits', 'depth'),
                   workers: int = 0, progress: bool = False) -> dict[str, float]:
    """Metrics of `model` (put in eval mode) over all of `dataset`: for the outputs in
    `tasks` ('seg_logits' -> miou, pixel_acc; 'depth' -> abs_err (m), abs_rel, rmse (m),
    delta1..3). Fractions, not percentages."""
    tasks = tuple(tasks)
    model.eval()
    segmentation = SegmentationAccumulator(num_classes)
    depth_errors = DepthAccumulator()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                        generator=torch.Generator())  # leaves the global RNG untouched
    for batch in tqdm(loader, desc='evaluate', unit='batch', disable=not progress,
                      dynamic_ncols=True):
        labels, depth = predict_batch(model, batch['image'].to(device), batch['K'].to(device))
        if 'seg_logits' in tasks and labels is not None:
            segmentation.update(labels.cpu().numpy(), batch['labels'].numpy())
        if 'depth' in tasks and depth is not None:
            depth_errors.update(depth.float().cpu().numpy(), batch['depth'][:, 0].numpy())
    metrics: dict[str, float] = {}
    if 'seg_logits' in tasks:
        computed = segmentation.compute()
        metrics.update({key: computed[key] for key in SEG_KEYS})
    if 'depth' in tasks:
        computed = depth_errors.compute()
        metrics.update({key: computed[key] for key in DEPTH_KEYS})
    return metrics


def sample_rgb8(sample: dict) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a sample's float image (exact for 8-bit sources)."""
    return (sample['image'].permute(1, 2, 0).numpy() * 255.0).round().clip(0, 255).astype(
        np.uint8)


def evaluate_predictor(predictor, dataset: Dataset, num_classes: int,
                       progress: bool = False,
                       camera_height: float | None = None) -> dict[str, float]:
    """Metrics of `predictor` (jointdistill_core.inference.Predictor) over `dataset`, one frame
    at a time at the frame's own resolution with its K: what the ROS node computes.

    Same keys as `evaluate_model` for what the predictor outputs and the dataset annotates
    (a task without any ground truth in the split is left out), plus the reference of a
    constant depth per frame (the median of that frame's ground truth, an oracle no network
    can know) as 'constant_abs_rel' and 'constant_delta1', and what the depth would score with
    each frame's scale corrected: 'scale_ratio' (median over frames of each frame's median
    predicted / true depth; 1 = no scale bias), 'scale_aligned_abs_rel' and
    'scale_aligned_delta1' (each frame's depth divided by its ratio first: the shape of the
    depth alone, the median scaling of the self-supervised depth literature).

    camera_height (metres above the ground, the same for every frame) rescales each frame's
    depth to the ground (`Predictor.predict`); 'ground_scaled_frames' is then the fraction of
    frames where a ground plane fitted and 'ground_scale' the median factor applied.
    """
    segmentation = SegmentationAccumulator(num_classes) if predictor.num_classes else None
    depth_errors, constant_errors, aligned_errors = (DepthAccumulator(), DepthAccumulator(),
                                                     DepthAccumulator())
    ground_scales, scale_ratios = [], []
    for index in tqdm(range(len(dataset)), desc='evaluate', unit='frame', disable=not progress,
                      dynamic_ncols=True):
        sample = dataset[index]
        prediction = predictor.predict(sample_rgb8(sample), sample['K'].double().numpy(),
                                       camera_height)
        ground_scales.append(prediction.ground_scale)
        depth, labels = prediction.depth, prediction.labels
        truth = sample['depth'][0].numpy()
        if segmentation is not None:
            segmentation.update(labels, sample['labels'].numpy())
        if depth is not None:
            depth_errors.update(depth, truth)
            valid = np.isfinite(truth) & (truth > 0)
            if valid.any():
                constant_errors.update(np.full_like(truth, np.median(truth[valid])), truth)
                ratio = float(np.median(depth[valid] / truth[valid]))
                if np.isfinite(ratio) and ratio > 0:
                    scale_ratios.append(ratio)
                    aligned_errors.update(depth / np.float32(ratio), truth)
    metrics: dict[str, float] = {}
    if segmentation is not None and segmentation.confusion.sum():
        computed = segmentation.compute()
        metrics.update({key: computed[key] for key in SEG_KEYS})
    computed = depth_errors.compute()
    if computed['valid_pixels']:
        metrics.update({key: computed[key] for key in DEPTH_KEYS})
        constant = constant_errors.compute()
        aligned = aligned_errors.compute()
        metrics.update({'constant_abs_rel': constant['abs_rel'],
                        'constant_delta1': constant['delta1'],
                        'scale_ratio': float(np.median(scale_ratios)) if scale_ratios
                        else math.nan,
                        'scale_aligned_abs_rel': aligned['abs_rel'],
                        'scale_aligned_delta1': aligned['delta1']})
    if camera_height is not None:
        fitted = [scale for scale in ground_scales if scale is not None]
        metrics.update({'ground_scaled_frames': len(fitted) / len(ground_scales),
                        'ground_scale': float(np.median(fitted)) if fitted else math.nan})
    return metrics


def selection_score(metrics: dict[str, float], task: str) -> float:
    """Higher is better; picks the `best` checkpoint. multi: miou - abs_rel; seg: miou;
    depth: -abs_rel (both fractions). NaN (nothing valid) counts as -inf."""
    if task == 'seg':
        score = metrics['miou']
    elif task == 'depth':
        score = -metrics['abs_rel']
    else:
        score = metrics['miou'] - metrics['abs_rel']
    return score if math.isfinite(score) else -math.inf


def format_table(metrics: dict[str, float]) -> str:
    """A Markdown table of metric name and value (percent for fractions that are rates)."""
    rows = ['| metric | value |', '|---|---|']
    for key, value in metrics.items():
        rows.append(f'| {key} | {_format_value(key, value)} |')
    return '\n'.join(rows)


def _format_value(key: str, value: float) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return 'n/a'
    if key in ('miou', 'pixel_acc', 'delta1', 'delta2', 'delta3', 'constant_delta1',
               'agreement_miou', 'agreement_pixel_acc', 'agreement_delta1',
               'ground_scaled_frames', 'scale_aligned_delta1'):
        return f'{100 * value:.2f} %'
    if key in ('abs_err', 'rmse'):
        return f'{value:.4f} m'
    return f'{value:.4f}'
