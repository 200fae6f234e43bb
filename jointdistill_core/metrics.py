"""Segmentation and depth metrics as the multi-task literature defines them (docs/metrics.md).

All functions take numpy arrays of any matching shape (one image (H, W), a batch (N, H, W)
or (N, 1, H, W)) and return fractions, not percentages. Statistics are pooled over pixels:
an accumulator fed image by image equals the one-shot result on the concatenated arrays.

Undefined results are explicit: with no valid pixel (all-void labels, all-invalid depth)
every ratio is NaN and `valid_pixels` is 0; no numpy warning is raised.
"""
from __future__ import annotations

import math

import numpy as np

IGNORE_INDEX = 255
DEPTH_THRESHOLD_BASE = 1.25

# True where higher is better; the standard keys of segmentation_metrics and depth_metrics.
METRIC_DIRECTIONS: dict[str, bool] = {
    'miou': True, 'pixel_acc': True,
    'abs_err': False, 'abs_rel': False, 'rmse': False,
    'delta1': True, 'delta2': True, 'delta3': True,
}


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator) / float(denominator) if denominator > 0 else math.nan


class SegmentationAccumulator:
    """Confusion matrix over a whole split.

    confusion[g, p] counts valid pixels with ground truth g and prediction p (int64).
    Pixels whose ground truth is `ignore_index` are skipped. A prediction equal to
    `ignore_index` (the model abstained) at a valid pixel counts as wrong: a false negative
    of the true class, and part of the pixel-accuracy total.
    """

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX) -> None:
        if num_classes < 1:
            raise ValueError(f'num_classes must be >= 1, got {num_classes}')
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.confusion = np.zeros((num_classes, num_classes), np.int64)
        self.abstained = np.zeros(num_classes, np.int64)

    def update(self, pred: np.ndarray, gt: np.ndarray) -> None:
        """Add one image or batch: integer class ids of the same shape."""
        pred, gt = np.asarray(pred), np.asarray(gt)
        if pred.shape != gt.shape:
            raise ValueError(f'prediction shape {pred.shape} differs from ground truth {gt.shape}')
        valid = gt != self.ignore_index
        gt_ids, pred_ids = gt[valid].astype(np.int64), pred[valid].astype(np.int64)
        classes = self.num_classes
        if gt_ids.size and (gt_ids.min() < 0 or gt_ids.max() >= classes):
            raise ValueError(f'ground-truth ids must be in [0, {classes}) or {self.ignore_index}')
        abstain = pred_ids == self.ignore_index
        if np.any(~abstain & ((pred_ids < 0) | (pred_ids >= classes))):
            raise ValueError(f'predicted ids must be in [0, {classes}) or {self.ignore_index}')
        self.abstained += np.bincount(gt_ids[abstain], minlength=classes)
        index = gt_ids[~abstain] * classes + pred_ids[~abstain]
        self.confusion += np.bincount(index, minlength=classes * classes).reshape(classes, classes)

    def merge(self, other: SegmentationAccumulator) -> SegmentationAccumulator:
        """Add another accumulator's counts (e.g. from another worker) into this one."""
        if (other.num_classes, other.ignore_index) != (self.num_classes, self.ignore_index):
            raise ValueError('cannot merge accumulators with different classes or ignore index')
        self.confusion += other.confusion
        self.abstained += other.abstained
        return self

    def compute(self) -> dict:
        """{'miou', 'pixel_acc', 'iou_per_class' (float64 array, NaN for absent classes),
        'valid_pixels'}. A class counts towards mIoU when it occurs in gt or prediction."""
        confusion = self.confusion.astype(np.float64)
        true_positive = np.diag(confusion)
        false_positive = confusion.sum(axis=0) - true_positive
        false_negative = confusion.sum(axis=1) - true_positive + self.abstained
        union = true_positive + false_positive + false_negative
        iou = np.full(self.num_classes, np.nan)
        present = union > 0
        iou[present] = true_positive[present] / union[present]
        valid_pixels = int(self.confusion.sum() + self.abstained.sum())
        return {
            'miou': float(iou[present].mean()) if present.any() else math.nan,
            'pixel_acc': _ratio(true_positive.sum(), valid_pixels),
            'iou_per_class': iou,
            'valid_pixels': valid_pixels,
        }


