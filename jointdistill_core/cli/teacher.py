"""`jointdistill teacher`: read teachers through their adapters before distilling from them.

For each teacher given (a transformers folder, an ONNX or TorchScript file, a checkpoint),
prints what a distillation gets: the detected kind and architecture, the pre-processing, the
classes through the class map, the depth kind, the features (and so which methods can use
it). With --image it runs the teachers on the images and writes OUT/teachers.png, one row per
image: the image, the depth teacher's prediction (near = red) and the segmentation
teacher's classes (void black). See docs/teachers.md.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from jointdistill_core.classes import DEFAULT_NUM_CLASSES
from jointdistill_core.cli import CliError
from jointdistill_core.cli.arguments import device_name, size_argument
from jointdistill_core.tasks import TASKS

OPTION_EXAMPLES = {'seg': 'class_map=ade20k_to_7', 'depth': 'depth_kind=relative_inverse'}
FEATURE_METHODS = 'static_kd, jointdistill with fusion and amalgamation with lambda_feat > 0'
PREDICTION_METHODS = ('mtl, xdistill, jointdistill with fusion: false and amalgamation with '
                      'lambda_feat: 0')


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `teacher` to the subcommands."""
    parser = subparsers.add_parser(
        'teacher', help='check teachers (transformers, ONNX, TorchScript, checkpoints) before '
                        'distilling',
        description='Load a segmentation and/or a depth teacher through the adapters that '
                    'training uses and report what the student would get from them; with '
                    '--image, draw their predictions.')
    for task in TASKS:
        parser.add_argument(f'--{task}', metavar='PATH',
                            help=f'the {task} teacher: a transformers folder, an .onnx or '
                                 'TorchScript file, or a checkpoint X.safetensors')
        parser.add_argument(f'--{task}-opt', action='append', default=[], metavar='KEY=VALUE',
                            help=f'a {task} teacher option (repeatable), as in a training '
                                 f"config's teachers.{task} (e.g. {OPTION_EXAMPLES[task]})")
    parser.add_argument('--classes', type=int, default=DEFAULT_NUM_CLASSES,
                        help="the student's class count (default: Cityscapes' "
                             f'{DEFAULT_NUM_CLASSES} categories)')
    parser.add_argument('--size', type=size_argument(), default=(128, 256),
                        help='HxW the student trains at (default 128x256)')
    parser.add_argument('--image', action='append', default=[], metavar='FILE',
                        help='an image to run the teachers on (repeatable); needs --out')
    parser.add_argument('--out', help='folder for teachers.png')
    parser.add_argument('--device', default='auto', type=device_name,
                        help='auto, cpu, cuda or cuda:N (default: auto); no CPU fallback')
    parser.set_defaults(handler=run)


def teacher_config(path: str, options: list[str], task: str):
    """A TeacherConfig from PATH and KEY=VALUE options (values read as YAML), checked."""
    from jointdistill_core.config import ConfigError, from_dict, parse_yaml
    from jointdistill_core.teachers import check_options
    from jointdistill_core.training.config import TeacherConfig
    mapping = {'path': path}
    for option in options:
        key, separator, value = option.partition('=')
        if not separator or not key:
            raise CliError(f'--{task}-opt {option!r} is not KEY=VALUE')
        mapping[key.strip()] = parse_yaml(value)
    try:
        config = from_dict(TeacherConfig, mapping, source=f'--{task}-opt')
    except ConfigError as error:
        raise CliError(str(error)) from None
    for key, problem in check_options(config, task):
        raise CliError(f'--{task}-opt {key}: {problem}')
    return config


