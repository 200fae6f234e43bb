"""`transformers` teachers: a Hugging Face model folder (what `save_pretrained` writes:
config.json and model.safetensors, optionally preprocessor_config.json and a tokenizer).

Loaded from that folder only: `local_files_only` (nothing is downloaded), safetensors only
(a pickled pytorch_model.bin is refused), no remote code, float32. The architecture comes from
config.json's `architectures`; FAMILIES lists the supported ones with what the adapter needs
to know about each: how to turn its output into class scores or depth, its normalisation and
input size multiple (preprocessor_config.json overrides both when present), its depth kind,
and where its features are: the encoder's multi-scale maps ('enc' = the coarsest, 'enc_mid' =
the one nearest stride 8) and the finest decoder map before the prediction head ('dec_seg' /
'dec_depth'), read from the model's outputs or captured by forward hooks.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from jointdistill_core.teachers.base import Preprocessing, RawOutput, TeacherBackend, TeacherError

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
HALF = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
UNNORMALISED = ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
ONEFORMER_TASK = 'the task is semantic'  # OneFormer's task prompt, as its processor writes it


@dataclass(frozen=True)
class Family:
    """task: 'seg' or 'depth'. prediction: 'logits' (class logits), 'queries' (Mask2Former-style
    class queries x mask queries) or 'predicted_depth'. encoder / decoder: where the feature
    maps are, ('output', attribute of the model output), ('module', submodule whose output
    is captured) or ('input', submodule whose input is captured). size_multiple: an int, or
    'patch' for the ViT backbone's patch size (a DPT without backbone config takes a square
    image of its config's image_size). depth_kind: fixed, or None to read it from the config."""

    task: str
    normalization: tuple[tuple[float, ...], tuple[float, ...]]
    prediction: str
    encoder: tuple[str, str]
    decoder: tuple[str, str]
    size_multiple: int | str = 32
    depth_kind: str | None = None


_DPT_LIKE = {'encoder': ('module', 'neck.reassemble_stage'), 'decoder': ('module', 'neck')}
FAMILIES = {
    'SegformerForSemanticSegmentation': Family(
        'seg', IMAGENET, 'logits', ('output', 'hidden_states'),
        ('input', 'decode_head.classifier')),
    'UperNetForSemanticSegmentation': Family(
        'seg', IMAGENET, 'logits', ('module', 'backbone'), ('input', 'decode_head.classifier')),
    'DPTForSemanticSegmentation': Family('seg', HALF, 'logits', size_multiple='patch', **_DPT_LIKE),
    'Mask2FormerForUniversalSegmentation': Family(
        'seg', IMAGENET, 'queries', ('output', 'encoder_hidden_states'),
        ('output', 'pixel_decoder_last_hidden_state')),
    'OneFormerForUniversalSegmentation': Family(
        'seg', IMAGENET, 'queries', ('output', 'encoder_hidden_states'),
        ('output', 'pixel_decoder_hidden_states')),
    'DPTForDepthEstimation': Family('depth', HALF, 'predicted_depth', size_multiple='patch',
                                    depth_kind='relative_inverse', **_DPT_LIKE),
    'DepthAnythingForDepthEstimation': Family('depth', IMAGENET, 'predicted_depth',
                                              size_multiple='patch', **_DPT_LIKE),
    'ZoeDepthForDepthEstimation': Family('depth', HALF, 'predicted_depth', depth_kind='metric',
                                         **_DPT_LIKE),
    'GLPNForDepthEstimation': Family('depth', UNNORMALISED, 'predicted_depth',
                                     ('output', 'hidden_states'), ('module', 'decoder'),
                                     depth_kind='metric'),
}


