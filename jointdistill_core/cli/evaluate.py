"""`jointdistill evaluate`: metrics of a checkpoint on a dataset split, as JSON, Markdown and
a PNG of sample predictions.

The network runs directly on batches at the dataset's resolution (the code training
validation uses, jointdistill_core.training.evaluate), not through the Predictor, so the
numbers equal the validation numbers of training and the literature's protocol.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from jointdistill_core.cli import CliError

SAMPLE_COUNT = 4


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        'evaluate', help='metrics of a checkpoint on a dataset split (JSON, Markdown, PNG)',
        description='Evaluate a checkpoint (X.safetensors + X.json) on a dataset split. Prints '
                    'a table and writes OUT/metrics.json, OUT/metrics.md and OUT/samples.png '
                    '(image | ground truth | prediction).')
    parser.add_argument('--checkpoint', required=True, help='X, X.safetensors or X.json')
    parser.add_argument('--data', required=True,
                        help='synthetic, synthetic:DIR, nyuv2:DIR, cityscapes:DIR, '
                             'cityscapes19:DIR or folder:DIR')
    parser.add_argument('--split', default='test', help='dataset split (default: test)')
    parser.add_argument('--num', type=int, help='evaluate the first NUM frames only')
    parser.add_argument('--size', help='resize frames to HxW pixels (multiples of 32); '
                                       'default: the dataset\'s own size')
    parser.add_argument('--batch-size', type=int, default=8, help='frames per forward pass')
    parser.add_argument('--device', default='auto', choices=('auto', 'cpu', 'cuda'))
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--force', action='store_true',
                        help='replace the metrics, table and samples of an earlier evaluation '
                             'in OUT')
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from jointdistill_core.checkpoint import load_checkpoint
    from jointdistill_core.config import ConfigError
    from jointdistill_core.data.registry import build_dataset
    from jointdistill_core.training.config import parse_size
    from jointdistill_core.training.evaluate import evaluate_model, format_table
    from jointdistill_core.training.trainer import resolve_device

    if args.num is not None and args.num < 1:
        raise CliError(f'--num must be >= 1, got {args.num}')
    if args.batch_size < 1:
        raise CliError(f'--batch-size must be >= 1, got {args.batch_size}')
    if (Path(args.out) / 'metrics.json').exists() and not args.force:
        raise CliError(f'{args.out} already holds an evaluation (metrics.json); pass --force '
                       'to replace it')
    try:
        size = parse_size(args.size, '--size')
        device = resolve_device(args.device)
        model, meta = load_checkpoint(args.checkpoint, device)
    except (ConfigError, ValueError, OSError) as error:
        raise CliError(str(error)) from None
    num_classes = getattr(model, 'num_classes', None) or None  # depth-only networks: 0/None
    try:
        dataset, data_classes = build_dataset(args.data, args.split, size=size,
                                              num_frames=args.num, num_classes=num_classes)
    except (ValueError, OSError) as error:
        raise CliError(f'--data {args.data}: {error}') from None
    if num_classes is not None and num_classes != data_classes:
        raise CliError(f'{args.checkpoint} predicts {num_classes} classes but {args.data} has '
                       f'{data_classes}')
    if len(dataset) == 0:
        raise CliError(f'--data {args.data}: split {args.split!r} is empty')
    tasks = [name for name, present in (('seg_logits', num_classes is not None),
                                        ('depth', getattr(model, 'max_depth', None) is not None))
             if present]
    with torch.inference_mode():
        metrics = evaluate_model(model, dataset, data_classes, device, args.batch_size, tasks,
                                 progress=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {'checkpoint': str(args.checkpoint), 'model': meta['model'], 'data': args.data,
              'split': args.split, 'frames': len(dataset), 'num_classes': data_classes,
              'metrics': metrics}
    (out / 'metrics.json').write_text(json.dumps(report, indent=2) + '\n')
    table = format_table(metrics)
    (out / 'metrics.md').write_text(
        f'# Evaluation of `{args.checkpoint}`\n\nData: `{args.data}`, split `{args.split}`, '
        f'{len(dataset)} frames, {data_classes} classes. Fractions as percent; abs_err and '
        f'rmse in metres; abs_rel a ratio. Pooled over all valid pixels of the split.\n\n'
        f'{table}\n')
    write_samples(model, dataset, data_classes, device, out / 'samples.png')
    print(table)
    print(f'wrote {out / "metrics.json"}, {out / "metrics.md"}, {out / "samples.png"}')
    return 0


def write_samples(model, dataset, num_classes: int, device, path: Path,
                  count: int = SAMPLE_COUNT) -> None:
    """A PNG grid, one row per frame: image | gt labels | predicted labels | gt depth |
    predicted depth (columns a network does not predict are left out). Depth of a row
    shares one colour scale (metres, near = red)."""
    import cv2

    from jointdistill_core.training.evaluate import predict_batch
    from jointdistill_core.visualize import colorize_depth, colorize_labels

    rows = []
    indices = np.linspace(0, len(dataset) - 1, min(count, len(dataset))).round().astype(int)
    for index in indices:
        sample = dataset[int(index)]
        labels, depth = predict_batch(model, sample['image'][None].to(device))
        image = (sample['image'].permute(1, 2, 0).numpy() * 255).clip(0, 255).astype(np.uint8)
        tiles = [image]
        if labels is not None:
            tiles += [colorize_labels(sample['labels'].numpy(), num_classes),
                      colorize_labels(labels[0].cpu().numpy(), num_classes)]
        if depth is not None:
            gt_depth = sample['depth'][0].numpy()
            valid = gt_depth[gt_depth > 0]
            scale = float(np.percentile(valid, 99)) if valid.size else None
            tiles += [colorize_depth(gt_depth, scale),
                      colorize_depth(depth[0].float().cpu().numpy(), scale)]
        rows.append(np.concatenate(tiles, axis=1))
    grid = np.concatenate(rows, axis=0)
    if not cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR)):
        raise CliError(f'could not write {path}')
