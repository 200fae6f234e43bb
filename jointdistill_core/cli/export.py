"""`jointdistill export`: a checkpoint to ONNX or TorchScript, with a JSON sidecar."""
from __future__ import annotations

import argparse

from jointdistill_core.checkpoint import CheckpointError, load_checkpoint
from jointdistill_core.cli import CliError
from jointdistill_core.cli.arguments import size_argument
from jointdistill_core.export import FORMATS, ExportError, export_model


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `export` to the subcommands."""
    parser = subparsers.add_parser(
        'export', help='export a checkpoint to ONNX or TorchScript',
        description='Export a checkpoint (BatchNorm folded) to ONNX (opset 17) or TorchScript '
                    'at a fixed input size. Writes OUT and OUT.json (the sidecar that '
                    'Predictor.from_exported and the ROS node read).')
    parser.add_argument('--checkpoint', required=True,
                        help='checkpoint X, X.safetensors or X.json')
    parser.add_argument('--format', required=True, choices=FORMATS, dest='fmt')
    parser.add_argument('--size', type=size_argument(), default=None,
                        help="model input HxW in pixels, multiples of 32 (default: the "
                             "checkpoint's input_size)")
    parser.add_argument('--out', required=True, help='output file, e.g. student.onnx')
    parser.add_argument('--force', action='store_true', help='overwrite OUT and OUT.json')
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """The `export` command; CliError names a bad argument or file."""
    try:
        model, config = load_checkpoint(args.checkpoint)
    except CheckpointError as error:
        raise CliError(str(error)) from error
    size = args.size or tuple(config['input_size'])
    try:
        sidecar = export_model(model, args.fmt, size, args.out, force=args.force,
                               source=str(args.checkpoint))
    except ExportError as error:
        raise CliError(str(error)) from error
    print(f'wrote {args.out} ({args.fmt}, input 1x3x{size[0]}x{size[1]}) and {sidecar}')
    return 0
