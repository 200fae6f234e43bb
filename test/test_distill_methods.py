"""Distillation methods: registry, each loss term by hand, adaptive weights, knowledge
trajectory, label-free amalgamation, and a few real optimisation steps per method.

Two kinds of tiny networks appear: the project's real JointStudent / SegTeacher /
DepthTeacher at a tiny width (for training steps), and `FixedOutputNet` / `ControllableStudent`,
small modules whose outputs the test sets, so that every loss value can be worked out by hand.
"""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from jointdistill_core.config import ConfigError
from jointdistill_core.distill import METHODS, build_method, method_params
from jointdistill_core.distill.jointdistill import updated_weights
from jointdistill_core.models.outputs import ModelOutput
from jointdistill_core.models.student import JointStudent
from jointdistill_core.models.teachers import DepthTeacher, SegTeacher

LN2, LN3 = math.log(2.0), math.log(3.0)
# T = 2, teacher logits (2 ln 3, 0) -> p = (3/4, 1/4); student (0, 0) -> q = (1/2, 1/2):
# T^2 KL(p || q) = 4 (3/4 ln 1.5 + 1/4 ln 0.5) = 3 ln 1.5 - ln 2.
KL_BY_HAND = 3 * math.log(1.5) - LN2
MAX_DEPTH = 20.0


pytestmark = pytest.mark.usefixtures('single_thread')


class FixedOutputNet(nn.Module):
    """Returns the ModelOutput it was given, whatever the input; `feature_channels` from it."""

    def __init__(self, output: ModelOutput):
        super().__init__()
        self.output = output
        self.feature_channels = {key: value.shape[1] for key, value in output.features.items()}
        self.anchor = nn.Parameter(torch.zeros(1))  # gives the module a device

    def forward(self, images: torch.Tensor) -> ModelOutput:
        return self.output


class ControllableStudent(nn.Module):
    """Outputs set by the test: seg logits, depth, and one feature map (a parameter, so the
    trajectory loss has something to pull on) used for every feature key."""

    def __init__(self, seg_logits: torch.Tensor, depth: torch.Tensor, feature_map: torch.Tensor):
        super().__init__()
        self.seg_logits, self.depth = seg_logits, depth
        self.feature_map = nn.Parameter(feature_map.clone())
        channels = feature_map.shape[1]
        self.feature_channels = {k: channels for k in ('enc', 'enc_mid', 'dec_seg', 'dec_depth')}

    def forward(self, images: torch.Tensor) -> ModelOutput:
        features = self.feature_map.expand(images.shape[0], -1, -1, -1)
        return ModelOutput(seg_logits=self.seg_logits, depth=self.depth,
                           features={k: features for k in self.feature_channels})


class LabelFreeBatch(dict):
    """A batch whose ground truth must not be touched."""

    def __getitem__(self, key):
        if key in ('labels', 'depth'):
            raise AssertionError(f'the method read batch[{key!r}]')
        return super().__getitem__(key)

    def get(self, key, default=None):
        if key in ('labels', 'depth'):
            raise AssertionError(f'the method read batch.get({key!r})')
        return super().get(key, default)


def set_identity(conv: nn.Conv2d) -> None:
    with torch.no_grad():
        conv.weight.copy_(torch.eye(conv.out_channels, conv.in_channels).reshape(conv.weight.shape))
        conv.bias.zero_()


def features(*rows) -> torch.Tensor:
    """(1, C, 1, W) from per-channel rows."""
    return torch.tensor(rows, dtype=torch.float32).unsqueeze(0).unsqueeze(2)


def tiny_models(num_classes: int = 7):
    torch.manual_seed(0)
    student = JointStudent(width_mult=0.25, num_classes=num_classes, max_depth=MAX_DEPTH,
                           decoder_channels=(16, 8, 8))
    seg = SegTeacher(num_classes, width=8, blocks=(1, 1, 1, 1)).eval().requires_grad_(False)
    depth = DepthTeacher(MAX_DEPTH, width=8, blocks=(1, 1, 1, 1)).eval().requires_grad_(False)
    return student, {'seg': seg, 'depth': depth}


def street_batch(count: int = 2, seed: int = 0) -> dict:
    """Images (N, 3, 32, 64) with sky / building / road bands, matching labels and depth."""
    generator = torch.Generator().manual_seed(seed)
    rows = torch.arange(32).float().reshape(32, 1).expand(32, 64)
    labels = torch.full((32, 64), 1, dtype=torch.long)           # construction
    labels[:8] = 4                                               # sky
    labels[20:] = 0                                              # flat
    labels[18:20] = 255                                          # void boundary
    depth = torch.where(labels == 4, torch.zeros(()), 40.0 / (rows - 6.0).clamp(min=2.0))
    colours = torch.tensor([[0.5, 0.3, 0.5], [0.4, 0.4, 0.4], [0, 0, 0], [0, 0, 0],
                            [0.4, 0.6, 0.9]])
    image = colours[labels.clamp(max=4)].permute(2, 0, 1)
    images = (image + 0.05 * torch.randn(count, 3, 32, 64, generator=generator)).clamp(0, 1)
    return {'image': images, 'labels': labels.expand(count, -1, -1).clone(),
            'depth': depth.expand(count, 1, -1, -1).clone()}


# ------------------------------------------------------------------------------ registry
def test_registry_names_and_interface():
    assert set(METHODS) == {'mtl', 'static_kd', 'jointdistill', 'sd_mtcnn', 'xdistill',
                            'amalgamation'}
    for name, cls in METHODS.items():
        assert cls.name == name
        assert set(cls.teachers_needed) <= {'seg', 'depth'}
    assert METHODS['amalgamation'].uses_labels is False
    assert METHODS['mtl'].teachers_needed == () and METHODS['sd_mtcnn'].teachers_needed == ()
    assert METHODS['xdistill'].teachers_needed == ('seg',)


