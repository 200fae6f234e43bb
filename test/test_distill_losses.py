"""The shared loss pieces against values worked out by hand (the arithmetic is in comments)."""
from __future__ import annotations

import math

import pytest
import torch

from jointdistill_core.distill.losses import (
    align_scale_shift,
    aligned_depth,
    attention_map,
    depth_in_kind,
    group_labels,
    kl_with_temperature,
    masked_cross_entropy,
    masked_l1,
    normalized_feature_distance,
    resize_to,
    scale_invariant_log_loss,
    seeded_init,
    ssi_label_loss,
    ssi_loss,
    task_loss_terms,
    teacher_depth_loss,
    teacher_hard_labels,
)
from jointdistill_core.models.outputs import ModelOutput

LN2, LN3 = math.log(2.0), math.log(3.0)


def test_masked_cross_entropy_skips_void_pixels():
    # 2 classes, 3 pixels in a row. Pixel 0: logits (0, 0), label 0 -> -ln(1/2) = ln 2.
    # Pixel 1: logits (ln 3, 0), label 1 -> p1 = 1/(3+1) -> -ln(1/4) = 2 ln 2.
    # Pixel 2: void (255) with a wildly wrong logit; it must not count.
    # Mean over the two labelled pixels: (ln 2 + 2 ln 2) / 2 = 1.5 ln 2.
    logits = torch.tensor([[[[0.0, LN3, 0.0]], [[0.0, 0.0, 50.0]]]])  # (1, 2, 1, 3)
    labels = torch.tensor([[[0, 1, 255]]])
    assert masked_cross_entropy(logits, labels).item() == pytest.approx(1.5 * LN2, rel=1e-6)


def test_masked_cross_entropy_all_void_is_zero_and_differentiable():
    logits = torch.randn(1, 3, 2, 2, requires_grad=True)
    loss = masked_cross_entropy(logits, torch.full((1, 2, 2), 255))
    loss.backward()
    assert loss.item() == 0.0
    assert torch.equal(logits.grad, torch.zeros_like(logits))


def test_masked_cross_entropy_resizes_logits_to_labels():
    # A (1, 2, 1, 1) logit map (0, ln 3) upsampled to 2x2 stays constant: p1 = 3/4.
    # Labels 1, 1, 0, void -> (-ln 3/4 - ln 3/4 - ln 1/4) / 3.
    logits = torch.tensor([[[[0.0]], [[LN3]]]])
    labels = torch.tensor([[[1, 1], [0, 255]]])
    expected = (-2 * math.log(0.75) - math.log(0.25)) / 3
    assert masked_cross_entropy(logits, labels).item() == pytest.approx(expected, rel=1e-6)


def test_masked_l1_uses_only_finite_positive_targets():
    # Pixels: (1 vs 2) -> 1; (2 vs 0 invalid); (3 vs 3) -> 0; (4 vs NaN invalid);
    # (5 vs inf invalid); (6 vs -1 invalid). Mean over 2 valid pixels = 0.5 m.
    prediction = torch.tensor([1.0, 2, 3, 4, 5, 6]).reshape(1, 1, 2, 3)
    target = torch.tensor([2.0, 0, 3, math.nan, math.inf, -1]).reshape(1, 1, 2, 3)
    assert masked_l1(prediction, target).item() == pytest.approx(0.5)


def test_masked_l1_without_valid_pixels_is_zero():
    prediction = torch.ones(1, 1, 2, 2, requires_grad=True)
    loss = masked_l1(prediction, torch.zeros(1, 1, 2, 2))
    loss.backward()
    assert loss.item() == 0.0 and prediction.grad is not None


def test_scale_invariant_log_loss():
    # pred (2, 2) vs target (1, 4): d = (ln 2, -ln 2): mean d^2 = ln^2 2, mean d = 0.
    assert scale_invariant_log_loss(torch.tensor([2.0, 2]).reshape(1, 1, 1, 2),
                                    torch.tensor([1.0, 4]).reshape(1, 1, 1, 2),
                                    0.5).item() == pytest.approx(LN2 ** 2, rel=1e-6)
    # pred (2, 8) = 2 x target (1, 4): d = (ln 2, ln 2): ln^2 2 - w ln^2 2.
    prediction = torch.tensor([2.0, 8]).reshape(1, 1, 1, 2)
    target = torch.tensor([1.0, 4]).reshape(1, 1, 1, 2)
    assert scale_invariant_log_loss(prediction, target, 1.0).item() == pytest.approx(0, abs=1e-7)
    assert scale_invariant_log_loss(prediction, target, 0.5).item() == pytest.approx(
        0.5 * LN2 ** 2, rel=1e-6)


