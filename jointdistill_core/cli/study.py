"""`jointdistill study`: train the teachers once, then every variant x seed under one budget,
test them all and write the results page (docs/study.md)."""
from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from jointdistill_core.cli import CliError


def register(subparsers) -> None:
    """Add `study` to the subcommands."""
    parser = subparsers.add_parser(
        'study', help='compare every distillation method over seeds and write a results page',
        description='Train the teachers once, then every variant of the study config for '
                    'every seed under the same budget; test all of them and write '
                    'RESULTS_DIR/RESULTS_NAME.{md,json} plus figures. Finished runs (done.json) '
                    'are skipped; interrupted runs resume from their checkpoint.')
    parser.add_argument('--config', required=True, help='study config YAML (config/study/*.yaml)')
    parser.add_argument('--data', metavar='SPEC',
                        help='dataset spec replacing data.spec: synthetic, synthetic:DIR, '
                             'nyuv2:DIR, cityscapes:DIR')
    parser.add_argument('--real-data', metavar='DIR',
                        help='folder holding the real data folders the config names in '
                             '`paths` (DIR/NAME for every paths.NAME not set otherwise), e.g. '
                             'the real development frames')
    parser.add_argument('--out', help='folder of all runs (replaces the config key `out`)')
    parser.add_argument('--results-dir', help='folder of the results page and figures '
                                              '(replaces `results_dir`, default docs)')
    parser.add_argument('--seeds', type=int, nargs='+', metavar='SEED',
                        help='seeds to run (replaces `seeds`)')
    parser.add_argument('--only', nargs='+', metavar='VARIANT',
                        help='run only these variants (the page still lists every finished one)')
    parser.add_argument('--jobs', type=int, metavar='N',
                        help='runs trained at the same time, one process and one torch thread '
                             'each (replaces `jobs`; on a CPU, one per core)')
    parser.add_argument('--set', dest='overrides', action='append', default=[],
                        metavar='KEY=VALUE',
                        help='override a study config key, e.g. --set student.steps=50 '
                             '(repeatable)')
    parser.add_argument('--no-progress', action='store_true', help='hide the progress bars')
    parser.set_defaults(handler=run)


def _overrides(args: argparse.Namespace) -> list[str]:
    overrides = list(args.overrides)
    if args.data:
        overrides.append(f'data.spec={args.data}')
    if args.out:
        overrides.append(f'out={args.out}')
    if args.results_dir:
        overrides.append(f'results_dir={args.results_dir}')
    if args.seeds:
        overrides.append(f'seeds=[{", ".join(str(seed) for seed in args.seeds)}]')
    if args.jobs is not None:
        overrides.append(f'jobs={args.jobs}')
    return overrides


def _command_line(args: argparse.Namespace) -> str:
    """The study command as given (for the results page)."""
    parts = ['jointdistill', 'study', '--config', args.config]
    for flag, value in (('--data', args.data), ('--real-data', args.real_data),
                        ('--out', args.out),
                        ('--results-dir', args.results_dir), ('--jobs', args.jobs)):
        if value is not None:
            parts += [flag, str(value)]
    for flag, values in (('--seeds', args.seeds), ('--only', args.only)):
        if values:
            parts += [flag, *map(str, values)]
    for override in args.overrides:
        parts += ['--set', override]
    return ' '.join(shlex.quote(part) for part in parts)


def run(args: argparse.Namespace) -> int:
    """The `study` command; CliError names a bad argument or file."""
    from jointdistill_core.config import ConfigError
    from jointdistill_core.study import (
        StudyError,
        collect_finished,
        load_study_config,
        run_study,
        select_variants,
    )
    from jointdistill_core.study.page import write_results
    from jointdistill_core.study.report import build_report, record_invocation
    progress = not args.no_progress
    command = _command_line(args)
    try:
        config = load_study_config(args.config, _overrides(args), real_data=args.real_data)
        variants = select_variants(config, args.only)
        outcome = run_study(config, variants, list(config.seeds), progress=progress)
        record_invocation(config, outcome, command)
        tuning = collect_finished(config, config.tuning.seeds, 'tuning') if config.tuning else {}
        report = build_report(config, outcome['teachers'], collect_finished(config, config.seeds),
                              tuning, list(config.seeds), command, Path(config.results_dir))
        json_path, md_path = write_results(report, config)
    except (ConfigError, StudyError, ValueError) as error:
        raise CliError(str(error)) from None
    print(f'results: {md_path} and {json_path}')
    return 0
