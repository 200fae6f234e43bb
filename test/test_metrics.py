"""Metrics: hand-worked values, edge cases, and streaming == one-shot (hypothesis)."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jointdistill_core.metrics import (
    METRIC_DIRECTIONS,
    DepthAccumulator,
    SegmentationAccumulator,
    delta_m,
    depth_metrics,
    segmentation_metrics,
)


def test_segmentation_hand_worked():
    gt = np.array([[0, 0, 1], [1, 2, 255]])
    pred = np.array([[0, 1, 1], [1, 0, 2]])
    # Valid (gt, pred) pairs: (0,0) (0,1) (1,1) (1,1) (2,0); the void pixel is skipped.
    # class 0: tp 1, fp 1 (gt 2 -> 0), fn 1 (gt 0 -> 1)  -> 1/3
    # class 1: tp 2, fp 1 (gt 0 -> 1), fn 0              -> 2/3
    # class 2: tp 0, fp 0, fn 1                          -> 0
    # class 3: never in gt nor prediction                -> NaN, not averaged
    result = segmentation_metrics(pred, gt, num_classes=4)
    np.testing.assert_allclose(result['iou_per_class'][:3], [1 / 3, 2 / 3, 0.0])
    assert math.isnan(result['iou_per_class'][3])
    assert result['miou'] == pytest.approx((1 / 3 + 2 / 3 + 0) / 3)
    assert result['pixel_acc'] == pytest.approx(3 / 5)
    assert result['valid_pixels'] == 5


def test_class_present_only_in_prediction_counts_towards_miou():
    # class 0: tp 1, fn 1 -> 0.5; class 1: fp 1 -> 0; class 2 absent -> NaN
    result = segmentation_metrics(np.array([0, 1]), np.array([0, 0]), num_classes=3)
    assert result['miou'] == pytest.approx(0.25)
    assert math.isnan(result['iou_per_class'][2])


def test_void_prediction_at_valid_pixel_is_a_miss():
    # gt 1 predicted as void: a false negative of class 1, and wrong for pixel accuracy.
    result = segmentation_metrics(np.array([0, 255]), np.array([0, 1]), num_classes=2)
    np.testing.assert_allclose(result['iou_per_class'], [1.0, 0.0])
    assert result['pixel_acc'] == pytest.approx(0.5)


def test_all_void_gives_nan_and_zero_valid_pixels_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        result = segmentation_metrics(np.zeros((2, 3)), np.full((2, 3), 255), num_classes=3)
    assert math.isnan(result['miou']) and math.isnan(result['pixel_acc'])
    assert result['valid_pixels'] == 0
    assert np.isnan(result['iou_per_class']).all()


def test_segmentation_rejects_out_of_range_ids_and_shape_mismatch():
    with pytest.raises(ValueError, match='ground-truth'):
        segmentation_metrics(np.array([0]), np.array([3]), num_classes=3)
    with pytest.raises(ValueError, match='predicted'):
        segmentation_metrics(np.array([7]), np.array([0]), num_classes=3)
    with pytest.raises(ValueError, match='shape'):
        segmentation_metrics(np.zeros((2, 2)), np.zeros((2, 3)), num_classes=3)


def test_depth_hand_worked():
    gt = np.array([1.0, 2.0, 4.0, 0.0, np.nan])
    pred = np.array([1.1, 1.5, 8.0, 5.0, 5.0])
    # Valid: the first three. |err| = 0.1, 0.5, 4; rel = 0.1, 0.25, 1; ratios 1.1, 4/3, 2.
    result = depth_metrics(pred, gt)
    assert result['valid_pixels'] == 3
    assert result['abs_err'] == pytest.approx(4.6 / 3)
    assert result['abs_rel'] == pytest.approx(1.35 / 3)
    assert result['rmse'] == pytest.approx(math.sqrt((0.01 + 0.25 + 16.0) / 3))
    assert result['delta1'] == pytest.approx(1 / 3)   # 1.1 < 1.25
    assert result['delta2'] == pytest.approx(2 / 3)   # 4/3 < 1.5625
    assert result['delta3'] == pytest.approx(2 / 3)   # 2 > 1.953125


def test_depth_nonfinite_prediction_is_a_failure_not_a_nan():
    # The inf prediction leaves the error means, fails every delta, and is counted.
    result = depth_metrics(np.array([1.0, np.inf]), np.array([1.0, 2.0]))
    assert result['abs_err'] == 0.0 and result['rmse'] == 0.0
    assert result['delta1'] == pytest.approx(0.5) and result['delta3'] == pytest.approx(0.5)
    assert result['nonfinite_predictions'] == 1 and result['valid_pixels'] == 2


def test_depth_non_positive_prediction_fails_delta():
    # ratio of a negative prediction would be negative (< 1.25): it must still fail.
    result = depth_metrics(np.array([-1.0, 0.0]), np.array([1.0, 1.0]))
    assert result['delta1'] == 0.0 and result['delta3'] == 0.0
    assert result['abs_err'] == pytest.approx(1.5)


def test_all_invalid_depth_gives_nan_and_zero_valid_pixels_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        result = depth_metrics(np.ones((2, 2)), np.zeros((2, 2)))
    assert result['valid_pixels'] == 0
    for key in ('abs_err', 'abs_rel', 'rmse', 'delta1', 'delta2', 'delta3'):
        assert math.isnan(result[key]), key


def test_delta_m_signs():
    directions = {'miou': True, 'abs_err': False}
    baseline = {'miou': 0.5, 'abs_err': 1.0}
    # Better on both: miou +10 % (-> -10), abs_err -10 % (-> -10): mean -10.
    assert delta_m({'miou': 0.55, 'abs_err': 0.9}, baseline, directions) == pytest.approx(-10.0)
    # Worse on both: +10 and +20 -> +15.
    assert delta_m({'miou': 0.45, 'abs_err': 1.2}, baseline, directions) == pytest.approx(15.0)
    # Mixed: -10 and +20 -> +5.
    assert delta_m({'miou': 0.55, 'abs_err': 1.2}, baseline, directions) == pytest.approx(5.0)
    assert delta_m(baseline, baseline, directions) == 0.0


def test_delta_m_rejects_missing_nan_and_zero_baseline():
    with pytest.raises(ValueError, match='abs_err'):
        delta_m({'miou': 0.5}, {'miou': 0.5, 'abs_err': 1.0}, {'miou': True, 'abs_err': False})
    with pytest.raises(ValueError, match='miou'):
        delta_m({'miou': math.nan}, {'miou': 0.5}, {'miou': True})
    with pytest.raises(ValueError, match='miou'):
        delta_m({'miou': 0.5}, {'miou': 0.0}, {'miou': True})


def test_metric_directions_cover_every_standard_key():
    seg = segmentation_metrics(np.array([0]), np.array([0]), 2)
    depth = depth_metrics(np.array([1.0]), np.array([1.0]))
    assert set(METRIC_DIRECTIONS) == {'miou', 'pixel_acc'} | {
        'abs_err', 'abs_rel', 'rmse', 'delta1', 'delta2', 'delta3'}
    assert set(METRIC_DIRECTIONS) <= set(seg) | set(depth)
    assert METRIC_DIRECTIONS['miou'] and not METRIC_DIRECTIONS['rmse']


NUM_CLASSES = 4
label_values = st.sampled_from([0, 1, 2, 3, 255])


@st.composite
def label_pairs(draw):
    length = draw(st.integers(0, 12))
    gt = draw(st.lists(label_values, min_size=length, max_size=length))
    pred = draw(st.lists(label_values, min_size=length, max_size=length))
    return np.array(gt, np.int64), np.array(pred, np.int64)


@st.composite
def depth_pairs(draw):
    length = draw(st.integers(0, 12))
    values = st.one_of(st.floats(0.05, 80.0), st.sampled_from([0.0, np.inf, np.nan, -1.0]))
    gt = draw(st.lists(values, min_size=length, max_size=length))
    pred = draw(st.lists(values, min_size=length, max_size=length))
    return np.array(gt), np.array(pred)


def assert_same_metrics(streamed: dict, one_shot: dict) -> None:
    assert streamed.keys() == one_shot.keys()
    for key in streamed:
        np.testing.assert_allclose(streamed[key], one_shot[key], rtol=1e-9, atol=1e-12,
                                   equal_nan=True, err_msg=key)


@settings(max_examples=60, deadline=None)
@given(st.lists(label_pairs(), min_size=1, max_size=6), st.integers(0, 6))
def test_segmentation_streaming_equals_one_shot(images, split_at):
    first, second = SegmentationAccumulator(NUM_CLASSES), SegmentationAccumulator(NUM_CLASSES)
    for index, (gt, pred) in enumerate(images):
        (first if index < split_at else second).update(pred, gt)
    streamed = first.merge(second).compute()
    one_shot = segmentation_metrics(np.concatenate([pred for _, pred in images]),
                                    np.concatenate([gt for gt, _ in images]), NUM_CLASSES)
    assert_same_metrics(streamed, one_shot)


@settings(max_examples=60, deadline=None)
@given(st.lists(depth_pairs(), min_size=1, max_size=6), st.integers(0, 6))
def test_depth_streaming_equals_one_shot(images, split_at):
    first, second = DepthAccumulator(), DepthAccumulator()
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        for index, (gt, pred) in enumerate(images):
            (first if index < split_at else second).update(pred, gt)
        streamed = first.merge(second).compute()
        one_shot = depth_metrics(np.concatenate([pred for _, pred in images]),
                                 np.concatenate([gt for gt, _ in images]))
    assert_same_metrics(streamed, one_shot)


def test_accumulator_pools_pixels_not_image_means():
    # Image A: 1 pixel, error 1. Image B: 3 pixels, error 0. Pooled mean 1/4, not (1+0)/2.
    accumulator = DepthAccumulator()
    accumulator.update(np.array([2.0]), np.array([1.0]))
    accumulator.update(np.ones(3), np.ones(3))
    assert accumulator.compute()['abs_err'] == pytest.approx(0.25)


def test_segmentation_merge_rejects_different_class_counts():
    with pytest.raises(ValueError, match='merge'):
        SegmentationAccumulator(3).merge(SegmentationAccumulator(4))
