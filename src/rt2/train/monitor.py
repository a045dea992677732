"""Run monitoring: TensorBoard scalars + ``metrics.jsonl`` (main process) and a rich progress bar with ETA.

Every ``log_every`` steps :class:`RunLogger` averages the window's per-step records, averages per-process
metrics over the processes that reported them (per-source losses differ per process; gathered with
``accelerate.utils.gather_object``), and writes ``train/<key>`` scalars and one JSON line::

    {"step": 10, "loss": 2.31, "loss/robot": 2.0, "loss/web": 2.6, "action_token_acc": 0.4, "lr": 0.001,
     "grad_norm": 1.2, "samples_per_s": 38.5, "nonfinite_steps": 0}

On start the file is cut back to the run's starting step (:func:`truncate_metrics`), so after ``--resume``
every logged step appears exactly once.
"""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path
from typing import Any

from rt2.data.progress import eta_progress


class RunLogger:
    """TensorBoard scalars + metrics.jsonl on the main process; metrics averaged over all processes."""

    def __init__(self, trainer: Any, enabled: bool) -> None:
        self.t = trainer
        self.enabled = enabled
        self.writer = None
        self.jsonl = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(trainer.run_dir / "tb"))
            path = trainer.run_dir / "metrics.jsonl"
            truncate_metrics(path, trainer.step)
            self.jsonl = open(path, "a")  # noqa: SIM115

    def write(self, window: list[dict]) -> None:
        from accelerate.utils import gather_object

        local: dict[str, float] = {}
        for k in {k for w in window for k in w}:
            vals = [w[k] for w in window if k in w and math.isfinite(w[k])]
            if vals:
                local[k] = sum(vals) / len(vals)
        # Global keys are already identical on every process; per-process metrics (per-source losses) are
        # averaged over the processes that saw that source.
        every = gather_object([local]) if self.t.acc.num_processes > 1 else [local]
        merged: dict[str, float] = {}
        for k in sorted({k for d in every for k in d}):
            vals = [d[k] for d in every if k in d]
            merged[k] = sum(vals) / len(vals)
        for k in ("loss", "grad_norm", "samples_per_s"):  # these are global already (same on all processes)
            if k in local:
                merged[k] = local[k]
        if not self.enabled:
            return
        merged["lr"] = self.t.scheduler.get_last_lr()[0]
        merged["nonfinite_steps"] = float(self.t.nonfinite)
        for k, v in merged.items():
            self.writer.add_scalar(f"train/{k}", v, self.t.step)
        self.jsonl.write(json.dumps({"step": self.t.step, **merged}) + "\n")
        self.jsonl.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.jsonl is not None:
            self.jsonl.close()


def truncate_metrics(path: Path, step: int) -> int:
    """Keep only the rows of ``path`` up to ``step`` (the checkpoint a run resumes from; 0 for a fresh start).

    Why: a run killed after its last checkpoint has already logged the steps it will run again after
    ``--resume``; without this they appear twice (issue 17: 154 rows for 150 steps). A torn last line from the
    kill is dropped too. Atomic (temp file, then rename). Returns how many rows were dropped.
    """
    if not path.is_file():
        return 0
    kept, dropped = [], 0
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
            keep = isinstance(row, dict) and int(row["step"]) <= step
        except (ValueError, KeyError, TypeError):
            keep = False
        if keep:
            kept.append(line)
        else:
            dropped += 1
    if dropped:
        tmp = path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(line + "\n" for line in kept))
        tmp.replace(path)
    return dropped


@contextlib.contextmanager
def progress_bar(enabled: bool, total: int, start: int):
    if not enabled:
        yield lambda step, loss: None
        return
    with eta_progress("[bold]train", note="loss {task.fields[loss]}", eta_label="ETA") as prog:
        task = prog.add_task("train", total=total, completed=start, loss="-")

        def update(step: int, loss: float) -> None:
            prog.update(task, completed=step, loss=f"{loss:.4f}")

        yield update
