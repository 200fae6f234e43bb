"""Model cards: a Markdown page per checkpoint saying what it is, where it comes from and how
well it does, written from the checkpoint's JSON (its provenance, jointdistill_core.provenance).

`jointdistill train` writes OUT/model_card.md for OUT/best at the end of a run;
`jointdistill distill` writes it with the held-back evaluation added.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from jointdistill_core.checkpoint import (
    atomic_write_bytes,
    checkpoint_paths,
    read_checkpoint_config,
)
from jointdistill_core.training.evaluate import format_table

_TEACHER_COLUMNS = ('name', 'kind', 'architecture', 'class_map', 'depth_kind', 'sha256')


def _teachers_table(teachers: dict) -> list[str]:
    rows = ['| task | ' + ' | '.join(_TEACHER_COLUMNS) + ' |',
            '|---' * (len(_TEACHER_COLUMNS) + 1) + '|']
    for task, record in teachers.items():
        cells = [f'`{record[key]}`' if key == 'sha256' else str(record.get(key) or '-')
                 for key in _TEACHER_COLUMNS]
        rows.append(f'| {task} | ' + ' | '.join(cells) + ' |')
    paths = [f'- {task}: `{record["path"]}`' for task, record in teachers.items()]
    return rows + ['', 'Read from:', *paths]


def _parameter_count(weights_path: Path) -> int:
    """Number of values in a safetensors file, from its JSON header (no tensor is read)."""
    with open(weights_path, 'rb') as handle:
        header_length = int.from_bytes(handle.read(8), 'little')
        header = json.loads(handle.read(header_length))
    count = 0
    for name, entry in header.items():
        if name == '__metadata__':
            continue
        size = 1
        for side in entry['shape']:
            size *= side
        count += size
    return count


def model_card(checkpoint: str | Path, title: str | None = None,
               evaluation: dict[str, dict[str, float]] | None = None,
               notes: list[str] | None = None) -> str:
    """The Markdown card of the checkpoint at `checkpoint` (X, X.safetensors or X.json).

    evaluation: {heading: metrics} tables to add (e.g. the held-back part of a recording);
    notes: extra paragraphs (how to evaluate, deploy ...)."""
    weights_path, config_path = checkpoint_paths(checkpoint)
    config = read_checkpoint_config(checkpoint)
    extra = config.get('extra', {})
    train_config = extra.get('train_config') or {}
    provenance = extra.get('provenance') or {}
    height, width = config['input_size']
    lines = [f'# {title or weights_path.with_suffix("").name}', '',
             f'`{weights_path}` (weights, SHA-256 `{config.get("weights_sha256", "?")}`) + '
             f'`{config_path}` (architecture, provenance, metrics). Load with '
             '`jointdistill_core.checkpoint.load_checkpoint` or `Predictor.from_checkpoint`.', '',
             f'- Architecture: `{json.dumps(config["model"])}` '
             f'({_parameter_count(weights_path) / 1e6:.2f} M parameters), input {height}x{width}.']
    method = train_config.get('method')
    if method:
        lines.append(f'- Method: `{method["name"]}` with `{json.dumps(method.get("params", {}))}`; '
                     f'{extra.get("step", "?")} of {train_config.get("steps", "?")} steps, '
                     f'seed {train_config.get("seed", "?")}.')
    data = provenance.get('data')
    if data:
        lines.append(f'- Data: `{data["spec"]}` (train split `{data["train_split"]}`), validation '
                     f'on `{data["val_spec"] or data["spec"]}` split `{data["val_split"]}`, '
                     f'images resized to {data["size"] or "their own size"}.')
    if provenance.get('depth_scale'):
        lines.append(f'- Metric depth scale: {provenance["depth_scale"]}')
    if not provenance:
        lines += ['', 'Provenance: not recorded (a checkpoint written before teachers, data and '
                      'command were recorded).']
    if provenance.get('teachers'):
        lines += ['', '## Teachers', '', *_teachers_table(provenance['teachers'])]
    elif provenance:
        lines += ['', '## Teachers', '', 'None: trained from labels only.']
    if provenance.get('command'):
        lines += ['', '## Command', '', '```bash', provenance['command'], '```']
    if any(isinstance(v, float) and math.isfinite(v) for v in extra.get('metrics', {}).values()):
        lines += ['', f'## Validation metrics (step {extra.get("step", "?")})', '',
                  format_table(extra['metrics'])]
    for heading, metrics in (evaluation or {}).items():
        lines += ['', f'## {heading}', '', format_table(metrics)]
    for note in notes or []:
        lines += ['', note]
    return '\n'.join(lines) + '\n'


def write_model_card(checkpoint: str | Path, out: str | Path, **kwargs) -> Path:
    """Write `model_card(checkpoint, **kwargs)` to `out` (atomically); returns `out`."""
    out = Path(out)
    atomic_write_bytes(out, model_card(checkpoint, **kwargs).encode())
    return out
