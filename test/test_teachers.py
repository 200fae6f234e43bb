"""Teacher adapters: class maps by hand, declared pre/post-processing, the registry, the
transformers families, and the project's own teachers exported to ONNX and read back as
foreign teachers (their adapted outputs must equal the built-in path's).

Nothing is downloaded: transformers models are built from configurations with random weights
(test/teacher_fixtures.py); ONNX files come from `jointdistill export`.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file
from torch import nn

from jointdistill_core.checkpoint import save_checkpoint
from jointdistill_core.distill.losses import aligned_depth, ssi_loss, teacher_hard_labels
from jointdistill_core.models import DepthTeacher, JointStudent, SegTeacher
from jointdistill_core.teachers import (
    TEACHER_KINDS,
    ClassMapError,
    TeacherError,
    build_teacher,
    detect_kind,
    load_class_map,
    shipped_class_maps,
)
from jointdistill_core.teachers.class_map import MISSING_LOGIT, parse_class_map
from jointdistill_core.training.config import TeacherConfig
from teacher_fixtures import (
    CATEGORY_POSITIONS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    export_onnx,
    inverse_depth_onnx,
    inverse_depth_scale_shift,
    save_hf_model,
    widen_seg_onnx,
)

LN = math.log
SEG_FAMILIES = ('segformer', 'upernet', 'dpt_seg', 'mask2former', 'oneformer')
DEPTH_FAMILIES = ('depth_anything', 'dpt_depth', 'zoedepth', 'glpn')
SIZE = (64, 128)


pytestmark = pytest.mark.usefixtures('single_thread')


@pytest.fixture(scope='module')
def hf_folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp('hf')
    return {name: save_hf_model(name, root / name) for name in SEG_FAMILIES + DEPTH_FAMILIES}


def images(count: int = 2, size=SIZE, seed: int = 1) -> torch.Tensor:
    return torch.rand(count, 3, *size, generator=torch.Generator().manual_seed(seed))


def teacher(path, task: str, **options):
    return build_teacher(TeacherConfig(path=str(path), **options), task)


# ---- class maps ---------------------------------------------------------------------------
HAND_MAP = {'source_classes': ['a', 'b', 'c', 'd'], 'target_classes': ['X', 'Y', 'Z'],
            'mapping': {'a': 'X', 'b': 'X', 'c': 'Y', 'd': None}}


def test_class_map_merges_by_log_sum_exp_and_voids_by_argmax():
    class_map = parse_class_map(HAND_MAP, 'hand')
    # Pixel 0: source probabilities (1, 2, 3, 4) / 10: X = a + b -> ln 3, Y = c -> ln 3; the
    # void class d is excluded, so X and Y get 1/2 each; d is the argmax: a void pixel.
    # Pixel 1: (5, 1, 1, 1) / 8: X = ln 6, Y = ln 1 -> 6/7, 1/7; argmax a: not void.
    # Z has no source: logit MISSING_LOGIT, probability 0.
    logits = torch.tensor([[LN(1), LN(2), LN(3), LN(4)], [LN(5), 0.0, 0.0, 0.0]]).T
    merged, void = class_map.apply(logits.reshape(1, 4, 1, 2))
    assert merged[0, :, 0, 0].tolist() == pytest.approx([LN(3), LN(3), MISSING_LOGIT])
    assert merged[0, :, 0, 1].tolist() == pytest.approx([LN(6), 0.0, MISSING_LOGIT])
    probabilities = merged.softmax(dim=1)[0, :, 0]
    assert probabilities[:, 0].tolist() == pytest.approx([0.5, 0.5, 0.0])
    assert probabilities[:, 1].tolist() == pytest.approx([6 / 7, 1 / 7, 0.0])
    assert void.tolist() == [[[True, False]]]
    assert class_map.void_classes == ('d',)


def test_class_map_errors_name_file_and_entry():
    bad = [({**HAND_MAP, 'mapping': {'e': 'X'}}, "'e' is not one of source_classes"),
           ({**HAND_MAP, 'mapping': {'a': 'W'}}, "'a' -> 'W'.*X, Y, Z"),
           ({**HAND_MAP, 'source_classes': ['a', 'a']}, 'names a more than once'),
           ({**HAND_MAP, 'targets': []}, 'unknown key.*targets'),
           ({'source_classes': ['a', 'b']}, 'target_classes must be a list'),
           (['a'], 'top level must be a mapping')]
    for data, message in bad:
        with pytest.raises(ClassMapError, match=f'mine.yaml: .*{message}'):
            parse_class_map(data, 'mine.yaml')
    with pytest.raises(ClassMapError, match='4 source_classes'):
        parse_class_map(HAND_MAP, 'hand').apply(torch.zeros(1, 5, 1, 1))


def test_class_map_from_a_users_yaml_and_unknown_names(tmp_path):
    path = tmp_path / 'mine.yaml'
    path.write_text(yaml.safe_dump(HAND_MAP))
    assert load_class_map(str(path)).targets == (0, 0, 1, -1)
    with pytest.raises(ClassMapError, match="'nope.yaml' is neither a shipped class map "
                                            r'\(ade20k_to_7, cityscapes19_to_7\)'):
        load_class_map('nope.yaml')


def test_shipped_class_maps_follow_the_documented_categories():
    assert set(shipped_class_maps()) >= {'cityscapes19_to_7', 'ade20k_to_7'}
    cityscapes = load_class_map('cityscapes19_to_7')
    assert len(cityscapes.source_classes) == 19 and cityscapes.void_classes == ()
    category = dict(zip(cityscapes.source_classes,
                        (cityscapes.target_classes[t] for t in cityscapes.targets)))
    assert [category[c] for c in ('sidewalk', 'fence', 'traffic sign', 'terrain', 'rider',
                                  'train', 'bicycle')] == \
        ['flat', 'construction', 'object', 'nature', 'human', 'vehicle', 'vehicle']
    ade = load_class_map('ade20k_to_7')
    assert len(ade.source_classes) == 150
    assert cityscapes.target_classes == ade.target_classes
    assert set(ade.void_classes) == {'curtain', 'blind', 'apparel', 'stage', 'fountain',
                                     'swimming pool', 'animal'}
    category = dict(zip(ade.source_classes, (ade.target_classes[t] if t >= 0 else None
                                             for t in ade.targets)))
    assert [category[c] for c in ('floor', 'wall', 'ceiling', 'shelf', 'box', 'person', 'car',
                                  'stairs', 'rug', 'water', 'minibike')] == \
        ['flat', 'construction', 'construction', 'object', 'object', 'human', 'vehicle',
         'construction', 'flat', 'nature', 'vehicle']
    # ADE20K's order: index 12 is person, 20 car, 149 flag.
    assert ade.source_classes[12] == 'person' and ade.source_classes[20] == 'car' \
        and ade.source_classes[149] == 'flag'


# ---- files with declared pre- and post-processing -------------------------------------------
class _ColourVote(nn.Module):
    """Class scores from the mean of each input channel, as softmax probabilities at stride 4;
    records the input size it was given."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = x.mean(dim=(2, 3), keepdim=True).softmax(dim=1)
        return scores.expand(-1, -1, x.shape[2] // 4, x.shape[3] // 4)


def _trace(module: nn.Module, path: Path, size=(32, 64)) -> Path:
    torch.jit.save(torch.jit.trace(module.eval(), torch.rand(1, 3, *size)), str(path))
    return path


@pytest.mark.filterwarnings('ignore::DeprecationWarning')
def test_torchscript_teacher_with_declared_bgr_normalisation_probabilities_and_stride(tmp_path):
    path = _trace(_ColourVote(), tmp_path / 'vote.pt')
    seg = teacher(path, 'seg', channel_order='bgr', mean=[0.5, 0.2, 0.0], std=[0.1, 0.1, 0.1],
                  size_multiple=16, output_stride=4, output_kind='probabilities')
    assert seg.kind == 'torchscript'
    # A uniform RGB (0.2, 0.4, 0.6) image -> BGR (0.6, 0.4, 0.2) -> normalised (1, 2, 2): the
    # model's probabilities softmax(1, 2, 2) come back as logits at the input size.
    x = torch.tensor([0.2, 0.4, 0.6]).view(1, 3, 1, 1).expand(2, 3, 40, 72)
    out = seg(x)
    assert seg.preprocessing.model_size((40, 72)) == (48, 80)  # halves round up
    assert out.seg_logits.shape == (2, 3, 40, 72) and out.features == {}
    expected = torch.tensor([1.0, 2.0, 2.0]).softmax(dim=0)
    assert torch.allclose(out.seg_logits.softmax(dim=1)[1, :, 7, 9], expected, atol=1e-6)
    wrong_stride = teacher(path, 'seg', output_stride=8)
    with pytest.raises(TeacherError, match='output_stride 8.*40x72 and its output 10x18') as err:
        wrong_stride(x)
    assert err.value.key == 'output_stride'


def test_onnx_teacher_reads_its_fixed_input_and_runs_a_fixed_batch_in_chunks(tmp_path):
    model = SegTeacher(num_classes=4, width=8, blocks=(1, 1, 1, 1)).eval()
    save_checkpoint(tmp_path / 'seg', model, {'input_size': [32, 64]})
    onnx_path = export_onnx(tmp_path / 'seg.safetensors', tmp_path / 'seg.onnx', '32x64')
    seg = teacher(onnx_path, 'seg')
    assert seg.kind == 'onnx' and seg.preprocessing.input_size == (32, 64)
    batch = images(3, (32, 64))  # batch 3 through a graph fixed at batch 1
    out = seg(batch)
    with torch.no_grad():
        reference = model(batch).seg_logits
    assert torch.allclose(out.seg_logits, reference, atol=1e-4)
    resized = seg(images(2, (64, 128)))  # resized in to 32x64 and back out to 64x128
    assert resized.seg_logits.shape == (2, 4, 64, 128)
    with pytest.raises(TeacherError, match='takes 32x64 only, input_size is 64x128') as err:
        teacher(onnx_path, 'seg', input_size='64x128')
    assert err.value.key == 'input_size'


def test_onnx_outputs_are_chosen_by_name(tmp_path):
    """The exported student has outputs 'depth' and 'seg_logits': each task takes its own,
    or the one `output` names."""
    student = JointStudent(width_mult=0.25, num_classes=5, max_depth=20.0,
                           decoder_channels=(16, 8, 8)).eval()
    save_checkpoint(tmp_path / 'student', student, {'input_size': [32, 64]})
    onnx_path = export_onnx(tmp_path / 'student.safetensors', tmp_path / 'student.onnx', '32x64')
    x = images(1, (32, 64))
    with torch.no_grad():
        reference = student(x)
    assert torch.allclose(teacher(onnx_path, 'seg')(x).seg_logits, reference.seg_logits,
                          atol=1e-4)
    assert torch.allclose(teacher(onnx_path, 'depth')(x).depth, reference.depth, atol=1e-4)
    assert teacher(onnx_path, 'depth', output='depth').backend.output_index == 0
    with pytest.raises(TeacherError, match="no output 'logits' \\(outputs: depth, seg_logits\\)"):
        teacher(onnx_path, 'seg', output='logits')


@pytest.mark.filterwarnings('ignore::DeprecationWarning')
def test_bad_files_and_outputs_are_clear_errors(tmp_path):
    garbage = tmp_path / 'garbage.onnx'
    garbage.write_bytes(b'definitely not a model' * 10)
    with pytest.raises(TeacherError, match='garbage.onnx: not a valid ONNX model.*set kind'):
        teacher(garbage, 'seg')
    with pytest.raises(TeacherError, match='absent.onnx: not found'):
        teacher(tmp_path / 'absent.onnx', 'seg')
    depth_like = _trace(_ColourVote(), tmp_path / 'vote.pt')
    with pytest.raises(TeacherError, match=r'output shape \(1, 3, 8, 16\), expected \(N=1, 1, '):
        teacher(depth_like, 'depth')(torch.rand(1, 3, 32, 64))


# ---- the registry ---------------------------------------------------------------------------
@pytest.mark.filterwarnings('ignore::DeprecationWarning')
def test_kinds_are_detected_from_the_path(tmp_path, hf_folders):
    assert list(TEACHER_KINDS) == ['transformers', 'checkpoint', 'torchscript', 'onnx']
    save_checkpoint(tmp_path / 'ckpt', DepthTeacher(width=8, blocks=(1, 1, 1, 1)),
                    {'input_size': [32, 64]})
    assert detect_kind(hf_folders['segformer']) == 'transformers'
    for name in ('ckpt', 'ckpt.safetensors', 'ckpt.json'):
        assert detect_kind(tmp_path / name) == 'checkpoint'
    assert detect_kind(_trace(_ColourVote(), tmp_path / 'model.bin')) == 'torchscript'
    (tmp_path / 'model.onnx').write_bytes(b'x')
    assert detect_kind(tmp_path / 'model.onnx') == 'onnx'
    (tmp_path / 'empty').mkdir()
    with pytest.raises(TeacherError, match='folder without config.json'):
        detect_kind(tmp_path / 'empty')


def test_options_a_kind_does_not_take_are_errors_naming_them(hf_folders):
    cases = [({'channel_order': 'bgr'}, 'seg', 'channel_order', 'transformers teachers take no'),
             ({'output_kind': 'logits'}, 'seg', 'output_kind', 'transformers teachers take no'),
             ({'class_map': 'cityscapes19_to_7'}, 'depth', 'class_map', 'segmentation teachers'),
             ({'depth_kind': 'metric'}, 'seg', 'depth_kind', 'depth teachers only'),
             ({'std': [1.0, 0.0, 1.0]}, 'seg', 'std', 'must be > 0'),
             ({'input_size': '64x64', 'size_multiple': 32}, 'seg', 'size_multiple', 'not both'),
             ({'class_map': 'no_such_map'}, 'seg', 'class_map', 'neither a shipped')]
    for options, task, key, message in cases:
        folder = hf_folders['segformer' if task == 'seg' else 'glpn']
        with pytest.raises(TeacherError, match=message) as err:
            teacher(folder, task, **options)
        assert err.value.key == key, options


def test_a_seg_teacher_with_other_classes_names_the_class_map(hf_folders):
    seg = teacher(hf_folders['segformer'], 'seg')
    with pytest.raises(TeacherError, match='returns 19 classes, the student has 7: set class_map '
                                           r'\(shipped: cityscapes19_to_7'):
        seg.check(images(1), 7)
    assert seg.check(images(1), 19).seg_logits.shape[1] == 19


# ---- transformers -------------------------------------------------------------------------
FEATURES = {  # family: (enc channels, enc_mid channels, dec channels) from the tiny configs
    'segformer': (32, 16, 32), 'upernet': (32, 16, 16), 'dpt_seg': (32, 16, 16),
    'mask2former': (64, 16, 32), 'oneformer': (64, 16, 32), 'depth_anything': (32, 16, 16),
    'dpt_depth': (32, 16, 16), 'zoedepth': (32, 16, 16), 'glpn': (32, 16, 16)}


@pytest.mark.parametrize('name', SEG_FAMILIES + DEPTH_FAMILIES)
def test_transformers_families_give_student_sized_outputs_and_features(hf_folders, name):
    task = 'seg' if name in SEG_FAMILIES else 'depth'
    options = {'class_map': 'cityscapes19_to_7'} if task == 'seg' else {}
    adapter = teacher(hf_folders[name], task, **options)
    out = adapter(images())
    prediction = out.seg_logits if task == 'seg' else out.depth
    assert prediction.shape == (2, 7 if task == 'seg' else 1, *SIZE)
    assert torch.isfinite(prediction).all() and (prediction.std(dim=(2, 3)) > 0).all()
    model_size = adapter.preprocessing.model_size(SIZE)
    enc, mid, dec = FEATURES[name]
    channels = {key: value.shape[1] for key, value in out.features.items()}
    assert channels == {'enc': enc, 'enc_mid': mid, f'dec_{task}': dec}
    assert model_size[0] / out.features['enc'].shape[-2] >= 16      # the coarsest map
    assert 6 <= model_size[0] / out.features['enc_mid'].shape[-2] <= 10   # nearest stride 8
    assert out.features[f'dec_{task}'].shape[-2] == math.ceil(model_size[0] / 4)


def test_segformer_adapter_equals_the_model_run_by_hand(hf_folders):
    """ImageNet normalisation in, logits at stride 4 out, classes merged per category."""
    adapter = teacher(hf_folders['segformer'], 'seg', class_map='cityscapes19_to_7')
    x = images()
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        logits = adapter.backend.model(pixel_values=(x - mean) / std).logits  # (2, 19, 16, 32)
    groups = [[0, 1], [2, 3, 4], [5, 6, 7], [8, 9], [10], [11, 12], [13, 14, 15, 16, 17, 18]]
    merged = torch.stack([logits[:, group].logsumexp(dim=1) for group in groups], dim=1)
    expected = torch.nn.functional.interpolate(merged, size=SIZE, mode='bilinear',
                                               align_corners=False)
    assert torch.allclose(adapter(x).seg_logits, expected, atol=1e-5)


@pytest.mark.parametrize('name', ['mask2former', 'oneformer'])
def test_query_based_models_agree_with_their_own_semantic_post_processing(hf_folders, name):
    import transformers
    adapter = teacher(hf_folders[name], 'seg')
    x = images()
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    extra = {} if adapter.backend.task_inputs is None else \
        {'task_inputs': adapter.backend.task_inputs.expand(2, -1)}
    with torch.no_grad():
        output = adapter.backend.model(pixel_values=(x - mean) / std, **extra)
    reference = torch.stack(transformers.Mask2FormerImageProcessor()
                            .post_process_semantic_segmentation(output, target_sizes=[SIZE] * 2))
    ours = adapter(x).seg_logits.argmax(dim=1)
    assert len(reference.unique()) > 1
    # transformers upsamples the masks to 384x384 before combining them; the adapter combines
    # at the masks' resolution: the two differ only along boundaries.
    assert (ours == reference).float().mean() > 0.9


def test_depth_anything_runs_at_multiples_of_14_and_reports_its_depth_kind(hf_folders, tmp_path):
    adapter = teacher(hf_folders['depth_anything'], 'depth')
    seen = []
    adapter.backend.model.register_forward_pre_hook(
        lambda _m, args, kwargs: seen.append(kwargs['pixel_values'].shape[-2:]),
        with_kwargs=True)
    out = adapter(images())
    assert seen == [(70, 126)] and out.depth_kind == 'relative_inverse'  # 64/14 -> 5, 128/14 -> 9
    assert teacher(hf_folders['depth_anything'], 'depth', depth_kind='relative')(
        images(1)).depth_kind == 'relative'
    assert teacher(hf_folders['zoedepth'], 'depth').depth_kind == 'metric'
    assert teacher(hf_folders['dpt_depth'], 'depth').preprocessing.input_size == (64, 64)
    from teacher_fixtures import build_hf_model
    metric = build_hf_model('depth_anything')
    metric.config.depth_estimation_type = 'metric'
    metric.save_pretrained(tmp_path / 'metric')
    assert teacher(tmp_path / 'metric', 'depth').depth_kind == 'metric'


def test_preprocessor_config_overrides_the_family_defaults(hf_folders, tmp_path):
    import shutil
    folder = shutil.copytree(hf_folders['glpn'], tmp_path / 'glpn')
    (folder / 'preprocessor_config.json').write_text(
        '{"do_normalize": true, "image_mean": [0.1, 0.2, 0.3], "image_std": [2, 2, 2], '
        '"size_divisor": 64}')
    adapter = teacher(folder, 'depth')
    assert adapter.preprocessing.mean == (0.1, 0.2, 0.3)
    assert adapter.preprocessing.std == (2.0, 2.0, 2.0)
    assert adapter.preprocessing.model_size((100, 100)) == (128, 128)
    assert teacher(folder, 'depth', std=[1, 1, 1]).preprocessing.std == (1.0, 1.0, 1.0)


def test_transformers_folders_that_cannot_serve_are_refused(hf_folders, tmp_path):
    import shutil
    with pytest.raises(TeacherError, match='SegformerForSemanticSegmentation is a seg model, '
                                           'set as the depth teacher'):
        teacher(hf_folders['segformer'], 'depth')
    headless = shutil.copytree(hf_folders['segformer'], tmp_path / 'headless')
    weights = load_file(headless / 'model.safetensors')
    save_file({k: v for k, v in weights.items() if 'classifier' not in k},
              headless / 'model.safetensors', metadata={'format': 'pt'})
    with pytest.raises(TeacherError, match='lack 2 tensor.*decode_head.classifier.*partly random'):
        teacher(headless, 'seg')
    pickled = shutil.copytree(hf_folders['segformer'], tmp_path / 'pickled')
    torch.save(load_file(pickled / 'model.safetensors'), pickled / 'pytorch_model.bin')
    (pickled / 'model.safetensors').unlink()
    with pytest.raises(TeacherError, match='needs model.safetensors; pickled .bin weights are '
                                           'refused'):
        teacher(pickled, 'seg')
    other = tmp_path / 'bert'
    other.mkdir()
    (other / 'config.json').write_text('{"architectures": ["BertModel"], "model_type": "bert"}')
    with pytest.raises(TeacherError, match='BertModel is not supported.*supported: Segformer'):
        teacher(other, 'seg')


# ---- the project's own teachers as foreign ones ---------------------------------------------
@pytest.fixture(scope='module')
def own_teachers(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp('own')
    torch.manual_seed(0)
    seg = SegTeacher(7, width=8, blocks=(1, 1, 1, 1)).eval()
    depth = DepthTeacher(20.0, width=8, blocks=(1, 1, 1, 1)).eval()
    files = {}
    for name, model in (('seg', seg), ('depth', depth)):
        save_checkpoint(root / name, model, {'input_size': list(SIZE)})
        files[name] = export_onnx(root / f'{name}.safetensors', root / f'{name}.onnx', '64x128')
    return {'seg': seg, 'depth': depth, 'root': root, **{f'{k}_onnx': v for k, v in files.items()}}


def test_own_seg_teacher_as_a_19_class_onnx_teacher_through_the_shipped_map(own_teachers):
    root = own_teachers['root']
    wide = widen_seg_onnx(own_teachers['seg_onnx'], root / 'seg19.onnx', CATEGORY_POSITIONS,
                          19, pad_logit=-1e4)
    adapter = teacher(wide, 'seg', class_map='cityscapes19_to_7')
    builtin = teacher(root / 'seg.safetensors', 'seg')
    x = images(3)
    adapted, reference = adapter(x), builtin(x)
    with torch.no_grad():
        direct = own_teachers['seg'](x).seg_logits
    assert torch.equal(reference.seg_logits, direct)  # the checkpoint path changes nothing
    assert torch.allclose(adapted.seg_logits.softmax(1), reference.seg_logits.softmax(1),
                          atol=1e-4)
    agreement = (adapted.seg_logits.argmax(1) == reference.seg_logits.argmax(1)).float().mean()
    assert agreement > 0.999 and adapted.seg_void is None


def test_own_seg_teacher_through_a_users_map_with_void_padding(own_teachers, tmp_path):
    """A 9-class teacher, categories in reverse order, two padding classes mapped to void:
    the same probabilities while the padding loses, every pixel void once it wins."""
    root = own_teachers['root']
    names = ['flat', 'construction', 'object', 'nature', 'sky', 'human', 'vehicle']
    positions = [8, 7, 6, 5, 4, 3, 2]
    map_path = tmp_path / 'reversed.yaml'
    map_path.write_text(yaml.safe_dump({
        'source_classes': ['pad_a', 'pad_b'] + names[::-1], 'target_classes': names,
        'mapping': {**{name: name for name in names}, 'pad_a': None}}))  # pad_b unlisted: void
    x = images(2)
    reference = teacher(root / 'seg.safetensors', 'seg')(x)
    losing = teacher(widen_seg_onnx(own_teachers['seg_onnx'], tmp_path / 'lose.onnx', positions,
                                    9, pad_logit=-1e4), 'seg', class_map=str(map_path))(x)
    assert torch.allclose(losing.seg_logits.softmax(1), reference.seg_logits.softmax(1),
                          atol=1e-4)
    assert not losing.seg_void.any()
    winning = teacher(widen_seg_onnx(own_teachers['seg_onnx'], tmp_path / 'win.onnx', positions,
                                     9, pad_logit=1e3), 'seg', class_map=str(map_path))(x)
    assert winning.seg_void.all()
    assert (teacher_hard_labels(winning) == 255).all()
    # Void classes leave the distribution: the merged softmax still equals the teacher's.
    assert torch.allclose(winning.seg_logits.softmax(1), reference.seg_logits.softmax(1),
                          atol=1e-4)


def test_own_depth_teacher_as_a_relative_inverse_onnx_teacher(own_teachers):
    """Disparity s / d + b with a scale and shift that change per image: aligned per image it
    gives back the built-in teacher's metres, and the SSI loss cannot tell the two apart."""
    root = own_teachers['root']
    disparity_onnx = inverse_depth_onnx(own_teachers['depth_onnx'], root / 'disparity.onnx')
    adapter = teacher(disparity_onnx, 'depth', depth_kind='relative_inverse')
    builtin = teacher(root / 'depth.safetensors', 'depth')
    x = images(3)
    adapted, reference = adapter(x), builtin(x)
    assert adapted.depth_kind == 'relative_inverse' and reference.depth_kind == 'metric'
    scale, shift = inverse_depth_scale_shift(x)
    assert torch.allclose(adapted.depth, scale / reference.depth + shift, rtol=1e-4)
    metres = aligned_depth(adapted.depth, reference.depth, 'relative_inverse', max_depth=20.0)
    assert torch.allclose(metres, reference.depth, rtol=1e-3)
    student_depth = torch.rand(3, 1, *SIZE, generator=torch.Generator().manual_seed(3)) * 19 + 1
    assert ssi_loss(1 / student_depth, adapted.depth).item() == pytest.approx(
        ssi_loss(1 / student_depth, 1 / reference.depth).item(), rel=1e-4)


def test_checkpoint_teacher_refuses_a_task_it_does_not_predict(own_teachers):
    seg_only = teacher(own_teachers['root'] / 'seg.safetensors', 'depth')
    with pytest.raises(TeacherError, match='predicts no depth'):
        seg_only(images(1))



# ---- the command --------------------------------------------------------------------------
def test_teacher_command_reports_and_draws_the_teachers(hf_folders, tmp_path, capsys):
    import cv2

    from jointdistill_core.cli import main
    image = tmp_path / 'frame.png'
    cv2.imwrite(str(image), np.full((90, 160, 3), 120, np.uint8))
    assert main(['teacher', '--seg', str(hf_folders['segformer']),
                 '--seg-opt', 'class_map=cityscapes19_to_7', '--depth',
                 str(hf_folders['depth_anything']), '--size', '64x128', '--image', str(image),
                 '--image', str(image), '--out', str(tmp_path / 'out')]) == 0
    printed = capsys.readouterr().out
    assert '19 classes -> 7 through' in printed and 'cityscapes19_to_7.yaml (void: none)' in printed
    assert 'model input 70x126 for 64x128 images' in printed  # Depth Anything: multiples of 14
    assert ('depth kind relative_inverse: anchored to ground-truth depth on frames that have '
            'it') in printed
    sheet = cv2.imread(str(tmp_path / 'out' / 'teachers.png'))
    assert sheet.shape == (2 * 64 + 3 * 4, 3 * 128 + 4 * 4, 3)  # two rows of three tiles


def test_teacher_command_errors_are_one_line_naming_the_option(hf_folders, capsys):
    from jointdistill_core.cli import main
    assert main(['teacher', '--seg', str(hf_folders['segformer']), '--size', '64x128']) == 2
    assert 'seg teacher: class_map: ' in capsys.readouterr().err
    assert main(['teacher', '--depth', str(hf_folders['glpn']), '--depth-opt',
                 'output_stride=4']) == 2
    assert 'depth teacher: output_stride: transformers teachers take no output_stride' in \
        capsys.readouterr().err
    assert main(['teacher', '--depth', 'x', '--depth-opt', 'depth_kind']) == 2
    assert "--depth-opt 'depth_kind' is not KEY=VALUE" in capsys.readouterr().err