def test_normalized_feature_distance_by_hand():
    # Pixel 0: n(3, 4) = (0.6, 0.8), n(1, 0) = (1, 0): (-0.4)^2 + 0.8^2 = 0.8.
    # Pixel 1: n(0, 2) = (0, 1) = n(0, 5): 0. Mean over pixels: 0.4.
    prediction = torch.tensor([[[[3.0, 0.0]], [[4.0, 2.0]]]])  # (1, 2, 1, 2)
    target = torch.tensor([[[[1.0, 0.0]], [[0.0, 5.0]]]])
    assert normalized_feature_distance(prediction, target).item() == pytest.approx(0.4)


def test_normalized_feature_distance_resizes_prediction_to_target():
    # A 1x1 prediction (3, 4) upsamples to a constant (0.6, 0.8) over the 2x2 target.
    # Targets: (1, 0) -> 0.8; (6, 8) -> 0; (0, 1) -> 0.6^2 + 0.2^2 = 0.4;
    # (-3, -4) -> 1.2^2 + 1.6^2 = 4. Mean = 5.2 / 4 = 1.3.
    prediction = torch.tensor([3.0, 4.0]).reshape(1, 2, 1, 1)
    target = torch.tensor([[[1.0, 6.0], [0.0, -3.0]], [[0.0, 8.0], [1.0, -4.0]]]).unsqueeze(0)
    assert normalized_feature_distance(prediction, target).item() == pytest.approx(1.3)


def test_normalized_feature_distance_rejects_channel_mismatch():
    with pytest.raises(ValueError, match='channels differ'):
        normalized_feature_distance(torch.ones(1, 2, 1, 1), torch.ones(1, 3, 1, 1))


def test_kl_with_temperature_by_hand():
    # T = 2. Teacher logits (2 ln 3, 0) / T = (ln 3, 0) -> p = (3/4, 1/4).
    # Student logits (0, 0) -> q = (1/2, 1/2).
    # KL(p || q) = 3/4 ln(3/2) + 1/4 ln(1/2); times T^2 = 4: 3 ln 1.5 - ln 2.
    teacher = torch.tensor([2 * LN3, 0.0]).reshape(1, 2, 1, 1)
    student = torch.zeros(1, 2, 1, 1, requires_grad=True)
    loss = kl_with_temperature(student, teacher, 2.0)
    assert loss.item() == pytest.approx(3 * math.log(1.5) - LN2, rel=1e-6)
    loss.backward()
    assert student.grad is not None


def test_kl_is_zero_for_identical_logits_and_gives_teacher_no_gradient():
    student = torch.randn(2, 4, 3, 3, requires_grad=True)
    teacher = student.detach().clone().requires_grad_(True)
    loss = kl_with_temperature(student, teacher, 3.0)
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    (loss + kl_with_temperature(student, teacher * 2, 3.0)).backward()
    assert teacher.grad is None and student.grad is not None


def test_attention_map_by_hand():
    # One image, 2 channels, 2 pixels: pixel 0 = (1, sqrt 2) -> 3; pixel 1 = (2, 0) -> 4.
    # L2-normalised: (3, 4) / 5 = (0.6, 0.8).
    features = torch.tensor([[[[1.0, 2.0]], [[math.sqrt(2.0), 0.0]]]])
    assert torch.allclose(attention_map(features), torch.tensor([[0.6, 0.8]]), atol=1e-6)


def test_group_labels_keeps_void():
    grouping = torch.tensor([0, 1, 2, 3, 4, 5, 5])
    labels = torch.tensor([[0, 6], [5, 255]])
    assert torch.equal(group_labels(labels, grouping), torch.tensor([[0, 5], [5, 255]]))


def test_resize_nearest_keeps_integer_ids():
    labels = torch.tensor([[[[3, 7]]]])
    assert torch.equal(resize_to(labels, (2, 4), mode='nearest'),
                       torch.tensor([[[[3, 3, 7, 7], [3, 3, 7, 7]]]]))


def test_task_loss_terms_weights_and_drops():
    # CE: logits (0, 0) label 0 -> ln 2; L1: |1 - 3| = 2 m.
    out = ModelOutput(seg_logits=torch.zeros(1, 2, 1, 1), depth=torch.ones(1, 1, 1, 1))
    batch = {'labels': torch.zeros(1, 1, 1, dtype=torch.long),
             'depth': torch.full((1, 1, 1, 1), 3.0)}
    terms = task_loss_terms(batch, out, 0.5, 2.0)
    assert terms['task/seg'].item() == pytest.approx(0.5 * LN2)
    assert terms['task/depth'].item() == pytest.approx(4.0)
    assert set(task_loss_terms(batch, out, 1.0, 0.0)) == {'task/seg'}