@pytest.mark.parametrize('name', sorted(METHODS))
def test_every_method_builds_from_defaults(name):
    student, _ = tiny_models()
    method = build_method(name, {}, student, 7, MAX_DEPTH)
    assert isinstance(method, METHODS[name])
    # The method holds its student, but never registers it (it would be saved and optimised
    # twice, and moved with the method).
    assert method.student is student
    assert not any(p is q for p in method.parameters() for q in student.parameters())
    assert not any(key.startswith('student') for key in method.state_dict())
    assert student not in list(method.modules())


@pytest.mark.parametrize('name, params, message', [
    ('static_kd', {'lambda_sed': 1.0}, 'unknown key'),
    ('static_kd', {'lambda_seg': 'big'}, 'method.params.lambda_seg'),
    ('static_kd', {'layers': ['enc', 'bottleneck']}, 'layers'),
    ('jointdistill', {'beta': 0.9}, 'beta'),
    ('jointdistill', {'direction': 'sideways'}, 'direction'),
    ('jointdistill', {'fusion': 'yes'}, 'fusion'),
    ('xdistill', {'grouping': [0, 2, 2, 2, 2, 2, 2]}, 'grouping'),
    ('amalgamation', {'seg_target': 'medium'}, 'seg_target'),
    ('mtl', {'seg_weight': -1.0}, 'seg_weight'),
])
def test_bad_params_are_config_errors_naming_the_key(name, params, message):
    with pytest.raises(ConfigError, match=message):
        method_params(name, params, source='train.yaml')


def test_unknown_method_and_grouping_length_errors():
    student, _ = tiny_models()
    with pytest.raises(ConfigError, match="unknown method 'kd'"):
        build_method('kd', {}, student, 7, MAX_DEPTH)
    with pytest.raises(ConfigError, match='grouping has 3 entries'):
        build_method('xdistill', {'grouping': [0, 1, 1]}, student, 7, MAX_DEPTH)


# ------------------------------------------------------------------------------ mtl
def test_mtl_terms_by_hand():
    # CE: logits (ln 3, 0) with labels 0, 1 -> -ln 3/4, -ln 1/4; mean = (ln 4/3 + ln 4) / 2.
    # L1: |2 - 1| and |2 - 5| over valid pixels (the 0 one is invalid) -> mean 2 m.
    student_out = ModelOutput(seg_logits=features([LN3, LN3, LN3], [0, 0, 0]),
                              depth=torch.full((1, 1, 1, 3), 2.0))
    batch = {'labels': torch.tensor([[[0, 1, 255]]]),
             'depth': torch.tensor([1.0, 5.0, 0.0]).reshape(1, 1, 1, 3)}
    method = build_method('mtl', {'depth_weight': 0.5}, nn.Module(), 2, MAX_DEPTH)
    terms = method.losses(batch, student_out, {})
    assert terms['task/seg'].item() == pytest.approx((math.log(4 / 3) + math.log(4)) / 2)
    assert terms['task/depth'].item() == pytest.approx(0.5 * 2.0)


# ------------------------------------------------------------------------------ static_kd
def static_kd_fixture(params: dict):
    student_out = ModelOutput(
        seg_logits=torch.zeros(1, 2, 1, 1), depth=torch.full((1, 1, 1, 1), 1.0),
        features={'enc': features([3.0, 0.0], [4.0, 2.0]), 'dec_seg': features([1.0], [1.0]),
                  'dec_depth': features([3.0], [4.0])})
    seg_teacher = ModelOutput(
        seg_logits=torch.tensor([2 * LN3, 0.0]).reshape(1, 2, 1, 1),
        features={'enc': features([1.0, 0.0], [0.0, 5.0]), 'dec_seg': features([2.0], [2.0])})
    depth_teacher = ModelOutput(
        depth=torch.full((1, 1, 1, 1), 3.0),
        features={'enc': features([6.0, 0.0], [8.0, 2.0]),
                  'dec_depth': torch.tensor([[[1.0, 6.0], [0.0, -3.0]],
                                             [[0.0, 8.0], [1.0, -4.0]]]).unsqueeze(0)})
    student = FixedOutputNet(student_out)
    teacher_outs = {'seg': seg_teacher, 'depth': depth_teacher}
    method = build_method('static_kd', params, student, 2, MAX_DEPTH)
    method.setup({'image': torch.zeros(1, 3, 2, 2)}, {},
                 {task: FixedOutputNet(out) for task, out in teacher_outs.items()})
    for conv in method.adaptors.values():
        set_identity(conv)
    return method, student_out, teacher_outs


def test_static_kd_feature_and_logit_terms_by_hand():
    method, student_out, teacher_outs = static_kd_fixture(
        {'seg_weight': 0.0, 'depth_weight': 0.0, 'lambda_seg': 1.0, 'lambda_depth': 2.0,
         'logit_kd_weight': 0.5})
    terms = method.losses({}, student_out, teacher_outs)
    # seg teacher, enc: pixel 0 n(3,4)=(.6,.8) vs (1,0) -> 0.8; pixel 1 n(0,2) = n(0,5) -> 0;
    # mean 0.4. dec_seg: n(1,1) = n(2,2) -> 0. Total 0.4 x lambda_seg 1.
    assert terms['kd/feat_seg'].item() == pytest.approx(0.4)
    # depth teacher, enc: n(3,4) = n(6,8), n(0,2) = n(0,2) -> 0. dec_depth: the 1x1 student
    # map (3,4) upsampled against the 2x2 teacher map (1,0),(6,8),(0,1),(-3,-4):
    # 0.8 + 0 + 0.4 + 4 over 4 pixels = 1.3. Total 1.3 x lambda_depth 2 = 2.6.
    assert terms['kd/feat_depth'].item() == pytest.approx(2.6)
    assert terms['kd/logit_seg'].item() == pytest.approx(0.5 * KL_BY_HAND)
    assert terms['kd/logit_depth'].item() == pytest.approx(0.5 * abs(1.0 - 3.0))
    assert not any(key.startswith('task/') for key in terms)


