"""Training logs: `metrics.csv` (one row per logged step, one column per quantity) and
TensorBoard event files under `tensorboard/`.

Columns appear as quantities first appear (validation metrics at the first validation), so
the CSV is rewritten (atomically) whenever a row is added; it stays small (one row per
`log_every` steps). On resume, rows after the resumed step are dropped and TensorBoard
purges its events after that step, so a resumed run's logs read like a straight run's.
"""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path

CSV_NAME = 'metrics.csv'


class RunLogger:
    """metrics.csv, a loss plot and TensorBoard events of one run, appended step by step."""
    def __init__(self, out_dir: Path, start_step: int = 0, tensorboard: bool = True):
        from jointdistill_core.checkpoint import atomic_write_bytes
        self._write = atomic_write_bytes
        self.csv_path = Path(out_dir) / CSV_NAME
        self.rows: list[dict[str, float]] = []
        self.columns: list[str] = ['step']
        if start_step > 0 and self.csv_path.is_file():
            self._load_rows(max_step=start_step)
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(str(Path(out_dir) / 'tensorboard'),
                                        purge_step=start_step + 1 if start_step else None)

    def _load_rows(self, max_step: int) -> None:
        with self.csv_path.open(newline='') as handle:
            for row in csv.DictReader(handle):
                values = {key: float(value) for key, value in row.items()
                          if value not in ('', None)}
                if values.get('step', math.inf) <= max_step:
                    self._add_columns(values)
                    self.rows.append(values)

    def _add_columns(self, values: dict[str, float]) -> None:
        self.columns.extend(key for key in values if key not in self.columns)

    def log(self, step: int, values: dict[str, float]) -> None:
        """Record `values` for `step` (1-based count of finished optimizer steps)."""
        values = {'step': float(step), **{key: float(value) for key, value in values.items()}}
        if self.rows and self.rows[-1]['step'] == step:
            self.rows[-1].update(values)
        else:
            self.rows.append(values)
        self._add_columns(values)
        self._flush_csv()
        if self.writer is not None:
            for key, value in values.items():
                if key != 'step':
                    self.writer.add_scalar(key, value, step)
            self.writer.flush()

    def _flush_csv(self) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns, restval='', lineterminator='\n')
        writer.writeheader()
        for row in self.rows:
            writer.writerow({key: _format(value) for key, value in row.items()})
        self._write(self.csv_path, buffer.getvalue().encode())

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _format(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 2 ** 53 else repr(value)