def read_architecture(folder: Path) -> str:
    """The first entry of config.json's `architectures`, or a TeacherError."""
    config_path = folder / 'config.json'
    try:
        config = json.loads(config_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise TeacherError(f'{config_path}: not a readable transformers config ({error})'
                           ) from error
    architectures = config.get('architectures') if isinstance(config, dict) else None
    if not architectures:
        raise TeacherError(f'{config_path}: no "architectures" entry; save the model with '
                           'save_pretrained() of its task class (e.g. '
                           'SegformerForSemanticSegmentation)')
    return str(architectures[0])


class TransformersTeacher(TeacherBackend):
    """A transformers model folder (`save_pretrained`) as a teacher."""
    kind = 'transformers'
    options = frozenset({'input_size', 'size_multiple', 'mean', 'std'})

    def __init__(self, path: Path, task: str, device: torch.device) -> None:
        super().__init__(path, task)
        self.architecture = read_architecture(path)
        family = FAMILIES.get(self.architecture)
        if family is None:
            raise TeacherError(f'{path}: architecture {self.architecture} is not supported as a '
                               f'teacher (supported: {", ".join(FAMILIES)})')
        if family.task != task:
            raise TeacherError(f'{path}: {self.architecture} is a {family.task} model, set as '
                               f'the {task} teacher')
        self.family = family
        self.model = _load_model(path, self.architecture).to(device)
        self.defaults = _preprocessing(path, family, self.model.config)
        self.output_kind = 'probabilities' if family.prediction == 'queries' else 'logits'
        if task == 'depth':
            self.depth_kind = family.depth_kind or (
                'metric' if getattr(self.model.config, 'depth_estimation_type', 'relative')
                == 'metric' else 'relative_inverse')
        self.task_inputs = _oneformer_task_inputs(path, self.model.config) \
            if self.architecture.startswith('OneFormer') else None
        self._captured: dict[str, object] = {}
        for role, (where, name) in (('encoder', family.encoder), ('decoder', family.decoder)):
            if where in ('module', 'input'):
                self._capture(role, where, name)

    @classmethod
    def detect(cls, path: Path) -> bool:
        return path.is_dir() and (path / 'config.json').is_file()

    def _capture(self, role: str, where: str, name: str) -> None:
        module = self.model.get_submodule(name)
        if where == 'input':
            module.register_forward_pre_hook(
                lambda _module, args: self._captured.__setitem__(role, args[0]))
        else:
            module.register_forward_hook(
                lambda _module, _args, output: self._captured.__setitem__(role, output))

    def forward(self, images: torch.Tensor) -> RawOutput:
        self._captured.clear()
        wants_states = 'output' in (self.family.encoder[0], self.family.decoder[0])
        kwargs = {'pixel_values': images, 'output_hidden_states': wants_states}
        if self.task_inputs is not None:
            kwargs['task_inputs'] = self.task_inputs.to(images.device).expand(len(images), -1)
        output = self.model(**kwargs)
        raw = RawOutput(self._prediction(output), self._features(output, images))
        self._captured.clear()  # the maps not kept as features are freed now, not next batch
        return raw

    def _prediction(self, output) -> torch.Tensor:
        if self.family.prediction == 'logits':
            return output.logits
        if self.family.prediction == 'predicted_depth':
            return output.predicted_depth
        # Semantic scores as the model's own post-processing computes them: per class, the sum
        # over queries of P(class | query) times the query's mask probability (no-object dropped).
        classes = output.class_queries_logits.softmax(dim=-1)[..., :-1]
        masks = output.masks_queries_logits.sigmoid()
        return torch.einsum('bqc,bqhw->bchw', classes, masks)

    def _features(self, output, images: torch.Tensor) -> dict[str, torch.Tensor]:
        maps = {role: _feature_maps(self._read(role, output))
                for role in ('encoder', 'decoder')}
        features = {}
        encoder = [m for m in maps['encoder'] if m.dim() == 4]
        if encoder:
            strides = [images.shape[-2] / m.shape[-2] for m in encoder]
            features['enc'] = encoder[max(range(len(encoder)), key=strides.__getitem__)]
            features['enc_mid'] = encoder[min(range(len(encoder)),
                                              key=lambda i: abs(math.log(strides[i] / 8)))]
        decoder = [m for m in maps['decoder'] if m.dim() == 4]
        if decoder:
            features[f'dec_{self.task}'] = max(decoder, key=lambda m: m.shape[-2] * m.shape[-1])
        return features

    def _read(self, role: str, output) -> object:
        where, name = getattr(self.family, role)
        return getattr(output, name, None) if where == 'output' else self._captured.get(role)


def _feature_maps(value: object) -> list[torch.Tensor]:
    """A captured value (a tensor, a list of maps, a backbone output, ZoeDepth's neck pair) as
    a list of tensors."""
    if value is None:
        return []
    if hasattr(value, 'feature_maps'):
        value = value.feature_maps
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], list):
        value = value[0]  # ZoeDepth's neck returns (fused maps, last backbone map)
    return [item for item in value if isinstance(item, torch.Tensor)]