def test_static_kd_adaptor_shapes_follow_teachers():
    student, teachers = tiny_models()
    method = build_method('static_kd', {}, student, 7, MAX_DEPTH)
    method.setup(street_batch(1), street_batch(1), teachers)
    assert method.adaptors['seg_enc'].in_channels == student.feature_channels['enc']
    assert method.adaptors['seg_enc'].out_channels == teachers['seg'].feature_channels['enc']
    depth_channels = teachers['depth'].feature_channels['dec_depth']
    assert method.adaptors['depth_dec'].out_channels == depth_channels


def test_prediction_only_teachers_are_a_config_error_for_feature_methods():
    """An external (file) teacher returns predictions only: methods that distil teacher
    features say so in one configuration error; jointdistill without fusion accepts it."""
    student, _ = tiny_models()
    prediction_only = {'seg': FixedOutputNet(ModelOutput(seg_logits=torch.zeros(1, 7, 32, 64))),
                       'depth': FixedOutputNet(ModelOutput(depth=torch.ones(1, 1, 32, 64)))}
    probe = street_batch(1)
    for name in ('static_kd', 'amalgamation', 'jointdistill'):
        method = build_method(name, {}, student, 7, MAX_DEPTH)
        with pytest.raises(ConfigError, match=r"teachers.seg: .*no feature\(s\)"):
            method.setup(probe, probe, prediction_only)
    method = build_method('jointdistill', {'fusion': False}, student, 7, MAX_DEPTH)
    method.setup(probe, probe, prediction_only)
    assert method.connector is None and method.teacher_metrics is not None


# ------------------------------------------------------------------------------ sd_mtcnn
def test_sd_mtcnn_terms_by_hand_and_decoder_gets_no_gradient():
    encoder = features([3.0], [4.0]).requires_grad_(True)                     # (1, 2, 1, 1)
    dec_seg = torch.tensor([[[1.0, 1.0], [1.0, 1.0]], [[0.0, 0.0], [0.0, 0.0]]]).unsqueeze(0)
    dec_depth = torch.tensor([[[0.0, 0.0], [0.0, 0.0]], [[1.0, 3.0], [0.0, 0.0]]]).unsqueeze(0)
    dec_seg.requires_grad_(True)
    dec_depth.requires_grad_(True)
    student_out = ModelOutput(seg_logits=torch.zeros(1, 2, 2, 2), depth=torch.ones(1, 1, 2, 2),
                              features={'enc': encoder, 'dec_seg': dec_seg, 'dec_depth': dec_depth})
    method = build_method('sd_mtcnn', {'seg_weight': 0.0, 'depth_weight': 0.0, 'lambda_sd': 2.0},
                          FixedOutputNet(student_out), 2, MAX_DEPTH)
    for conv in method.adaptors.values():
        set_identity(conv)
    terms = method.losses({}, student_out, {})
    # dec_seg area-pooled to 1x1 = (1, 0): n(3,4) = (.6,.8) vs (1,0) -> 0.16 + 0.64 = 0.8.
    # dec_depth pooled = (0, 1): (.6)^2 + (.8 - 1)^2 = 0.4. Both x lambda_sd = 2.
    assert terms['sd/seg'].item() == pytest.approx(1.6)
    assert terms['sd/depth'].item() == pytest.approx(0.8)
    sum(terms.values()).backward()
    assert encoder.grad is not None and encoder.grad.abs().sum() > 0
    assert dec_seg.grad is None and dec_depth.grad is None


# ------------------------------------------------------------------------------ xdistill
def test_xdistill_groups_teacher_classes_and_trains_depth():
    depth = torch.full((1, 1, 2, 2), 5.0, requires_grad=True)
    student_out = ModelOutput(seg_logits=torch.zeros(1, 7, 2, 2), depth=depth)
    # Teacher argmax: vehicle, human / flat, sky -> Cityscapes-7 groups 5, 5 / 0, 4.
    teacher_logits = torch.zeros(1, 7, 2, 2)
    for (row, col), cls in {(0, 0): 6, (0, 1): 5, (1, 0): 0, (1, 1): 4}.items():
        teacher_logits[0, cls, row, col] = 5.0
    method = build_method('xdistill', {'seg_weight': 0.0, 'depth_weight': 0.0},
                          FixedOutputNet(student_out), 7, MAX_DEPTH)
    terms = method.losses({}, student_out, {'seg': ModelOutput(seg_logits=teacher_logits)})
    terms['x/depth_to_groups'].backward()
    assert depth.grad is not None and depth.grad.abs().sum() > 0  # reaches the depth branch

    # Zero the translator except the last bias b = (0, 0, 0, 0, 0, ln 5): softmax gives
    # group 5 probability 5 / (5 + 5) = 1/2 and every other group 1/10.
    # CE over targets 5, 5, 0, 4 = (ln 2 + ln 2 + ln 10 + ln 10) / 4 = ln(20) / 2.
    with torch.no_grad():
        for parameter in method.translator.parameters():
            parameter.zero_()
        method.translator[-1].bias[5] = math.log(5.0)
    terms = method.losses({}, student_out, {'seg': ModelOutput(seg_logits=teacher_logits)})
    assert method.translator[-1].out_channels == 6
    assert terms['x/depth_to_groups'].item() == pytest.approx(math.log(20.0) / 2, rel=1e-6)