def test_seeded_init_is_deterministic_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    with seeded_init(9):
        first = torch.nn.Conv2d(2, 2, 1).weight.detach().clone()
    assert torch.equal(torch.rand(3), expected_next)
    with seeded_init(9):
        second = torch.nn.Conv2d(2, 2, 1).weight.detach().clone()
    assert torch.equal(first, second)


def test_kl_skips_ignored_pixels_and_is_zero_when_all_are():
    # Pixel 0 as above (3 ln 1.5 - ln 2); pixel 1 a confident teacher (0, 5) the student
    # disagrees with. Ignoring pixel 1 leaves pixel 0's value alone, not half of it.
    teacher = torch.tensor([[2 * LN3, 0.0], [0.0, 5.0]]).T.reshape(1, 2, 1, 2)
    student = torch.zeros(1, 2, 1, 2, requires_grad=True)
    ignore = torch.tensor([[[False, True]]])
    loss = kl_with_temperature(student, teacher, 2.0, ignore=ignore)
    assert loss.item() == pytest.approx(3 * math.log(1.5) - LN2, rel=1e-6)
    assert kl_with_temperature(student, teacher, 2.0).item() > loss.item()
    nothing = kl_with_temperature(student, teacher, 2.0, ignore=torch.ones(1, 1, 2, dtype=bool))
    nothing.backward()
    assert nothing.item() == 0.0 and torch.equal(student.grad, torch.zeros_like(student))


def test_teacher_hard_labels_are_void_where_the_teacher_is_void():
    logits = torch.tensor([[0.0, 3.0], [2.0, 0.0], [0.0, 1.0]]).T.reshape(1, 2, 1, 3)
    out = ModelOutput(seg_logits=logits, seg_void=torch.tensor([[[False, False, True]]]))
    assert teacher_hard_labels(out).tolist() == [[[1, 0, 255]]]
    assert teacher_hard_labels(ModelOutput(seg_logits=logits)).tolist() == [[[1, 0, 1]]]
    # At twice the size, the void mask follows nearest-neighbour.
    assert teacher_hard_labels(out, (1, 6)).tolist() == [[[1, 1, 0, 0, 255, 255]]]


# ---- depth kinds: the scale-and-shift-invariant loss and the alignment ---------------------
# target t = (1, 2, 3, 10): lower median 2, centred (-1, 0, 1, 8), mean |.| = 10/4 = 2.5,
# normalised (-0.4, 0, 0.4, 3.2). Prediction p = (1, 2, 4, 10): median 2, centred
# (-1, 0, 2, 8), mean |.| = 11/4, normalised (-4/11, 0, 8/11, 32/11). Differences
# 2/55, 0, 18/55, -16/55: mean absolute value 36/55 / 4 = 9/55.
SSI_TARGET = (1.0, 2.0, 3.0, 10.0)
SSI_PREDICTION = (1.0, 2.0, 4.0, 10.0)
SSI_BY_HAND = 9 / 55


def _row(*values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32).reshape(1, 1, 1, -1)


def test_ssi_loss_by_hand_and_invariant_to_scale_and_shift_of_either_side():
    prediction, target = _row(*SSI_PREDICTION), _row(*SSI_TARGET)
    assert ssi_loss(prediction, target).item() == pytest.approx(SSI_BY_HAND, rel=1e-6)
    assert ssi_loss(3.0 * prediction + 7.0, 0.5 * target - 2.0).item() == \
        pytest.approx(SSI_BY_HAND, rel=1e-5)
    assert ssi_loss(2.0 * target + 5.0, target).item() == pytest.approx(0.0, abs=1e-6)


def test_ssi_loss_uses_only_valid_pixels_and_images():
    # A non-finite target pixel is left out; a second image without a valid pixel does not
    # count in the mean over images.
    prediction = torch.cat([_row(*SSI_PREDICTION, 50.0), _row(1.0, 2.0, 3.0, 4.0, 5.0)])
    target = torch.cat([_row(*SSI_TARGET, math.nan), torch.full((1, 1, 1, 5), math.nan)])
    assert ssi_loss(prediction, target).item() == pytest.approx(SSI_BY_HAND, rel=1e-6)


