"""Networks: shapes, bounds, features, size limits, profiling, BN folding, factory.

Foreign teachers, files and folders a user brings: test_teachers.py.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from jointdistill_core.models import (
    DepthTeacher,
    JointStudent,
    ModelSpecError,
    SegTeacher,
    activation_bytes,
    build_model,
    count_flops,
    count_parameters,
    fuse_conv_bn,
)

torch.set_num_threads(1)


@pytest.fixture(scope='module')
def student() -> JointStudent:
    torch.manual_seed(0)
    return JointStudent().eval()


def _randomise_batchnorm(model: nn.Module, seed: int = 0) -> None:
    """Non-trivial BN statistics, so folding has something to fold."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                n = module.num_features
                module.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(n, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(n, generator=generator) * 0.1)


@pytest.mark.parametrize('size', [(96, 160), (64, 224)])
def test_student_output_shapes_and_features(student: JointStudent, size: tuple[int, int]) -> None:
    height, width = size
    with torch.no_grad():
        out = student(torch.rand(2, 3, height, width))
    assert out.seg_logits.shape == (2, 7, height, width)
    assert out.depth.shape == (2, 1, height, width)
    assert set(out.features) == {'enc', 'enc_mid', 'dec_seg', 'dec_depth'}
    for key, feature in out.features.items():
        stride = student.feature_strides[key]
        assert feature.shape == (2, student.feature_channels[key], height // stride,
                                 width // stride)


def test_student_strides_are_the_documented_ones(student: JointStudent) -> None:
    assert student.feature_strides == {'enc': 32, 'enc_mid': 8, 'dec_seg': 4, 'dec_depth': 4}


def test_student_depth_positive_and_bounded() -> None:
    torch.manual_seed(1)
    model = JointStudent(max_depth=10.0).eval()
    with torch.no_grad():
        depth = model(torch.rand(1, 3, 64, 64)).depth
        assert (depth > 0).all() and (depth <= 10.0).all()
        model.depth_head.bias.fill_(50.0)  # saturate the sigmoid: depth reaches the bound
        saturated = model(torch.rand(1, 3, 64, 64)).depth
    assert torch.allclose(saturated, torch.full_like(saturated, 10.0))


def test_student_rejects_size_not_multiple_of_32(student: JointStudent) -> None:
    with pytest.raises(ValueError, match=r'multiples of 32.*\(1, 3, 100, 128\)'):
        student(torch.rand(1, 3, 100, 128))
    with pytest.raises(ValueError, match='N, 3, H, W'):
        student(torch.rand(1, 1, 64, 64))


def test_student_default_size_within_budget(student: JointStudent) -> None:
    params = count_parameters(student)
    assert 1.5e6 <= params <= 3.0e6
    assert count_flops(student, (256, 512)) <= 3.0e9


def test_width_mult_and_decoder_channels_change_the_network() -> None:
    slim = JointStudent(width_mult=0.5, decoder_channels=(48, 32, 24))
    assert count_parameters(slim) < count_parameters(JointStudent()) / 2
    assert slim.feature_channels['dec_seg'] == 24
    out = slim(torch.rand(1, 3, 64, 64))
    assert out.features['dec_depth'].shape[1] == 24


def test_depth_mult_scales_blocks_per_stage() -> None:
    # MobileNetV2 repeats per stage: 1, 2, 3, 4, 3, 3, 1; x0.5 rounded up: 1, 1, 2, 2, 2, 2, 1.
    shallow = JointStudent(width_mult=0.5, depth_mult=0.5)
    assert [len(stage) for stage in shallow.encoder.stages] == [1, 1, 2, 2, 2, 2, 1]
    deep = JointStudent(width_mult=0.5, depth_mult=1.5)
    assert [len(stage) for stage in deep.encoder.stages] == [2, 3, 5, 6, 5, 5, 2]
    assert count_parameters(shallow) < count_parameters(JointStudent(width_mult=0.5)) \
        < count_parameters(deep)
    assert shallow(torch.rand(1, 3, 64, 64)).depth.shape == (1, 1, 64, 64)
    with pytest.raises(ValueError, match='depth_mult must be > 0'):
        JointStudent(depth_mult=0)


def test_fused_stages_select_the_block_type() -> None:
    from jointdistill_core.models.blocks import FusedInvertedResidual, InvertedResidual
    for fused_stages in (0, 3):
        model = JointStudent(width_mult=0.5, fused_stages=fused_stages)
        kinds = [type(stage[0]) for stage in model.encoder.stages]
        assert kinds[:fused_stages] == [FusedInvertedResidual] * fused_stages
        assert kinds[fused_stages:] == [InvertedResidual] * (7 - fused_stages)
        assert not any(isinstance(m, nn.Conv2d) and m.groups > 1
                       for stage in model.encoder.stages[:fused_stages] for m in stage.modules())
        out = model(torch.rand(1, 3, 64, 64))
        assert out.features['enc_mid'].shape == (1, model.feature_channels['enc_mid'], 8, 8)
    with pytest.raises(ValueError, match='fused_stages must be in 0..3, got 4'):
        JointStudent(fused_stages=4)


def test_teachers_shapes_features_and_size(student: JointStudent) -> None:
    seg, depth = SegTeacher(num_classes=5).eval(), DepthTeacher(max_depth=20.0).eval()
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        seg_out, depth_out = seg(x), depth(x)
    assert seg_out.seg_logits.shape == (1, 5, 64, 96) and seg_out.depth is None
    assert depth_out.depth.shape == (1, 1, 64, 96) and depth_out.seg_logits is None
    assert ((depth_out.depth > 0) & (depth_out.depth <= 20.0)).all()
    assert set(seg_out.features) == {'enc', 'enc_mid', 'dec_seg'}
    assert set(depth_out.features) == {'enc', 'enc_mid', 'dec_depth'}
    for teacher, out in ((seg, seg_out), (depth, depth_out)):
        for key, feature in out.features.items():
            stride = teacher.feature_strides[key]
            assert feature.shape == (1, teacher.feature_channels[key], 64 // stride, 96 // stride)
    student_params = count_parameters(student)
    assert count_parameters(SegTeacher()) >= 3 * student_params
    assert count_parameters(DepthTeacher()) >= 3 * student_params


def test_profile_counts_match_hand_computation() -> None:
    # conv 3->8 3x3 on 32x32, depthwise 8->8 3x3, then a linear 8192 -> 10.
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                        nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.Flatten(), nn.Linear(8192, 10))
    assert count_parameters(net) == (8 * 27 + 8) + (8 * 9 + 8) + (8192 * 10 + 10)
    conv_flops = 2 * 27 * 8 * 32 * 32
    depthwise_flops = 2 * 9 * 8 * 32 * 32
    linear_flops = 2 * 8192 * 10
    assert count_flops(net, (32, 32)) == conv_flops + depthwise_flops + linear_flops
    # fp32 outputs of conv, relu, depthwise conv, flatten (8x32x32 each) and linear (10).
    assert activation_bytes(net, (32, 32)) == 4 * (4 * 8 * 32 * 32 + 10)


def test_fuse_conv_bn_matches_unfused_and_removes_batchnorm() -> None:
    torch.manual_seed(2)
    for model in (JointStudent(), SegTeacher(width=16)):
        _randomise_batchnorm(model)
        model.eval()
        x = torch.rand(1, 3, 64, 96)
        fused = fuse_conv_bn(model)
        assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
        assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())  # original kept
        with torch.no_grad():
            reference, result = model(x), fused(x)
        for name in ('seg_logits', 'depth'):
            if getattr(reference, name) is not None:
                assert torch.allclose(getattr(result, name), getattr(reference, name), atol=1e-5)
        assert torch.allclose(result.features['enc'], reference.features['enc'], atol=1e-5)


def test_factory_round_trips_every_architecture() -> None:
    for model in (JointStudent(width_mult=0.5, num_classes=4, max_depth=12.0),
                  SegTeacher(num_classes=3, width=16), DepthTeacher(max_depth=5.0, width=16)):
        rebuilt = build_model(model.spec)
        assert type(rebuilt) is type(model) and rebuilt.spec == model.spec
        assert {k: v.shape for k, v in rebuilt.state_dict().items()} == \
            {k: v.shape for k, v in model.state_dict().items()}


@pytest.mark.parametrize('spec, message', [
    ({'arch': 'resnet9000'}, "unknown arch 'resnet9000'"),
    ({'arch': 'student', 'depth_layers': 3}, r"unknown argument\(s\) \['depth_layers'\]"),
    ({'arch': 'student', 'num_classes': 1}, 'num_classes must be >= 2'),
    ({'arch': 'depth_teacher', 'max_depth': -1}, 'max_depth must be > 0'),
    (['student'], 'must be a mapping'),
])
def test_factory_rejects_bad_specs(spec, message: str) -> None:
    with pytest.raises(ModelSpecError, match=message):
        build_model(spec)
