r"""`jointdistill distill`: distil two teachers into one student on your own data (a bag, a
folder, any dataset spec), evaluate it on the held-back part, write the checkpoint, a model
card and a report, and print the launch line (docs/your_robot.md).

    jointdistill distill --data 'bag:rec?image=/cam/image_raw/compressed&val=0.2' \\
        --seg-teacher models/segformer --seg-opt class_map=cityscapes19_to_7 \\
        --depth-teacher models/depth-anything-v2-small --out runs/robot --steps 2000

OUT holds what `jointdistill train` writes (best / last checkpoints, resume state, logs),
plus model_card.md, report.md, report.png and evaluation.json. Under torchrun it trains
data-parallel like `train`; the first process evaluates and writes the report.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from jointdistill_core.classes import DEFAULT_NUM_CLASSES
from jointdistill_core.cli import CliError
from jointdistill_core.cli.arguments import device_name, positive_int, size_argument
from jointdistill_core.cli.teacher import teacher_config
from jointdistill_core.cli.train import refuse_to_overwrite_a_run

REPORT_FRAMES = 4


def register(subparsers) -> None:
    """Add `distill` to the subcommands."""
    parser = subparsers.add_parser(
        'distill', help='distil two teachers into one student on your own recordings, '
                        'evaluate it and say how to deploy it',
        description='Train a student from a segmentation and a depth teacher on a dataset spec '
                    '(bag:PATH, folder:DIR, ... docs/datasets.md), label-free by default; '
                    'evaluate it on the held-back part; write the checkpoint, a model card '
                    'and a report (docs/your_robot.md).')
    parser.add_argument('--data', required=True, metavar='SPEC',
                        help="the training data, e.g. 'bag:rec.mcap?val=0.2' (its held-back "
                             'part, split val, is evaluated)')
    for task in ('seg', 'depth'):
        parser.add_argument(f'--{task}-teacher', required=True, metavar='PATH',
                            help=f'the {task} teacher: a transformers folder, an .onnx or '
                                 'TorchScript file, or a checkpoint (docs/teachers.md)')
        parser.add_argument(f'--{task}-opt', action='append', default=[], metavar='KEY=VALUE',
                            help=f'a {task} teacher option (repeatable), e.g. '
                                 + ('class_map=cityscapes19_to_7' if task == 'seg'
                                    else 'depth_kind=relative_inverse'))
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--steps', type=positive_int, default=2000,
                        help='optimizer steps (default 2000)')
    parser.add_argument('--method', default='auto', choices=('auto', 'amalgamation',
                                                             'jointdistill'),
                        help='auto (default): jointdistill where the data has labels and '
                             'metric depth, else label-free amalgamation')
    parser.add_argument('--scale-data', metavar='SPEC',
                        help='data with metric depth mixed in when the depth teacher is relative '
                             'and the data has no depth (default: synthetic)')
    parser.add_argument('--scale-weight', type=float, default=0.3,
                        help='share of the training samples from --scale-data (default 0.3)')
    parser.add_argument('--size', type=size_argument(32, 32), default=(192, 256),
                        help='HxW training size, multiples of 32 (default 192x256)')
    parser.add_argument('--classes', type=positive_int, default=DEFAULT_NUM_CLASSES,
                        help=f"the student's class count (default {DEFAULT_NUM_CLASSES})")
    parser.add_argument('--batch-size', type=positive_int, default=8,
                        help='global batch size (default 8)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--device', default='auto', type=device_name)
    parser.add_argument('--set', dest='overrides', action='append', default=[],
                        metavar='KEY=VALUE',
                        help='override a training config key (docs/training.md), e.g. '
                             '--set optim.lr=1e-3 (repeatable)')
    parser.add_argument('--force', action='store_true',
                        help='start over in an output folder that holds a previous run')
    parser.add_argument('--resume', action='store_true',
                        help='continue the run in OUT (same options)')
    parser.add_argument('--no-progress', action='store_true', help='hide the progress bar')
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """The `distill` command; CliError names the option at fault."""
    from jointdistill_core.config import ConfigError
    from jointdistill_core.training import TrainingError, train
    from jointdistill_core.training.distill import DistillRequest, plan_distillation
    request = DistillRequest(
        data=args.data, seg=teacher_config(args.seg_teacher, args.seg_opt, 'seg'),
        depth=teacher_config(args.depth_teacher, args.depth_opt, 'depth'), out=args.out,
        steps=args.steps, method=args.method, scale_data=args.scale_data,
        scale_weight=args.scale_weight, size=args.size, classes=args.classes,
        batch_size=args.batch_size, seed=args.seed, device=args.device,
        overrides=args.overrides)
    try:
        plan = plan_distillation(request)
        refuse_to_overwrite_a_run(Path(plan.config.out), args)
        is_main = int(os.environ.get('RANK', '0')) == 0
        if is_main:
            print('\n'.join(f'distill: {line}' for line in plan.decisions), flush=True)
        result = train(plan.config, resume=args.resume, progress=not args.no_progress,
                       command=args.command_line, depth_scale=plan.depth_scale)
        if not is_main:
            return 0
        report = write_report(request, plan, result.out_dir)
    except (ConfigError, TrainingError) as error:
        raise CliError(str(error)) from None
    print(report)
    return 0


def _checkpoint(out: Path) -> Path:
    return out / 'best'


def evaluate_held_back(request, plan, out: Path) -> tuple[dict[str, dict[str, float]], object]:
    """{table heading: metrics} of the student on the held-back part, and the frames for
    the figure: the predictor protocol against ground truth where the part has any, and the
    agreement with the teachers always."""
    from jointdistill_core.data.registry import build_dataset
    from jointdistill_core.device import resolve_device
    from jointdistill_core.inference import Predictor
    from jointdistill_core.teachers import build_teacher
    from jointdistill_core.training.distill import teacher_agreement
    from jointdistill_core.training.evaluate import evaluate_predictor
    config = plan.config
    device = resolve_device(config.device)
    held_back_spec = config.data.val_spec or config.data.spec
    tables = {}
    if plan.held_back.labels or plan.held_back.depth:
        dataset, _ = build_dataset(held_back_spec, 'val', num_classes=request.classes)
        predictor = Predictor.from_checkpoint(_checkpoint(out), device=str(device))
        tables['Held-back ground truth (predictor protocol, each frame at its own size with '
               'its K)'] = evaluate_predictor(predictor, dataset, request.classes)
    from jointdistill_core.checkpoint import load_checkpoint
    student, _ = load_checkpoint(_checkpoint(out), device)
    teachers = {task: build_teacher(getattr(config.teachers, task), task, device)
                for task in ('seg', 'depth')}
    dataset, _ = build_dataset(held_back_spec, 'val', size=config.data.size_pixels(),
                               num_classes=request.classes)
    agreement, frames = teacher_agreement(student, teachers, dataset, request.classes, device,
                                          config.data.batch_size, REPORT_FRAMES)
    tables[f'Agreement with the teachers on the held-back frames ({len(dataset)} frames at '
           f'{config.data.size})'] = agreement
    return tables, frames


def write_figure(frames, path: Path, classes: int) -> None:
    """Two rows per held-back frame: the teachers' outputs, then the student's (image |
    depth, near = red, one colour scale | classes, void black)."""
    import cv2

    from jointdistill_core.visualize import contact_sheet
    rows = []
    for index, image in enumerate(frames.images):
        rows.append((image, frames.teacher_depth[index], frames.teacher_labels[index]))
        rows.append((image, frames.student_depth[index], frames.student_labels[index]))
    cv2.imwrite(str(path), cv2.cvtColor(contact_sheet(rows, classes), cv2.COLOR_RGB2BGR))


def launch_line(out: Path) -> str:
    """The command that starts the perception node with the distilled student."""
    return ('ros2 launch jointdistill_ros jointdistill.launch.py '
            f'model_path:={_checkpoint(out)}.safetensors')


def write_report(request, plan, out: Path) -> str:
    """Evaluate, write model_card.md, report.md, report.png, evaluation.json; returns what to
    print."""
    from jointdistill_core.model_card import write_model_card
    from jointdistill_core.training.evaluate import format_table
    tables, frames = evaluate_held_back(request, plan, out)
    (out / 'evaluation.json').write_text(json.dumps(
        {heading: {key: (None if not np.isfinite(value) else value)
                   for key, value in metrics.items()} for heading, metrics in tables.items()},
        indent=2) + '\n')
    write_figure(frames, out / 'report.png', request.classes)
    deploy = launch_line(out)
    notes = [f'## Deploy\n\n```bash\n{deploy}\n```']
    write_model_card(_checkpoint(out), out / 'model_card.md',
                     title=f'Student distilled on {request.data}', evaluation=tables,
                     notes=notes)
    lines = [f'# Distillation report: {out}', '',
             *[f'- {decision}' for decision in plan.decisions], '',
             f'Student: `{_checkpoint(out)}.safetensors` (card: `model_card.md`).', '']
    for heading, metrics in tables.items():
        lines += [f'## {heading}', '', format_table(metrics), '']
    lines += ['Agreement needs no ground truth: the student\'s classes against the seg '
              'teacher\'s (the teacher\'s void pixels left out); its metric depth against a '
              'metric depth teacher\'s (abs rel, delta1), or for a relative teacher the '
              'scale-and-shift-invariant distance of the depth\'s shapes (agreement_ssi: 0 = '
              'the same shape, 1 = a flat depth map).', '',
              '![held-back frames](report.png)', '',
              'Two rows per held-back frame: the teachers\' outputs, then the student\'s '
              '(image | depth, near = red, one colour scale; a relative teacher\'s depth '
              'aligned to the student\'s by least squares | classes, void black).', '',
              '## Next step', '', '```bash', deploy, '```', '']
    (out / 'report.md').write_text('\n'.join(lines))
    summary = [f'{heading}:\n' + '\n'.join(f'  {key} {value:.4f}'
                                          for key, value in metrics.items())
               for heading, metrics in tables.items()]
    return '\n'.join([*summary, f'wrote {out / "model_card.md"}, {out / "report.md"}, '
                      f'{out / "report.png"}', 'next step:', f'  {deploy}'])
