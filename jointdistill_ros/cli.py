"""The full `jointdistill` command: the ROS-free subcommands of jointdistill_core.cli plus those
that run ROS: `bag play`, live `bag eval --model` and `demo`.

rclpy is imported inside the handlers, so `jointdistill train --help` stays fast.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from jointdistill_core import cli as core_cli
from jointdistill_core.bags.layout import BagError
from jointdistill_core.cli import CliError, subcommands
from jointdistill_core.cli.arguments import (
    device_name,
    positive_float,
    positive_int,
    size_argument,
    topic_name,
)

DEMO_DESCRIPTION = (
    'Makes a synthetic bag (or reuses a matching one), starts the perception node with the '
    'shipped student and the Fast DDS large-image profile, replays the bag live, evaluates and '
    'prints a summary table; the report lands in --out.')


def _play(args: argparse.Namespace) -> int:
    from jointdistill_ros.bag_player import run_player
    try:
        stats = run_player(args.bag, args.topics, args.rate, args.clock, args.loop, args.delay)
    except BagError as error:
        raise CliError(str(error)) from None
    total = sum(stats.published.values())
    print(f'published {total} messages in {stats.wall_s:.1f} s ({stats.loops} pass(es))')
    return 0


def live_eval(*args, **kwargs):
    """The `bag eval --model` hook: jointdistill_ros.bag_eval.run_live_eval, imported on use."""
    from jointdistill_ros.bag_eval import run_live_eval
    return run_live_eval(*args, **kwargs)


def _demo(args: argparse.Namespace) -> int:
    from jointdistill_ros.demo import run_demo
    try:
        run_demo(args.out, args.frames, args.size, args.rate, args.model, args.device)
    except BagError as error:
        raise CliError(str(error)) from None
    return 0


def add_play(verbs: argparse._SubParsersAction) -> None:
    """Add the `play` verb to `bag`."""
    play = verbs.add_parser('play', help='publish a bag in rclpy with original stamps and timing')
    play.add_argument('bag', type=Path)
    play.add_argument('--rate', type=positive_float, default=1.0, help='speed factor')
    play.add_argument('--loop', action='store_true', help='replay until Ctrl-C')
    play.add_argument('--topics', nargs='+', default=None, type=topic_name,
                      help='only these topics')
    play.add_argument('--clock', action='store_true', help='publish /clock from the bag time')
    play.add_argument('--delay', type=float, default=0.0,
                      help='seconds to wait before the first message (lets subscribers connect)')
    play.set_defaults(handler=_play)


def add_demo(commands: argparse._SubParsersAction) -> None:
    """Add the `demo` subcommand."""
    parser = commands.add_parser(
        'demo', help='end to end: synthetic bag -> perception node -> live evaluation report',
        description=DEMO_DESCRIPTION)
    parser.add_argument('--out', type=Path, default=Path('runs/demo'),
                        help='output directory: bag/ and the report (default runs/demo)')
    parser.add_argument('--frames', type=positive_int, default=150, help='frames in the bag')
    parser.add_argument('--size', type=size_argument(minimum=8), default=(480, 640),
                        help='HxW pixels (480x640)')
    parser.add_argument('--rate', type=positive_float, default=15.0, help='camera rate in Hz')
    parser.add_argument('--model', type=Path, default=None,
                        help='checkpoint for the node (default: the shipped student)')
    parser.add_argument('--device', default='auto', type=device_name,
                        help="the node's device: auto, cpu or cuda (default: auto)")
    parser.set_defaults(handler=_demo)


def build_parser() -> argparse.ArgumentParser:
    """The full `jointdistill` parser: the core's plus the subcommands that run ROS."""
    parser = core_cli.build_parser()
    commands = subcommands(parser)
    bag_verbs = subcommands(commands.choices['bag'])
    add_play(bag_verbs)
    bag_verbs.choices['eval'].set_defaults(live_eval=live_eval)
    add_demo(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `jointdistill`."""
    return core_cli.main(argv, build_parser())
