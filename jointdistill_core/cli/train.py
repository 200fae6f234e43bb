"""`jointdistill train`: train a teacher or the student from a YAML config (docs/training.md).

Under `torchrun --nproc_per_node=P -m jointdistill_core train ...` it trains data-parallel.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from jointdistill_core.cli import CliError


def register(subparsers) -> None:
    """Add `train` to the subcommands."""
    parser = subparsers.add_parser(
        'train', help='train a teacher or the student (a distillation method) from a config',
        description='Train from a YAML config (config/train/*.yaml). Writes last/best '
                    'checkpoints, resume.safetensors, metrics.csv and TensorBoard logs to the '
                    'output folder. Run under torchrun for data-parallel training.')
    parser.add_argument('--config', required=True, help='training config YAML file')
    parser.add_argument('--set', dest='overrides', action='append', default=[],
                        metavar='KEY=VALUE',
                        help='override a config key, e.g. --set optim.lr=1e-3 (repeatable)')
    parser.add_argument('--out', help='output folder (overrides the config key `out`)')
    parser.add_argument('--resume', action='store_true',
                        help='continue exactly from OUT/resume.safetensors')
    parser.add_argument('--stop-at', type=int, metavar='STEP',
                        help='end this run after global step STEP with a resumable state '
                             '(e.g. to fit a job time limit); continue later with --resume')
    parser.add_argument('--force', action='store_true',
                        help='start over in an output folder that holds a previous run '
                             '(its checkpoints and logs are replaced)')
    parser.add_argument('--no-progress', action='store_true', help='hide the progress bar')
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """The `train` command; CliError names a bad config key, file or run state."""
    from jointdistill_core.config import ConfigError
    from jointdistill_core.training import TrainingError, load_train_config, train
    overrides = list(args.overrides) + ([f'out={args.out}'] if args.out else [])
    try:
        config = load_train_config(args.config, overrides)
        refuse_to_overwrite_a_run(Path(config.out), args)
        result = train(config, resume=args.resume, progress=not args.no_progress,
                       stop_at=args.stop_at, command=args.command_line)
    except (ConfigError, TrainingError) as error:
        raise CliError(str(error)) from None
    if result.last_metrics:
        print(json.dumps({'out': str(result.out_dir), 'steps': result.steps,
                          'wall_time_s': round(result.wall_time_s, 1),
                          'val': result.last_metrics}, indent=2))
    return 0


def refuse_to_overwrite_a_run(out: Path, args: argparse.Namespace) -> None:
    """A folder with a resume state holds a run: continue it (--resume) or replace it (--force)."""
    from jointdistill_core.training.trainer import RESUME_NAME
    if (out / RESUME_NAME).is_file() and not (args.resume or args.force):
        raise CliError(f'{out} holds a previous run ({RESUME_NAME}); pass --resume to continue '
                       'it or --force to start over and replace it')