def test_ssi_loss_gradient_carries_no_scale_or_shift():
    # L(a p + b) = L(p): the gradient is orthogonal to p (Euler, degree 0) and sums to 0.
    prediction = _row(*SSI_PREDICTION).requires_grad_(True)
    ssi_loss(prediction, _row(*SSI_TARGET)).backward()
    grad = prediction.grad.flatten()
    assert grad.abs().sum() > 0
    assert grad.sum().item() == pytest.approx(0.0, abs=1e-6)
    assert (grad * prediction.detach().flatten()).sum().item() == pytest.approx(0.0, abs=1e-6)


def test_ssi_loss_without_valid_pixels_is_zero_and_differentiable():
    prediction = torch.ones(2, 1, 2, 2, requires_grad=True)
    loss = ssi_loss(prediction, torch.full((2, 1, 2, 2), math.nan))
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(prediction.grad, torch.zeros_like(prediction))


def test_teacher_depth_loss_by_depth_kind():
    # relative_inverse: the student's depth (1, 1/2, 1/4, 1/10) m is inverse depth
    # SSI_PREDICTION; the teacher's disparity is SSI_TARGET with an unknown scale 3 and shift 7.
    student = 1.0 / _row(*SSI_PREDICTION)
    disparity = 3.0 * _row(*SSI_TARGET) + 7.0
    assert teacher_depth_loss(student, disparity, 'relative_inverse').item() == \
        pytest.approx(SSI_BY_HAND, rel=1e-5)
    # relative: matched in depth itself, the same numbers with the roles of depth taken.
    assert teacher_depth_loss(_row(*SSI_PREDICTION), 2.0 * _row(*SSI_TARGET) + 1.0,
                              'relative').item() == pytest.approx(SSI_BY_HAND, rel=1e-5)
    # metric: the method's metric loss (default L1 in metres): mean |p - t| = 1/4.
    assert teacher_depth_loss(_row(*SSI_PREDICTION), _row(*SSI_TARGET), 'metric').item() == \
        pytest.approx(0.25)
    silog = teacher_depth_loss(_row(1.0, 2.0), _row(2.0, 4.0), 'metric', 'silog', 1.0)
    assert silog.item() == pytest.approx(0.0, abs=1e-6)


def _grid_depth() -> torch.Tensor:
    """A 4x4 image (16 pixels, MIN_ANCHOR_PIXELS) of depths 1, 2, ..., 16 m; mean 8.5 m."""
    return torch.arange(1.0, 17.0).reshape(1, 1, 4, 4)


def test_relative_teacher_anchored_to_depth_labels_teaches_the_metric_scale():
    # Teacher disparity 3 / d + 7 (unknown scale 3 and shift 7). Fitted to the labels' inverse
    # depth 1 / d by least squares: a = 1/3, c = -7/3 exactly, so the anchored target is d
    # itself and a student predicting 2 d is off by mean |2d - d| = mean d = 8.5 m (L1). The
    # scale-and-shift-invariant loss alone cannot see that error: 0.
    depth = _grid_depth()
    disparity = 3.0 / depth + 7.0
    anchored = teacher_depth_loss(2.0 * depth, disparity, 'relative_inverse', 'l1',
                                  depth_labels=depth, max_depth=100.0)
    assert anchored.item() == pytest.approx(8.5, rel=1e-5)
    assert teacher_depth_loss(2.0 * depth, disparity, 'relative_inverse').item() == \
        pytest.approx(0.0, abs=1e-6)
    assert teacher_depth_loss(depth, disparity, 'relative_inverse', 'l1', depth_labels=depth,
                              max_depth=100.0).item() == pytest.approx(0.0, abs=1e-4)


def test_anchored_depth_is_capped_at_the_farthest_label():
    # 20 pixels, labels 1..19 m and one unlabelled pixel the teacher sees at 100 m. The fit
    # (exact on the labels: 1/d = (t - 7) / 3) puts that pixel at 100 m; the target stops at the
    # farthest label, 19 m. A student saying 100 m there is off by 81 m on 1 of 20 pixels.
    teacher_depth = torch.cat([torch.arange(1.0, 20.0), torch.tensor([100.0])]).reshape(1, 1, 4, 5)
    labels = teacher_depth.clone()
    labels[..., -1, -1] = 0.0
    disparity = 3.0 / teacher_depth + 7.0
    loss = teacher_depth_loss(teacher_depth, disparity, 'relative_inverse', 'l1',
                              depth_labels=labels, max_depth=400.0)
    assert loss.item() == pytest.approx(81.0 / 20.0, rel=1e-4)
    capped_student = teacher_depth.clone()
    capped_student[..., -1, -1] = 19.0
    assert teacher_depth_loss(capped_student, disparity, 'relative_inverse', 'l1',
                              depth_labels=labels, max_depth=400.0).item() == \
        pytest.approx(0.0, abs=1e-4)