def test_xdistill_custom_grouping_sets_group_count():
    method = build_method('xdistill', {'grouping': [0, 0, 1, 1, 1]}, FixedOutputNet(
        ModelOutput(features={})), 5, MAX_DEPTH)
    assert method.translator[-1].out_channels == 2
    identity = build_method('xdistill', {}, FixedOutputNet(ModelOutput(features={})), 13,
                            MAX_DEPTH)
    assert identity.translator[-1].out_channels == 13


# ------------------------------------------------------------------------------ amalgamation
def amalgamation_fixture(params: dict):
    student_out = ModelOutput(
        seg_logits=torch.zeros(1, 2, 1, 1), depth=torch.tensor([2.0, 8.0]).reshape(1, 1, 1, 2),
        features={'enc': features([3.0], [4.0]), 'dec_seg': features([1.0], [1.0]),
                  'dec_depth': features([0.0], [2.0])})
    teacher_outs = {
        'seg': ModelOutput(seg_logits=torch.tensor([2 * LN3, 0.0]).reshape(1, 2, 1, 1),
                           features={'enc': features([1.0], [0.0]),
                                     'dec_seg': features([5.0], [5.0])}),
        'depth': ModelOutput(depth=torch.tensor([1.0, 4.0]).reshape(1, 1, 1, 2),
                             features={'enc': features([6.0], [8.0]),
                                       'dec_depth': features([0.0], [5.0])})}
    method = build_method('amalgamation', params, FixedOutputNet(student_out), 2, MAX_DEPTH)
    method.setup({'image': torch.zeros(1, 3, 2, 2)}, {},
                 {task: FixedOutputNet(out) for task, out in teacher_outs.items()})
    with torch.no_grad():
        for adaptor in method.adaptors.values():
            gate, projection = adaptor
            for parameter in gate.parameters():
                parameter.zero_()  # gate = sigmoid(0) = 0.5, which n(.) cancels
            set_identity(projection)
    return method, student_out, teacher_outs


def test_amalgamation_soft_l1_and_features_by_hand():
    method, student_out, teacher_outs = amalgamation_fixture({'depth_weight': 2.0})
    terms = method.losses(LabelFreeBatch(), student_out, teacher_outs)
    assert terms['amal/seg'].item() == pytest.approx(KL_BY_HAND, rel=1e-6)
    # |2 - 1| and |8 - 4| -> mean 2.5 m, x depth_weight 2.
    assert terms['amal/depth'].item() == pytest.approx(5.0)
    # seg teacher: enc n(3,4) vs n(1,0) -> 0.8; dec_seg n(1,1) = n(5,5) -> 0.
    assert terms['amal/feat_seg'].item() == pytest.approx(0.8)
    # depth teacher: enc n(3,4) = n(6,8); dec_depth n(0,2) = n(0,5) -> 0.
    assert terms['amal/feat_depth'].item() == pytest.approx(0.0, abs=1e-7)


def test_amalgamation_hard_targets_and_silog_by_hand():
    method, student_out, teacher_outs = amalgamation_fixture(
        {'seg_target': 'hard', 'depth_loss': 'silog', 'silog_variance_weight': 0.5,
         'lambda_feat': 0.0})
    terms = method.losses(LabelFreeBatch(), student_out, teacher_outs)
    # Hard target argmax (2 ln 3, 0) = class 0; student (0, 0) -> CE = ln 2.
    assert terms['amal/seg'].item() == pytest.approx(LN2)
    # d = ln(2/1), ln(8/4) = ln 2, ln 2: ln^2 2 - 0.5 ln^2 2.
    assert terms['amal/depth'].item() == pytest.approx(0.5 * LN2 ** 2, rel=1e-6)
    assert 'amal/feat_seg' not in terms


def test_amalgamation_depth_labels_give_the_scale_where_samples_have_them():
    method, student_out, teacher_outs = amalgamation_fixture({'depth_label_weight': 3.0,
                                                              'lambda_feat': 0.0})
    assert method.label_keys == ('depth',)
    one_valid = torch.tensor([1.0, 0.0]).reshape(1, 1, 1, 2)  # 2nd pixel: no ground truth
    terms = method.losses({'depth': one_valid}, student_out, teacher_outs)
    assert terms['amal/depth_labels'].item() == pytest.approx(3.0)  # 3 x |2 - 1| m
    none = method.losses({'depth': torch.zeros(1, 1, 1, 2)}, student_out, teacher_outs)
    assert none['amal/depth_labels'].item() == 0.0
    assert amalgamation_fixture({})[0].label_keys == ()
    with pytest.raises(ConfigError, match="depth_label_weight > 0 .* 'silog' ignores"):
        build_method('amalgamation', {'depth_label_weight': 1.0, 'depth_loss': 'silog'},
                     FixedOutputNet(student_out), 2, MAX_DEPTH)


def test_amalgamation_never_reads_labels_with_real_networks():
    student, teachers = tiny_models()
    batch = street_batch(2)
    method = build_method('amalgamation', {}, student, 7, MAX_DEPTH)
    method.setup({'image': batch['image']}, LabelFreeBatch(image=batch['image']), teachers)
    label_free = LabelFreeBatch(image=batch['image'])
    with torch.no_grad():
        teacher_outs = {task: teacher(batch['image']) for task, teacher in teachers.items()}
    terms = method.losses(label_free, student(batch['image']), teacher_outs)
    sum(terms.values()).backward()
    assert set(terms) == {'amal/seg', 'amal/depth', 'amal/feat_seg', 'amal/feat_depth'}
    assert all(torch.isfinite(t) for t in terms.values())


