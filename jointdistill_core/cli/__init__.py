"""The ROS-free subcommands of the `jointdistill` command (`python -m jointdistill_core`, e.g. on
a training box without ROS). Each subcommand lives in its own module of this package and exposes
`register(subparsers)`; adding a subcommand is one module plus one line below.

The full command, with the subcommands that run ROS (`bag play`, live `bag eval`, `demo`), is
`jointdistill_ros.cli`: it extends `build_parser()` and runs it through `main()`.
"""
from __future__ import annotations

import argparse
import importlib
import shlex
import sys

from jointdistill_core.openmp import passive_openmp_waiting

passive_openmp_waiting()  # before any subcommand imports torch

# Module names under jointdistill_core.cli, in the order `--help` lists them.
SUBCOMMAND_MODULES = [
    'data',
    'bag',
    'train',
    'evaluate',
    'export',
    'teacher',
    'distill',
    'study',
]


class CliError(Exception):
    """A user-facing error: printed as one line, exit code 2, no traceback."""


def build_parser() -> argparse.ArgumentParser:
    """The ROS-free `jointdistill` parser with every subcommand of SUBCOMMAND_MODULES."""
    parser = argparse.ArgumentParser(
        prog='jointdistill',
        description='One network for metric depth and semantic segmentation, trained by '
                    'adaptive multi-teacher distillation. Subcommands below; '
                    '`jointdistill SUBCOMMAND --help` for each.')
    subparsers = parser.add_subparsers(dest='command', metavar='SUBCOMMAND', required=True)
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(f'{__name__}.{name}').register(subparsers)
    return parser


def subcommands(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:
    """The action holding `parser`'s subcommands (or verbs), to add or look up sub-parsers."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    raise ValueError(f'parser {parser.prog!r} has no subcommands')


def main(argv: list[str] | None = None, parser: argparse.ArgumentParser | None = None) -> int:
    """Run one command line through `parser` (default: the ROS-free `build_parser()`)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = (parser or build_parser()).parse_args(argv)
    args.command_line = shlex.join(['jointdistill', *argv])  # recorded in provenance
    try:
        result = args.handler(args)
    except CliError as error:
        one_line = ' '.join(str(error).split())  # e.g. YAML parser messages span lines
        print(f'jointdistill {args.command}: error: {one_line}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f'jointdistill {args.command}: interrupted', file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == '__main__':
    sys.exit(main())
