"""Metrics as JSON lines (one object per logged step) and, beside them, TensorBoard event files
(``events.out.tfevents.*`` in the same folder, written with tensorboardX): ``tensorboard --logdir runs/``
shows every run. A resumed run truncates the JSON lines after its checkpoint's step and opens its event file
with ``purge_step`` there, so TensorBoard drops the first part's events past it and each step appears once."""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Mapping


def _plain(v):
    v = float(v)
    return v if math.isfinite(v) else str(v)


class MetricsWriter:
    def __init__(self, path: str | Path, *, tensorboard: bool = True):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tensorboard = tensorboard
        self._tb = None
        self._purge_step: int | None = None

    def _events(self):
        if self._tb is None and self._tensorboard:
            from tensorboardX import SummaryWriter  # imported on the first record: ~1 s, only runs pay it

            # the file name holds the time in seconds: a suffix in nanoseconds keeps a run resumed within the same
            # second from overwriting the first part's file
            self._tb = SummaryWriter(str(self.path.parent), purge_step=self._purge_step, flush_secs=30,
                                     filename_suffix=f".{time.time_ns()}")
        return self._tb

    def truncate_after(self, step: int) -> None:
        """Drop records past ``step`` (a resumed run re-logs them exactly), in the JSON lines and, through
        ``purge_step``, in TensorBoard's view of the event files."""
        self._purge_step = int(step) + 1
        if not self.path.exists():
            return
        kept = [line for line in self.path.read_text().splitlines()
                if line.strip() and json.loads(line)["step"] <= step]
        self.path.write_text("".join(line + "\n" for line in kept))

    def write(self, step: int, split: str, metrics: Mapping[str, float]) -> None:
        record = {"step": int(step), "split": split, **{k: _plain(v) for k, v in metrics.items()}}
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        tb = self._events()
        if tb is not None:
            for k, v in metrics.items():
                tb.add_scalar(f"{split}/{k}", float(v), int(step))

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def read_metrics(path: str | Path) -> list[dict]:
    path = Path(path)
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