# ------------------------------------------------------------------------------ jointdistill
# A validation "batch" of one 2x4 image: classes 0 | 1 side by side, depth 1..8 m.
VAL_LABELS = torch.tensor([[[0, 0, 1, 1], [0, 0, 1, 1]]])
VAL_DEPTH = torch.arange(1.0, 9.0).reshape(1, 1, 2, 4)
PERFECT_SEG = 10.0 * nn.functional.one_hot(VAL_LABELS, 2).permute(0, 3, 1, 2).float()
ALL_CLASS_0 = 10.0 * nn.functional.one_hot(0 * VAL_LABELS, 2).permute(0, 3, 1, 2).float()
# ALL_CLASS_0 mIoU: IoU_0 = 4 / 8, IoU_1 = 0 / 4 -> 0.25. A depth of gt * (1 + e) has abs rel e.


def val_batch() -> dict:
    return {'image': torch.zeros(1, 3, 2, 4), 'labels': VAL_LABELS, 'depth': VAL_DEPTH}


def fixed_teachers() -> dict[str, nn.Module]:
    """Teachers with mIoU 1 and abs rel 0.1 on the validation batch."""
    return {'seg': FixedOutputNet(ModelOutput(seg_logits=PERFECT_SEG,
                                              features={'dec_seg': torch.ones(1, 2, 2, 4)})),
            'depth': FixedOutputNet(ModelOutput(depth=VAL_DEPTH * 1.1,
                                                features={'dec_depth': torch.ones(1, 2, 2, 4)}))}


def controllable_jointdistill(params: dict, feature_map: torch.Tensor | None = None):
    feature_map = torch.ones(1, 1, 1, 8) if feature_map is None else feature_map
    student = ControllableStudent(PERFECT_SEG, VAL_DEPTH * 1.5, feature_map)
    method = build_method('jointdistill', {'fusion': False, **params}, student, 2, MAX_DEPTH)
    method.setup({'image': torch.zeros(1, 3, 2, 4)}, val_batch(), fixed_teachers())
    return method, student


def test_updated_weights_by_hand():
    omega = torch.ones(2, dtype=torch.float64)
    ability = torch.tensor([2.0, 0.5], dtype=torch.float64)
    # alpha 1: tau = 1 * (2, 0.5); omega = (1 - 0.3 (1 - 2), 1 - 0.3 (1 - 0.5)) = (1.3, 0.85),
    # renormalised to sum 2: (2.6, 1.7) / 2.15.
    expected = torch.tensor([2.6 / 2.15, 1.7 / 2.15], dtype=torch.float64)
    assert torch.allclose(updated_weights(omega, ability, 1.0, 0.3, 'follow_ability'), expected)
    # favor_weaker uses 1 / a = (0.5, 2): the mirror image.
    assert torch.allclose(updated_weights(omega, ability, 1.0, 0.3, 'favor_weaker'),
                          expected.flip(0))
    # alpha 0: tau = (2, 0.5) / mean 1.25 = (1.6, 0.4): (1.18, 0.82), already summing to 2.
    assert torch.allclose(updated_weights(omega, ability, 0.0, 0.3, 'follow_ability'),
                          torch.tensor([1.18, 0.82], dtype=torch.float64))


def test_teacher_metrics_and_ability_on_validation_batch():
    method, student = controllable_jointdistill({})
    assert method.teacher_metrics == pytest.approx((1.0, 0.1))
    # Student: seg perfect (a = 1 / 1), depth abs rel 0.5 (a = 0.1 / 0.5 = 0.2).
    assert method.measure_ability(student).tolist() == pytest.approx([1.0, 0.2])
    student.seg_logits = ALL_CLASS_0
    assert method.measure_ability(student).tolist() == pytest.approx([0.25, 0.2])


@pytest.mark.parametrize('direction', ['follow_ability', 'favor_weaker'])
@pytest.mark.parametrize('strong_task', [0, 1])
def test_adaptive_weights_move_in_configured_direction(direction, strong_task):
    method, student = controllable_jointdistill(
        {'eval_every': 2, 'beta': 0.3, 'direction': direction, 'trajectory': False})
    # Raise one task's student metric artificially: seg perfect (a_seg 1) and depth poor
    # (a_depth 0.2), or seg poor (0.25) and depth better than the teacher (abs rel 0.05, a 2).
    if strong_task == 1:
        student.seg_logits, student.depth = ALL_CLASS_0, VAL_DEPTH * 1.05
    grow = strong_task if direction == 'follow_ability' else 1 - strong_task
    previous = method.omega.clone()
    for step in range(1, 11):
        logged = method.on_step_end(step, student)
        omega = method.omega
        assert omega.sum().item() == pytest.approx(2.0) and bool((omega > 0).all())
        assert logged['omega/seg'] == pytest.approx(omega[0].item())
        assert logged['omega/depth'] == pytest.approx(omega[1].item())
        if step % 2 == 0:
            assert omega[grow] > previous[grow] and omega[1 - grow] < previous[1 - grow]
        else:
            assert torch.equal(omega, previous)
        previous = omega.clone()
    # History: set-up plus one row per evaluation, steps 0, 2, ..., 10.
    assert [row[0] for row in method.weight_history] == [0, 2, 4, 6, 8, 10]
    assert method.weight_history[-1][1:] == pytest.approx(tuple(method.omega.tolist()))


def test_first_weight_update_matches_hand_computation():
    method, student = controllable_jointdistill({'eval_every': 1, 'beta': 0.3, 'alpha': 1.0})
    method.on_step_end(1, student)
    # a = (1, 0.2); tau = (1, 0.2); omega = (1, 1 - 0.3 * 0.8) = (1, 0.76); / 1.76 * 2.
    assert method.omega.tolist() == pytest.approx([2 / 1.76, 1.52 / 1.76])