def run(args: argparse.Namespace) -> int:
    """The `teacher` command; CliError names a bad teacher, option or image."""
    import torch

    from jointdistill_core.device import DeviceUnavailableError, resolve_device
    from jointdistill_core.teachers import TeacherError, build_teacher
    if not (args.seg or args.depth):
        raise CliError('give --seg PATH and/or --depth PATH')
    if args.image and not args.out:
        raise CliError('--image needs --out (the folder for teachers.png)')
    try:
        device = str(resolve_device(args.device))
    except DeviceUnavailableError as error:
        raise CliError(f'--device: {error}') from None
    images = _probe_images(args.image, args.size)
    batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div(255.0)
    batch = batch.to(device)
    outputs = {}
    for task in TASKS:
        path = getattr(args, task)
        if not path:
            continue
        config = teacher_config(path, getattr(args, f'{task}_opt'), task)
        try:
            teacher = build_teacher(config, task, device)
            outputs[task] = teacher.check(batch, args.classes)
        except (TeacherError, ValueError, OSError) as error:
            key = getattr(error, 'key', 'path')
            raise CliError(f'{task} teacher: {key}: {error}') from None
        print('\n'.join(describe(teacher, outputs[task], args.size)))
    if args.image:
        sheet = _sheet(images, outputs, args.classes)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        import cv2
        cv2.imwrite(str(out / 'teachers.png'), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
        print(f'wrote {out / "teachers.png"} (image | depth teacher | seg teacher per row)')
    return 0


def describe(teacher, out, size: tuple[int, int]) -> list[str]:
    """Lines telling what a distillation gets from `teacher`, given its output `out`."""
    pre = teacher.preprocessing
    model_size = pre.model_size(size)
    lines = [f'{teacher.task} teacher: {teacher.kind}, {teacher.backend.architecture} '
             f'({teacher.path})',
             f'  model input {model_size[0]}x{model_size[1]} for {size[0]}x{size[1]} images, '
             f'{pre.channel_order.upper()}, mean {_numbers(pre.mean)}, std {_numbers(pre.std)}']
    if teacher.task == 'seg':
        class_map = teacher.class_map
        if class_map is None:
            lines.append(f'  {out.seg_logits.shape[1]} classes, used as the student\'s')
        else:
            void = ', '.join(class_map.void_classes) or 'none'
            lines.append(f'  {len(class_map.source_classes)} classes -> '
                         f'{len(class_map.target_classes)} through {class_map.source} '
                         f'(void: {void})')
    else:
        lines.append(f'  depth kind {teacher.depth_kind}' + (
            ': metres, matched by the method\'s depth loss' if teacher.depth_kind == 'metric'
            else ': anchored to ground-truth depth on frames that have it (then the method\'s '
                 'depth loss), the scale-and-shift-invariant loss on the others; the metric '
                 'scale comes from labelled depth (amalgamation: with depth_label_weight)'))
    if out.features:
        features = ', '.join(f'{key} {value.shape[1]} ch' for key, value
                             in sorted(out.features.items()))
        lines.append(f'  features: {features}; serves every method')
    else:
        lines.append(f'  no features: serves {PREDICTION_METHODS}, not {FEATURE_METHODS}')
    return lines


def _numbers(values) -> str:
    return '(' + ', '.join(f'{v:.4g}' for v in values) + ')'


def _probe_images(paths: list[str], size: tuple[int, int]) -> list[np.ndarray]:
    """(H, W, 3) uint8 RGB at `size`: the given image files, else one synthetic street scene."""
    import cv2
    if not paths:
        from jointdistill_core.data.registry import build_dataset
        dataset, _ = build_dataset('synthetic', 'val', size=size, num_frames=1)
        image = dataset[0]['image'].permute(1, 2, 0).numpy()
        return [np.round(image * 255).astype(np.uint8)]
    images = []
    for path in paths:
        array = cv2.imread(path, cv2.IMREAD_COLOR)
        if array is None:
            raise CliError(f'--image {path}: not a readable image file')
        resized = cv2.resize(array, (size[1], size[0]), interpolation=cv2.INTER_AREA)
        images.append(cv2.cvtColor(resized, cv2.COLOR_BGR2RGB))
    return images


def _sheet(images: list[np.ndarray], outputs: dict, num_classes: int) -> np.ndarray:
    from jointdistill_core.visualize import contact_sheet
    height, width = images[0].shape[:2]
    rows = []
    for index, image in enumerate(images):
        depth = np.zeros((height, width), np.float32)
        labels = np.full((height, width), 255, np.uint8)
        if 'depth' in outputs:
            out = outputs['depth']
            depth = out.depth[index, 0].float().cpu().numpy()
            if out.depth_kind == 'relative_inverse':  # drawn as relative depth
                depth = 1.0 / np.maximum(depth, 1e-6)
        if 'seg' in outputs:
            from jointdistill_core.distill.losses import teacher_hard_labels
            labels = teacher_hard_labels(outputs['seg'])[index].cpu().numpy().astype(np.uint8)
        rows.append((image, depth, labels))
    return contact_sheet(rows, num_classes)