def test_relative_teacher_loss_mixes_anchored_and_unlabelled_images_by_count():
    # Image 0 has labels (the case above: 8.5); image 1 has none (all 0 m), so the SSI loss
    # applies there, and its student has the teacher's shape exactly: 0. Mean: 8.5 / 2.
    depth = _grid_depth()
    students = torch.cat([2.0 * depth, depth])
    disparity = torch.cat([3.0 / depth + 7.0, 3.0 / depth + 7.0])
    labels = torch.cat([depth, torch.zeros_like(depth)])
    loss = teacher_depth_loss(students, disparity, 'relative_inverse', 'l1',
                              depth_labels=labels, max_depth=100.0)
    assert loss.item() == pytest.approx(4.25, rel=1e-5)


def test_relative_teacher_needs_enough_labelled_pixels_to_be_anchored():
    # 15 valid pixels (< MIN_ANCHOR_PIXELS): the image keeps the scale-invariant loss (0 for a
    # student of the right shape and the wrong scale).
    depth = _grid_depth()
    labels = depth.clone()
    labels[..., 0, 0] = 0.0
    loss = teacher_depth_loss(2.0 * depth, 3.0 / depth + 7.0, 'relative_inverse', 'l1',
                              depth_labels=labels, max_depth=100.0)
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match='max_depth'):
        teacher_depth_loss(depth, 3.0 / depth + 7.0, 'relative_inverse', depth_labels=depth)


def test_ssi_label_loss_reads_labels_in_the_kinds_space_and_ignores_invalid_ones():
    # Labels 1, 1/2, 1/3, 1/10 m are inverse depth SSI_TARGET; the 0 m pixel is invalid.
    labels = 1.0 / _row(*SSI_TARGET, math.inf)
    prediction = _row(*SSI_PREDICTION, 123.0)
    assert ssi_label_loss(prediction, labels, 'relative_inverse').item() == \
        pytest.approx(SSI_BY_HAND, rel=1e-5)
    none_valid = ssi_label_loss(prediction.requires_grad_(True), torch.zeros_like(labels),
                                'relative_inverse')
    none_valid.backward()
    assert none_valid.item() == 0.0 and not torch.isnan(prediction.grad).any()


def test_align_scale_shift_by_hand():
    # p = (0, 1, 2), t = (1, 2, 4): mean p 1, mean t 7/3, cov 1, var 2/3 -> s = 3/2,
    # b = 7/3 - 3/2 = 5/6: aligned (5/6, 7/3, 23/6). The masked pixel still gets s p + b.
    prediction, target = _row(0.0, 1.0, 2.0, 10.0), _row(1.0, 2.0, 4.0, -99.0)
    mask = torch.tensor([True, True, True, False]).reshape(1, 1, 1, 4)
    aligned = align_scale_shift(prediction, target, mask)
    assert aligned.flatten().tolist() == pytest.approx([5 / 6, 7 / 3, 23 / 6, 15 + 5 / 6])
    constant = align_scale_shift(torch.ones(1, 1, 1, 3), _row(1.0, 2.0, 6.0),
                                 torch.ones(1, 1, 1, 3, dtype=bool))
    assert constant.flatten().tolist() == pytest.approx([3.0, 3.0, 3.0])


def test_aligned_depth_recovers_metres_from_relative_inverse_depth():
    depth = _row(1.0, 2.0, 4.0, 0.0)   # metres; the last pixel has no label
    disparity = 2.0 / depth.clamp_min(0.5) + 1.0  # unknown scale 2 and shift 1
    metres = aligned_depth(disparity, depth, 'relative_inverse', max_depth=80.0)
    assert metres.flatten()[:3].tolist() == pytest.approx([1.0, 2.0, 4.0], rel=1e-6)
    # Depth beyond max_depth is capped: aligned inverse depth below 1 / max_depth.
    assert aligned_depth(disparity, depth, 'relative_inverse', max_depth=3.0).flatten()[2] \
        == pytest.approx(3.0)
    relative = aligned_depth(5.0 * depth - 1.0, depth, 'relative', max_depth=80.0)
    assert relative.flatten()[:3].tolist() == pytest.approx([1.0, 2.0, 4.0], rel=1e-6)
    assert torch.equal(aligned_depth(depth, depth, 'metric', 80.0), depth)
    assert depth_in_kind(_row(2.0, 0.0), 'relative_inverse').flatten().tolist() == \
        pytest.approx([0.5, 1000.0])