def test_adaptive_weights_off_keeps_them_fixed():
    method, student = controllable_jointdistill({'eval_every': 1, 'adaptive_weights': False})
    for step in range(1, 4):
        method.on_step_end(step, student)
    assert method.omega.tolist() == [1.0, 1.0]
    assert int(method.snapshot_count) == 1  # the trajectory still evaluates


def one_hot_map(position: int) -> torch.Tensor:
    """(1, 1, 1, 8) feature map whose attention peaks at `position`."""
    feature_map = torch.full((1, 1, 1, 8), 0.1)
    feature_map[0, 0, 0, position] = 1.0
    return feature_map


def test_snapshots_only_when_validation_improves_and_buffer_is_bounded():
    method, student = controllable_jointdistill(
        {'eval_every': 1, 'adaptive_weights': False, 'trajectory_layers': ['enc'], 'topk': 1,
         'buffer_size': 3})
    # Depth abs rel per evaluation; score = (a_seg 1 + a_depth 0.1 / e) / 2, so a smaller e
    # is an improvement. Expected snapshot after evaluations 0, 2, 4, 5, 6, 7.
    errors = [0.5, 0.8, 0.4, 0.4, 0.3, 0.2, 0.15, 0.12]
    improves = [True, False, True, False, True, True, True, True]
    count = 0
    for evaluation, (error, improved) in enumerate(zip(errors, improves)):
        student.depth = VAL_DEPTH * (1 + error)
        with torch.no_grad():
            student.feature_map.copy_(one_hot_map(evaluation))
        method.on_step_end(evaluation + 1, student)
        count = min(count + improved, 3)
        assert int(method.snapshot_count) == count
        assert len(method.snapshots) == count <= 3
    # The buffer holds the last three snapshots, oldest first; each one's top location is
    # the position the feature map peaked at when it was taken.
    assert [snapshot[0][0].item() for snapshot in method.snapshots] == [5, 6, 7]
    # Attention there: 1 / sqrt(1 + 7 * 0.1^4) (squares of 1 and 0.1, L2-normalised).
    peak = 1 / math.sqrt(1 + 7 * 1e-4)
    assert method.snapshots[-1][0][1].item() == pytest.approx(peak, rel=1e-5)
    assert method.best_score.item() == pytest.approx((1 + 0.1 / 0.12) / 2)


def test_trajectory_loss_by_hand():
    # One-channel map (sqrt 3, 2): energies (3, 4) -> attention (0.6, 0.8); top-1 = (1, 0.8).
    method, student = controllable_jointdistill(
        {'trajectory_layers': ['enc'], 'topk': 1, 'lambda_traj': 2.0, 'lambda_kd': 0.0,
         'seg_weight': 0.0, 'depth_weight': 0.0},
        feature_map=torch.tensor([math.sqrt(3.0), 2.0]).reshape(1, 1, 1, 2))
    no_snapshot = method.losses({}, student(torch.zeros(1, 3, 2, 4)), {})
    assert no_snapshot['traj'].item() == 0.0
    method.take_snapshot()
    with torch.no_grad():  # map (2, sqrt 3): attention (0.8, 0.6)
        student.feature_map.copy_(torch.tensor([2.0, math.sqrt(3.0)]).reshape(1, 1, 1, 2))
    # Snapshot 1 at location 1: (0.6 - 0.8)^2 = 0.04; x lambda_traj 2.
    loss = method.losses({}, None, {})['traj']
    assert loss.item() == pytest.approx(0.08, rel=1e-5)
    loss.backward()
    assert student.feature_map.grad.abs().sum() > 0
    assert student.training  # the eval-mode probe pass restores the mode
    method.take_snapshot()  # location 0, value 0.8
    with torch.no_grad():  # map (1, 0): attention (1, 0)
        student.feature_map.copy_(torch.tensor([1.0, 0.0]).reshape(1, 1, 1, 2))
    # (0 - 0.8)^2 + (1 - 0.8)^2 = 0.68; x 2 = 1.36.
    loss = method.losses({}, None, {})['traj']
    assert method.losses({}, None, {})['traj'].item() == pytest.approx(1.36, rel=1e-5)


def test_kd_terms_without_fusion_use_teacher_predictions_and_omega():
    student_out = ModelOutput(seg_logits=torch.zeros(1, 2, 1, 1), depth=torch.ones(1, 1, 1, 1))
    teacher_outs = {'seg': ModelOutput(seg_logits=torch.tensor([2 * LN3, 0.0]).reshape(1, 2, 1, 1)),
                    'depth': ModelOutput(depth=torch.full((1, 1, 1, 1), 3.0))}
    method = build_method('jointdistill', {'fusion': False, 'trajectory': False,
                                           'adaptive_weights': False, 'lambda_kd': 2.0,
                                           'temperature': 2.0,
                                           'seg_weight': 0.0, 'depth_weight': 0.0},
                          FixedOutputNet(student_out), 2, MAX_DEPTH)
    method.omega.copy_(torch.tensor([1.5, 0.5]))
    terms = method.losses({}, student_out, teacher_outs)
    assert set(terms) == {'kd/seg', 'kd/depth'}
    assert terms['kd/seg'].item() == pytest.approx(2.0 * 1.5 * KL_BY_HAND, rel=1e-6)
    assert terms['kd/depth'].item() == pytest.approx(2.0 * 0.5 * abs(1.0 - 3.0))


