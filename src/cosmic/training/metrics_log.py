"""Training metrics on disk: ``OUT/metrics.csv`` always, TensorBoard event files as well when the
``tensorboard`` package is installed (``pip install cosmic[train]``; not a hard dependency).

The CSV is long-format (``step,name,value``), so runs that add terms (a variable-rate run's
per-quality figures, validation rows) need no schema. A resumed run drops the rows written after
the checkpoint it resumes from, so each step appears once.
"""

from __future__ import annotations

import csv
from pathlib import Path

__all__ = ["MetricsLog", "read_metrics"]

FILE = "metrics.csv"


class MetricsLog:
    """``log(step, {name: value})``; a no-op on every rank but rank 0 (``enabled=False``)."""

    def __init__(self, out: str | Path, start_step: int = 0, enabled: bool = True, tensorboard: bool = True):
        self.enabled = enabled
        self.path = Path(out) / FILE
        self._tb = None
        if not enabled:
            return
        rows = read_metrics(self.path) if start_step and self.path.is_file() else []
        kept = [r for r in rows if r[0] <= start_step]
        with self.path.open("w", newline="") as f:  # a fresh run starts a fresh file
            w = csv.writer(f)
            w.writerow(["step", "name", "value"])
            w.writerows(kept)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard not installed: the CSV is the log, and the user is told
                import sys

                print(f"note: no TensorBoard log without the tensorboard package (make install, or pip install "
                      f"'cosmic[train]'); the metrics are in {self.path}", file=sys.stderr)
            else:
                self._tb = SummaryWriter(str(Path(out) / "tensorboard"), purge_step=start_step or None)

    def log(self, step: int, values: dict[str, float], prefix: str = "train") -> None:
        if not self.enabled:
            return
        items = [(f"{prefix}/{k}", float(v)) for k, v in values.items() if isinstance(v, (int, float))]
        with self.path.open("a", newline="") as f:
            csv.writer(f).writerows([step, k, repr(v)] for k, v in items)
        if self._tb is not None:
            for k, v in items:
                self._tb.add_scalar(k, v, step)
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def read_metrics(path: str | Path) -> list[tuple[int, str, float]]:
    """The rows of a ``metrics.csv``: (step, name, value)."""
    with Path(path).open(newline="") as f:
        reader = csv.reader(f)
        next(reader, None)
        return [(int(s), n, float(v)) for s, n, v in reader]
