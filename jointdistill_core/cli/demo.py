"""`jointdistill demo`: the main job behind `make demo` (see docs/demo.md).

Makes a synthetic bag (or reuses a matching one), starts the perception node with the shipped
student and the Fast DDS large-image profile, replays the bag live, evaluates and prints a
summary table; the report lands in --out. Needs rclpy: imported inside the handler.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from jointdistill_core.bags.layout import BagError
from jointdistill_core.cli import CliError
from jointdistill_core.cli.bag import parse_size, positive_float, positive_int


def _demo(args: argparse.Namespace) -> int:
    from jointdistill_ros.demo import run_demo
    try:
        run_demo(args.out, args.frames, args.size, args.rate, args.model, args.device)
    except BagError as error:
        raise CliError(str(error)) from None
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        'demo', help='end to end: synthetic bag -> perception node -> live evaluation report',
        description=__doc__.split('\n\n')[1].replace('\n', ' '))
    parser.add_argument('--out', type=Path, default=Path('runs/demo'),
                        help='output directory: bag/ and the report (default runs/demo)')
    parser.add_argument('--frames', type=positive_int, default=150, help='frames in the bag')
    parser.add_argument('--size', type=parse_size, default=(480, 640), help='HxW pixels (480x640)')
    parser.add_argument('--rate', type=positive_float, default=15.0, help='camera rate in Hz')
    parser.add_argument('--model', type=Path, default=None,
                        help='checkpoint for the node (default: the shipped student)')
    parser.add_argument('--device', default='cpu', help="the node's device: cpu, cuda or auto")
    parser.set_defaults(handler=_demo)