def test_silog_depth_distillation_by_hand():
    # student depths (1, 4) m against teacher depths (2, 2) m: log differences
    # d = (-ln 2, ln 2), mean(d^2) = ln^2 2, mean(d) = 0, so silog = ln^2 2 for any lambda;
    # student (1, 1) against (2, 2): d = (-ln 2, -ln 2), silog = ln^2 2 (1 - 0.25) at 0.25.
    teacher_outs = {'seg': ModelOutput(seg_logits=torch.zeros(1, 2, 1, 2)),
                    'depth': ModelOutput(depth=torch.full((1, 1, 1, 2), 2.0))}
    for student_depth, expected in (((1.0, 4.0), LN2 ** 2), ((1.0, 1.0), 0.75 * LN2 ** 2)):
        student_out = ModelOutput(seg_logits=torch.zeros(1, 2, 1, 2),
                                  depth=torch.tensor(student_depth).reshape(1, 1, 1, 2))
        method = build_method('jointdistill', {'fusion': False, 'trajectory': False,
                                               'adaptive_weights': False,
                                               'depth_kd_loss': 'silog',
                                               'silog_variance_weight': 0.25,
                                               'seg_weight': 0.0, 'depth_weight': 0.0},
                              FixedOutputNet(student_out), 2, MAX_DEPTH)
        terms = method.losses({}, student_out, teacher_outs)
        assert terms['kd/depth'].item() == pytest.approx(expected, rel=1e-6)


def fusion_teacher_outputs() -> dict[str, ModelOutput]:
    """Teachers on a 1x2 image: seg logits (2 ln 3, 0) per pixel, depth 6 m."""
    logits = torch.zeros(1, 2, 1, 2)
    logits[:, 0] = 2 * LN3
    return {'seg': ModelOutput(seg_logits=logits, features={'dec_seg': torch.rand(1, 3, 1, 2)}),
            'depth': ModelOutput(depth=torch.full((1, 1, 1, 2), 6.0),
                                 features={'dec_depth': torch.rand(1, 5, 1, 1)})}


def fusion_setup(residual: bool):
    """A jointdistill method with its connector built over fusion_teacher_outputs(); the
    student outputs logits (0, 0) and 4 m on a 1x2 image. Returns (method, student output,
    teacher outputs)."""
    student_out = ModelOutput(seg_logits=torch.zeros(1, 2, 1, 2, requires_grad=True),
                              depth=torch.full((1, 1, 1, 2), 4.0, requires_grad=True))
    teacher_outs = fusion_teacher_outputs()
    method = build_method('jointdistill', {'trajectory': False, 'adaptive_weights': False,
                                           'connector_channels': 4, 'temperature': 2.0,
                                           'connector_residual': residual},
                          FixedOutputNet(student_out), 2, MAX_DEPTH)
    method.setup({'image': torch.zeros(1, 3, 2, 2)}, {},
                 {task: FixedOutputNet(out) for task, out in teacher_outs.items()})
    return method, student_out, teacher_outs


def test_fusion_connector_terms_by_hand_and_gradient_routing():
    """The plain connector (the paper's form): heads predict from the features alone."""
    method, student_out, teacher_outs = fusion_setup(residual=False)
    seg_logits, depth = student_out.seg_logits, student_out.depth
    assert method.connector.trunk[0].in_channels == 3 + 5
    # Zero the connector but for the seg head's bias (2 ln 3, 0): after the zero convolutions
    # batch norm outputs its shift 0, ReLU 0, so the fused logits are (2 ln 3, 0) everywhere
    # and the fused depth is max_depth * sigmoid(0) = 10 m.
    with torch.no_grad():
        for parameter in method.connector.parameters():
            parameter.zero_()
        method.connector.seg_head.bias[0] = 2 * LN3
    batch = {'labels': torch.tensor([[[1, 1]]]), 'depth': torch.full((1, 1, 1, 2), 12.0)}
    terms = method.losses(batch, student_out, teacher_outs)
    assert terms['kd/seg'].item() == pytest.approx(KL_BY_HAND, rel=1e-6)
    assert terms['kd/depth'].item() == pytest.approx(abs(4.0 - 10.0))
    # Connector trained on labels: label 1 under logits (2 ln 3, 0) -> p = 1 / 10 -> ln 10;
    # depth |10 - 12| = 2.
    assert terms['connector/seg'].item() == pytest.approx(math.log(10.0), rel=1e-6)
    assert terms['connector/depth'].item() == pytest.approx(2.0)
    # The student's distillation terms never train the connector ...
    (terms['kd/seg'] + terms['kd/depth']).backward(retain_graph=True)
    assert all(p.grad is None for p in method.connector.parameters())
    assert seg_logits.grad.abs().sum() > 0 and depth.grad.abs().sum() > 0
    # ... and the connector's own terms never reach the student.
    seg_logits.grad, depth.grad = None, None
    (terms['connector/seg'] + terms['connector/depth']).backward()
    assert seg_logits.grad is None and depth.grad is None
    assert method.connector.seg_head.bias.grad.abs().sum() > 0


def test_residual_fusion_connector_starts_at_the_teachers_and_learns_a_correction():
    method, student_out, teacher_outs = fusion_setup(residual=True)
    batch = {'labels': torch.tensor([[[1, 1]]]), 'depth': torch.full((1, 1, 1, 2), 12.0)}
    terms = method.losses(batch, student_out, teacher_outs)
    # At step 0 the fused targets are the teachers' own: logits (2 ln 3, 0), depth 6 m.
    assert terms['kd/seg'].item() == pytest.approx(KL_BY_HAND, rel=1e-6)
    assert terms['kd/depth'].item() == pytest.approx(abs(4.0 - 6.0))
    # label 1 under (2 ln 3, 0) -> p = 1/10 -> ln 10; depth |6 - 12| = 6.
    assert terms['connector/seg'].item() == pytest.approx(math.log(10.0), rel=1e-6)
    assert terms['connector/depth'].item() == pytest.approx(6.0)
    # The connector's terms train the zero-initialised heads.
    (terms['connector/seg'] + terms['connector/depth']).backward()
    assert method.connector.seg_head.bias.grad.abs().sum() > 0
    assert method.connector.depth_head.bias.grad.abs().sum() > 0
    # A depth-head bias of ln 3 triples the teacher's 6 m to 18 m; ln 4 gives 24 m, capped
    # at max_depth = 20 m.
    for log_factor, fused_depth in ((math.log(3.0), 18.0), (math.log(4.0), MAX_DEPTH)):
        with torch.no_grad():
            method.connector.depth_head.bias.fill_(log_factor)
        terms = method.losses(batch, student_out, teacher_outs)
        assert terms['kd/depth'].item() == pytest.approx(fused_depth - 4.0, rel=1e-6)