def _load_model(path: Path, architecture: str) -> nn.Module:
    try:
        import transformers
    except ImportError as error:
        raise TeacherError(f'{path}: transformers teachers need the transformers package '
                           '(pip install -r requirements-bench.txt)') from error
    model_class = getattr(transformers, architecture, None)
    if model_class is None:
        raise TeacherError(f'{path}: transformers {transformers.__version__} has no '
                           f'{architecture}')
    progress_bar = transformers.utils.logging.is_progress_bar_enabled()
    transformers.utils.logging.disable_progress_bar()  # one line per tensor group otherwise
    try:
        config = transformers.AutoConfig.from_pretrained(path, local_files_only=True)
        if getattr(config, 'use_pretrained_backbone', False):
            config.use_pretrained_backbone = False  # the folder holds the backbone's weights
        model, info = model_class.from_pretrained(
            path, config=config, local_files_only=True, use_safetensors=True,
            dtype=torch.float32, output_loading_info=True)
    except ImportError as error:  # e.g. Mask2Former's loss needs scipy
        raise TeacherError(f'{path}: {architecture} needs a package that is missing: '
                           f'{error}'.split('\n')[0]) from error
    except (OSError, ValueError) as error:
        raise TeacherError(f'{path}: cannot load {architecture} from the folder (it needs '
                           f'model.safetensors; pickled .bin weights are refused): '
                           f'{error}'.split('\n')[0]) from error
    finally:
        if progress_bar:
            transformers.utils.logging.enable_progress_bar()
    if info.get('missing_keys'):
        missing = sorted(info['missing_keys'])
        shown = ', '.join(missing[:3]) + (' ...' if len(missing) > 3 else '')
        raise TeacherError(f'{path}: the weights lack {len(missing)} tensor(s) of '
                           f'{architecture} ({shown}): the teacher would be partly random')
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


def _preprocessing(path: Path, family: Family, config) -> Preprocessing:
    """The family's defaults, overridden by the folder's preprocessor_config.json."""
    mean, std = family.normalization
    input_size = None
    if family.size_multiple == 'patch':
        backbone = getattr(config, 'backbone_config', None)
        if backbone is None:  # a plain ViT DPT reassembles a square patch grid
            input_size = (int(config.image_size),) * 2
            multiple = 1
        else:
            multiple = int(backbone.patch_size)
    else:
        multiple = int(family.size_multiple)
    processor_path = path / 'preprocessor_config.json'
    if processor_path.is_file():
        try:
            processor = json.loads(processor_path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise TeacherError(f'{processor_path}: not valid JSON ({error})') from error
        if processor.get('do_normalize', True) is False:
            mean, std = UNNORMALISED
        else:
            mean = tuple(processor.get('image_mean', mean))
            std = tuple(processor.get('image_std', std))
        multiple = int(processor.get('ensure_multiple_of') or processor.get('size_divisor')
                       or multiple)
    return Preprocessing(mean=tuple(map(float, mean)), std=tuple(map(float, std)),
                         input_size=input_size, size_multiple=multiple)


def _oneformer_task_inputs(path: Path, config) -> torch.Tensor:
    """OneFormer's task tokens (1, task_seq_len), as its processor builds them: the prompt
    tokenised by the folder's tokenizer, padded to task_seq_len, padding zeroed."""
    import transformers
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError, TypeError) as error:
        raise TeacherError(f'{path}: OneFormer needs its tokenizer in the folder (save the '
                           f'OneFormerProcessor next to the model): {error}'.split('\n')[0]
                           ) from error
    tokens = tokenizer([ONEFORMER_TASK], padding='max_length', truncation=True,
                       max_length=config.task_seq_len)
    ids = torch.tensor(tokens['input_ids']) * torch.tensor(tokens['attention_mask'])
    return ids.float()