class DepthAccumulator:
    """Pooled depth error sums over a whole split (float64).

    Valid pixels: ground truth > 0 and finite (metres). A prediction that is not finite at a
    valid pixel is a failure: it is left out of abs_err, abs_rel and rmse (which would
    otherwise be inf/NaN), counts as outside every delta threshold, and is reported as
    `nonfinite_predictions`. A prediction <= 0 also fails every delta threshold.
    """

    def __init__(self) -> None:
        self.valid_pixels = 0
        self.finite_pixels = 0
        self.sum_abs = 0.0
        self.sum_rel = 0.0
        self.sum_squared = 0.0
        self.within = np.zeros(3, np.int64)

    def update(self, pred: np.ndarray, gt: np.ndarray) -> None:
        """Add one image or batch of depths in metres (same shape)."""
        pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
        if pred.shape != gt.shape:
            raise ValueError(f'prediction shape {pred.shape} differs from ground truth {gt.shape}')
        valid = np.isfinite(gt) & (gt > 0)
        pred, gt = pred[valid], gt[valid]
        finite = np.isfinite(pred)
        error = pred[finite] - gt[finite]
        self.valid_pixels += int(gt.size)
        self.finite_pixels += int(finite.sum())
        self.sum_abs += float(np.abs(error).sum())
        self.sum_rel += float((np.abs(error) / gt[finite]).sum())
        self.sum_squared += float((error ** 2).sum())
        positive = finite & (pred > 0)
        ratio = np.maximum(pred[positive] / gt[positive], gt[positive] / pred[positive])
        for k in range(3):
            self.within[k] += int((ratio < DEPTH_THRESHOLD_BASE ** (k + 1)).sum())

    def merge(self, other: DepthAccumulator) -> DepthAccumulator:
        """Add another accumulator's sums (e.g. from another worker) into this one."""
        self.valid_pixels += other.valid_pixels
        self.finite_pixels += other.finite_pixels
        self.sum_abs += other.sum_abs
        self.sum_rel += other.sum_rel
        self.sum_squared += other.sum_squared
        self.within += other.within
        return self

    def compute(self) -> dict:
        """{'abs_err' (m), 'abs_rel', 'rmse' (m), 'delta1', 'delta2', 'delta3',
        'valid_pixels', 'nonfinite_predictions'}."""
        return {
            'abs_err': _ratio(self.sum_abs, self.finite_pixels),
            'abs_rel': _ratio(self.sum_rel, self.finite_pixels),
            'rmse': (math.sqrt(self.sum_squared / self.finite_pixels) if self.finite_pixels
                     else math.nan),
            'delta1': _ratio(self.within[0], self.valid_pixels),
            'delta2': _ratio(self.within[1], self.valid_pixels),
            'delta3': _ratio(self.within[2], self.valid_pixels),
            'valid_pixels': self.valid_pixels,
            'nonfinite_predictions': self.valid_pixels - self.finite_pixels,
        }


def segmentation_metrics(pred: np.ndarray, gt: np.ndarray, num_classes: int,
                         ignore_index: int = IGNORE_INDEX) -> dict:
    """mIoU, pixel accuracy and per-class IoU of integer label maps (see
    SegmentationAccumulator for the exact rules)."""
    accumulator = SegmentationAccumulator(num_classes, ignore_index)
    accumulator.update(pred, gt)
    return accumulator.compute()


def depth_metrics(pred: np.ndarray, gt: np.ndarray) -> dict:
    """abs_err, abs_rel, rmse, delta1..3 of depths in metres over valid ground truth
    (see DepthAccumulator for the exact rules)."""
    accumulator = DepthAccumulator()
    accumulator.update(pred, gt)
    return accumulator.compute()


def delta_m(metrics: dict, baseline: dict, higher_is_better: dict[str, bool]) -> float:
    """Mean relative difference to a baseline, in percent (Maninis et al. 2019).

        delta_m = (1/K) * sum_k (-1)^{s_k} * (M_k - B_k) / B_k * 100

    over the K keys of `higher_is_better`, with s_k = 1 where higher is better, 0 where lower
    is better. NEGATIVE = BETTER than the baseline (the Nash-MTL convention); e.g. a mIoU of
    0.55 against a baseline of 0.50 alone gives -10.0. Missing keys, NaN values and a zero
    baseline raise ValueError.
    """
    if not higher_is_better:
        raise ValueError('delta_m needs at least one metric key')
    terms = []
    for key, higher in higher_is_better.items():
        if key not in metrics or key not in baseline:
            missing_from = 'metrics' if key not in metrics else 'baseline'
            raise ValueError(f'metric {key!r} is missing from the {missing_from}')
        value, reference = float(metrics[key]), float(baseline[key])
        if not (math.isfinite(value) and math.isfinite(reference)) or reference == 0:
            raise ValueError(f'metric {key!r}: need finite values and a non-zero baseline, got '
                             f'{value} vs baseline {reference}')
        sign = -1.0 if higher else 1.0
        terms.append(sign * (value - reference) / reference * 100.0)
    return sum(terms) / len(terms)