def test_jointdistill_state_round_trips_for_resume():
    method, student = controllable_jointdistill(
        {'eval_every': 1, 'trajectory_layers': ['enc'], 'topk': 2, 'buffer_size': 2})
    for step in range(1, 4):
        student.depth = VAL_DEPTH * (1 + 0.5 / step)
        method.on_step_end(step, student)
    state = {key: value.clone() for key, value in method.state_dict().items()}
    assert all(torch.is_tensor(value) for value in state.values())  # safetensors-storable
    resumed, _ = controllable_jointdistill(
        {'eval_every': 1, 'trajectory_layers': ['enc'], 'topk': 2, 'buffer_size': 2})
    resumed.load_state_dict(state)
    assert resumed.weight_history == method.weight_history and len(resumed.weight_history) == 4
    assert torch.equal(resumed.omega, method.omega)
    assert int(resumed.snapshot_count) == 2
    for old, new in zip(method.snapshots, resumed.snapshots):
        assert torch.equal(old[0][0], new[0][0]) and torch.equal(old[0][1], new[0][1])


# ------------------------------------------------------------------------------ training
TRAINING_PARAMS = {
    'mtl': {},
    'static_kd': {'logit_kd_weight': 0.5},
    'jointdistill': {'eval_every': 2, 'probe_size': 2, 'topk': 8, 'buffer_size': 2,
                     'connector_channels': 8},
    'sd_mtcnn': {},
    'xdistill': {'translator_channels': 8},
    'amalgamation': {},
}


@pytest.mark.parametrize('name', sorted(METHODS))
def test_total_loss_decreases_over_a_few_steps(name):
    student, teachers = tiny_models()
    batch = street_batch(2)
    method = build_method(name, TRAINING_PARAMS[name], student, 7, MAX_DEPTH)
    method.setup(street_batch(2, seed=1), street_batch(2, seed=2), teachers)
    optimizer = torch.optim.Adam([*student.parameters(), *method.parameters()], lr=3e-3)
    if not method.uses_labels:
        batch = LabelFreeBatch(image=batch['image'])
    with torch.no_grad():
        teacher_outs = {task: teachers[task](batch['image']) for task in method.teachers_needed}
    totals = []
    for step in range(1, 9):
        terms = method.losses(batch, student(batch['image']), teacher_outs)
        total = sum(terms.values())
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        method.on_step_end(step, student)
        totals.append(total.item())
    assert all(math.isfinite(t) for t in totals)
    assert totals[-1] < totals[0], totals
    if name == 'jointdistill':  # evaluated at steps 2, 4, 6, 8: all three parts were live
        assert [row[0] for row in method.weight_history] == [0, 2, 4, 6, 8]
        assert 1 <= int(method.snapshot_count) <= 2


def test_jointdistill_resumes_exactly_through_the_trainer(tmp_path):
    """6 steps straight equal 3 steps + --resume 3 steps: student, connector, weights, weight
    history and trajectory snapshots (constant learning rate, so both runs share a schedule)."""
    import yaml

    from jointdistill_core.checkpoint import save_checkpoint
    from jointdistill_core.models.factory import build_model
    from jointdistill_core.training import load_train_config
    from jointdistill_core.training.trainer import Trainer

    torch.manual_seed(11)
    teachers = {}
    for task, spec in (('seg', {'arch': 'seg_teacher', 'num_classes': 7}),
                       ('depth', {'arch': 'depth_teacher'})):
        save_checkpoint(tmp_path / task, build_model({**spec, 'width': 8, 'blocks': [1, 1, 1, 1]}),
                        {'input_size': [32, 64]})
        teachers[task] = {'path': str(tmp_path / f'{task}.safetensors')}

    def run(name: str, steps: int, resume: bool) -> Trainer:
        config = {
            'model': {'arch': 'student',
                      'kwargs': {'width_mult': 0.25, 'decoder_channels': [8, 8, 8]}},
            'method': {'name': 'jointdistill',
                       'params': {'eval_every': 1, 'probe_size': 2, 'topk': 4, 'buffer_size': 2}},
            'teachers': teachers,
            'data': {'spec': 'synthetic', 'size': '32x64', 'num_frames': 4, 'val_frames': 2,
                     'batch_size': 2},
            'schedule': {'name': 'step', 'step_every': 1000},
            'steps': steps, 'val_every': 3, 'log_every': 1, 'seed': 5, 'device': 'cpu',
            'out': str(tmp_path / name)}
        path = tmp_path / f'{name}.yaml'
        path.write_text(yaml.safe_dump(config))
        trainer = Trainer(load_train_config(path), resume=resume, progress=False)
        trainer.run()
        return trainer

    straight = run('straight', 6, False)
    run('split', 3, False)
    resumed = run('split', 6, True)
    for key, value in straight.student.state_dict().items():
        assert torch.equal(value, resumed.student.state_dict()[key]), key
    method_state = resumed.method.state_dict()
    for key, value in straight.method.state_dict().items():
        assert torch.equal(value, method_state[key]), key
    assert len(straight.method.weight_history) == 7  # set-up + steps 1..6
    assert resumed.method.weight_history == straight.method.weight_history
    assert int(resumed.method.snapshot_count) >= 1
