"""`jointdistill evaluate`: metrics of a checkpoint on a dataset split, as JSON, Markdown and
a PNG of sample predictions.

Two protocols:
- `network` (default): the network runs directly on batches at the dataset's resolution
  (the code training validation uses, jointdistill_core.training.evaluate), so the numbers
  equal the validation numbers of training and the literature's protocol.
- `predictor`: every frame at its own resolution through the Predictor with its K, as the
  ROS node sees it (input size following the camera, canonical depth converted with K);
  what docs/real_world.md reports on real frames. Adds the constant-depth reference.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from jointdistill_core.cli import CliError
from jointdistill_core.cli.arguments import device_name, positive_float

SAMPLE_COUNT = 4
PROTOCOLS = ('network', 'predictor')


def _size_option(text: str | None, option: str, multiple: int = 1) -> tuple[int, int] | None:
    """(H, W) pixels of an HxW option, or None when it was not given; CliError names it."""
    from jointdistill_core.geometry import parse_size
    try:
        return None if text is None else parse_size(text, multiple=multiple)
    except ValueError as error:
        raise CliError(f'{option}: {error}') from None


def register(subparsers) -> None:
    """Add `evaluate` to the subcommands."""
    parser = subparsers.add_parser(
        'evaluate', help='metrics of a checkpoint on a dataset split (JSON, Markdown, PNG)',
        description='Evaluate a checkpoint (X.safetensors + X.json) on a dataset split. Prints '
                    'a table and writes OUT/metrics.json, OUT/metrics.md and OUT/samples.png '
                    '(image | ground truth | prediction).')
    parser.add_argument('--checkpoint', required=True, help='X, X.safetensors or X.json')
    parser.add_argument('--data', required=True,
                        help='synthetic, synthetic:DIR, nyuv2:DIR, cityscapes:DIR, '
                             'cityscapes19:DIR, folder:DIR or camvid:DIR')
    parser.add_argument('--split', default='test', help='dataset split (default: test)')
    parser.add_argument('--num', type=int, help='evaluate the first NUM frames only')
    parser.add_argument('--protocol', default='network', choices=PROTOCOLS,
                        help='network: batches at the dataset\'s (or --size) resolution, the '
                             'literature\'s protocol; predictor: each frame at its own '
                             'resolution through the Predictor with its K, as the ROS node '
                             '(default: network)')
    parser.add_argument('--size', help='network protocol: resize frames to HxW pixels '
                                       '(multiples of 32); default: the dataset\'s own size')
    parser.add_argument('--input-size',
                        help='predictor protocol: model input HxW pixels for images of that '
                             'aspect, the pixel budget for others (default: the checkpoint\'s)')
    parser.add_argument('--camera-height', type=positive_float, default=None,
                        help='predictor protocol: metres of the camera above the ground; each '
                             'frame\'s depth is rescaled so the ground the network segments lies '
                             'at that height (docs/real_world.md)')
    parser.add_argument('--batch-size', type=int, default=8, help='frames per forward pass')
    parser.add_argument('--device', default='auto', type=device_name,
                        help='auto, cpu, cuda or cuda:N (default: auto); no CPU fallback')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--force', action='store_true',
                        help='replace the metrics, table and samples of an earlier evaluation '
                             'in OUT')
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """The `evaluate` command; CliError names a bad argument or file."""
    import torch

    from jointdistill_core.checkpoint import load_checkpoint
    from jointdistill_core.data.registry import build_dataset
    from jointdistill_core.device import DeviceUnavailableError, resolve_device
    from jointdistill_core.training.evaluate import format_table

    if args.num is not None and args.num < 1:
        raise CliError(f'--num must be >= 1, got {args.num}')
    if args.batch_size < 1:
        raise CliError(f'--batch-size must be >= 1, got {args.batch_size}')
    if args.protocol == 'predictor' and args.size:
        raise CliError('--size resizes frames for the network protocol; the predictor protocol '
                       'keeps each frame\'s resolution (set the model input with --input-size)')
    for option, value in (('--input-size', args.input_size),
                          ('--camera-height', args.camera_height)):
        if args.protocol == 'network' and value:
            raise CliError(f'{option} belongs to the predictor protocol (--protocol predictor)')
    if (Path(args.out) / 'metrics.json').exists() and not args.force:
        raise CliError(f'{args.out} already holds an evaluation (metrics.json); pass --force '
                       'to replace it')
    size = _size_option(args.size, '--size', multiple=32)
    input_size = _size_option(args.input_size, '--input-size')
    try:
        device = resolve_device(args.device)
    except DeviceUnavailableError as error:
        raise CliError(f'--device: {error}') from None
    try:
        model, meta = load_checkpoint(args.checkpoint, device)
    except (ValueError, OSError) as error:
        raise CliError(str(error)) from None
    num_classes = getattr(model, 'num_classes', None)  # None: a depth-only network
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
    with torch.inference_mode():
        if args.protocol == 'predictor':
            metrics = _predictor_metrics(args.checkpoint, input_size, args.device, dataset,
                                         data_classes, args.camera_height)
        else:
            metrics = _network_metrics(model, dataset, data_classes, device, args.batch_size)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {'checkpoint': str(args.checkpoint), 'model': meta['model'], 'data': args.data,
              'split': args.split, 'protocol': args.protocol, 'frames': len(dataset),
              'camera_height': args.camera_height,
              'num_classes': data_classes, 'metrics': metrics}
    (out / 'metrics.json').write_text(json.dumps(report, indent=2) + '\n')
    table = format_table(metrics)
    (out / 'metrics.md').write_text(
        f'# Evaluation of `{args.checkpoint}`\n\nData: `{args.data}`, split `{args.split}`, '
        f'{len(dataset)} frames, {data_classes} classes, {args.protocol} protocol. Fractions as '
        f'percent; abs_err and rmse in metres; abs_rel a ratio. Pooled over all valid pixels '
        f'of the split.\n\n{table}\n')
    write_samples(model, dataset, data_classes, device, out / 'samples.png')
    print(table)
    print(f'wrote {out / "metrics.json"}, {out / "metrics.md"}, {out / "samples.png"}')
    return 0


def _network_metrics(model, dataset, num_classes: int, device, batch_size: int) -> dict:
    from jointdistill_core.training.evaluate import evaluate_model
    tasks = [name for name, present in (('seg_logits',
                                         getattr(model, 'num_classes', None) is not None),
                                        ('depth', getattr(model, 'max_depth', None) is not None))
             if present]
    try:
        return evaluate_model(model, dataset, num_classes, device, batch_size, tasks,
                              progress=True)
    except RuntimeError as error:
        if 'stack expects each tensor to be equal size' not in str(error):
            raise
        raise CliError('the frames differ in size, so they cannot be batched: give --size HxW, '
                       'or use --protocol predictor') from None


def _predictor_metrics(checkpoint: str, input_size, device: str, dataset,
                       num_classes: int, camera_height: float | None) -> dict:
    from jointdistill_core.inference import Predictor
    from jointdistill_core.training.evaluate import evaluate_predictor
    try:
        # Eager PyTorch: frames of many sizes would each need their own onnxruntime session.
        predictor = Predictor.from_path(checkpoint, device=device, backend='torch',
                                        input_size=input_size, strict_device=True)
    except ValueError as error:
        raise CliError(str(error)) from None
    if camera_height is not None and (predictor.num_classes is None
                                      or predictor.max_depth is None):
        raise CliError(f'--camera-height needs a network that predicts depth and segmentation '
                       f'(the ground is found in its labels); {checkpoint} does not')
    return evaluate_predictor(predictor, dataset, num_classes, progress=True,
                              camera_height=camera_height)


def write_samples(model, dataset, num_classes: int, device, path: Path,
                  count: int = SAMPLE_COUNT) -> None:
    """A PNG grid, one row per frame: image | gt labels | predicted labels | gt depth |
    predicted depth (columns a network does not predict are left out, and ground-truth
    columns of frames without that annotation). Depth of a row shares one colour scale
    (metres, near = red). Rows of other widths are scaled to the first row's width."""
    import cv2

    from jointdistill_core.training.evaluate import predict_batch, sample_rgb8
    from jointdistill_core.visualize import colorize_depth, colorize_labels

    rows = []
    indices = np.linspace(0, len(dataset) - 1, min(count, len(dataset))).round().astype(int)
    for index in indices:
        sample = dataset[int(index)]
        height, width = sample['image'].shape[-2:]
        padded = (-height % 32, -width % 32)  # the network needs multiples of 32
        image = torch_pad(sample['image'], padded)[None].to(device)
        labels, depth = predict_batch(model, image, sample['K'][None].to(device))
        tiles = [sample_rgb8(sample)]
        if labels is not None:
            truth = sample['labels'].numpy()
            if (truth != 255).any():
                tiles.append(colorize_labels(truth, num_classes))
            tiles.append(colorize_labels(labels[0, :height, :width].cpu().numpy(), num_classes))
        if depth is not None:
            gt_depth = sample['depth'][0].numpy()
            valid = gt_depth[gt_depth > 0]
            predicted = depth[0, :height, :width].float().cpu().numpy()
            scale = float(np.percentile(valid if valid.size else predicted, 99))
            if valid.size:
                tiles.append(colorize_depth(visible_sparse_depth(gt_depth), scale))
            tiles.append(colorize_depth(predicted, scale))
        row = np.concatenate(tiles, axis=1)
        if rows and row.shape[1] != rows[0].shape[1]:
            new_height = round(row.shape[0] * rows[0].shape[1] / row.shape[1])
            row = cv2.resize(row, (rows[0].shape[1], new_height), interpolation=cv2.INTER_AREA)
        rows.append(row)
    grid = np.concatenate(rows, axis=0)
    if not cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR)):
        raise CliError(f'could not write {path}')


def visible_sparse_depth(depth: np.ndarray, density: float = 0.3) -> np.ndarray:
    """Sparse ground truth (LiDAR: a few % of pixels) grown to 5x5 patches for display only;
    dense depth unchanged. depth (H, W) metres, 0 = none."""
    import cv2
    if np.mean(depth > 0) >= density:
        return depth
    kernel = np.ones((5, 5), np.uint8)
    grown = cv2.dilate(np.where(depth > 0, -depth, -np.inf).astype(np.float32),
                       kernel)  # max of -depth: the nearest point wins
    # cv2 fills windows without a point with -FLT_MAX, not -inf: mask them explicitly.
    covered = cv2.dilate((depth > 0).astype(np.uint8), kernel) > 0
    return np.where(covered, -grown, 0).astype(np.float32)


def torch_pad(image, padding: tuple[int, int]):
    """(3, H, W) padded at the bottom and right by (rows, columns) with edge values."""
    import torch.nn.functional as F
    rows, columns = padding
    if not rows and not columns:
        return image
    return F.pad(image[None], (0, columns, 0, rows), mode='replicate')[0]
