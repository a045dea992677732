"""Run (or resume) a reproduction's stages, one at a time or two side by side (``--jobs 2``).

Resuming: a stage is skipped when ``stages/<name>.json`` (written atomically *after* the stage's outputs were
validated, recording the budget fields it depends on) exists, its outputs still validate, those fields are
unchanged and none of the stages it ``needs`` ran in this invocation. Otherwise it runs again: an interrupted
pretrain/train continues from its last checkpoint (``--resume``, bit-exact) unless an upstream stage changed, in
which case its run directory is discarded; collect overwrites; eval rewrites its folder. Interrupt at any point
(Ctrl-C, the end of a session) and re-run the same command.

Parallel runs: with ``jobs`` > 1 every command stage runs as a child process ``python -m rt2.cli ...`` with one
thread (``OMP_NUM_THREADS=1``; training also gets ``--num-threads 1``), its output in ``logs/<stage>.log``. Why
processes, not threads: torch's thread pool is process-wide, and two training runs in one process would share
(and fight over) it. A stage starts when everything it needs has finished; among ready stages the plan's order
decides. If a stage fails, the running ones are stopped (SIGTERM; training resumes from its last checkpoint)
and the error names the failed stage's log.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from rt2.eval import report
from rt2.eval.reproduce.budget import BUDGETS, Budget
from rt2.eval.reproduce.stages import Stage, estimate, plan

STATUS_EVERY_S = 300.0  # a progress line per running stage this often (long jobs show progress)


def cli_in_process(argv: list[str]) -> None:
    from rt2.cli import COMMANDS, main

    if argv[0] not in COMMANDS:
        raise RuntimeError(f"rt2 reproduce needs the `rt2 {argv[0]}` command, which this install does not provide")
    rc = main(argv)
    if rc:
        raise RuntimeError(f"`rt2 {' '.join(argv)}` failed with exit code {rc}")


def _single_thread(argv: list[str]) -> list[str]:
    return [*argv, "--num-threads", "1"] if argv[0] in ("train", "pretrain") and "--num-threads" not in argv else argv


class _Child:
    """A command stage running as ``python -m rt2.cli ...`` with its output in a log file."""

    def __init__(self, stage: Stage, argv: list[str], log_path: Path) -> None:
        self.stage, self.log_path, self.t0, self.argv = stage, log_path, time.perf_counter(), argv
        log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        with open(log_path, "ab") as log:
            log.write(f"$ rt2 {' '.join(argv)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "rt2.cli", *argv], stdout=log, stderr=subprocess.STDOUT, env=env
            )

    def last_line(self) -> str:
        """Training: ``step N / total`` from the run's metrics.jsonl (its log is quiet); else the log's last line."""
        if self.argv[0] in ("train", "pretrain") and "--out" in self.argv and "--steps" in self.argv:
            metrics = Path(self.argv[self.argv.index("--out") + 1]) / "metrics.jsonl"
            try:
                step = json.loads(metrics.read_text().splitlines()[-1])["step"]
                return f"step {step} / {self.argv[self.argv.index('--steps') + 1]}"
            except (OSError, IndexError, ValueError, KeyError):
                pass
        try:
            lines = [s for s in self.log_path.read_text(errors="replace").splitlines() if s.strip()]
        except OSError:
            return ""
        return lines[-1][-120:] if lines else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _finished(stage: Stage, out: Path, b: Budget) -> bool:
    """Would this stage be skipped if nothing upstream re-ran (marker, valid output, same budget fields)?"""
    marker = out / "stages" / f"{stage.name}.json"
    try:
        return stage.valid(out) and json.loads(marker.read_text()).get("budget") == stage.fingerprint(b)
    except (OSError, ValueError):
        return False


def select(stages: list[Stage], names: Sequence[str]) -> list[Stage]:
    """``names`` and everything they need, transitively, in plan order."""
    by = {s.name: s for s in stages}
    unknown = [n for n in names if n not in by]
    if unknown:
        raise ValueError(f"--stages {', '.join(unknown)}: no such stage; this budget has {', '.join(by)}")
    keep, todo = set(), list(names)
    while todo:
        n = todo.pop()
        if n not in keep:
            keep.add(n)
            todo.extend(by[n].needs)
    return [s for s in stages if s.name in keep]


def reproduce(
    out: str | Path,
    budget: str = "default",
    quiet: bool = False,
    log: Callable[[str], None] = print,
    overrides: dict | None = None,
    jobs: int = 1,
    only: Sequence[str] = (),
) -> dict:
    """Run (or resume) the pipeline; -> {stage: "ran" | "skipped"}. Stage markers go to ``out/stages/``.
    ``overrides``: Budget fields to change (e.g. ``{"suite_episodes": 100}``); the stages they feed re-run, the
    others are kept. ``jobs``: stages run side by side, each in a one-thread child process (module doc).
    ``only``: run just these stages and what they need (e.g. one regime while the pre-trained VLM is not ready)."""
    if budget not in BUDGETS:
        raise ValueError(f"unknown budget {budget!r}; valid: {', '.join(BUDGETS)}")
    if jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {jobs}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    b = dataclasses.replace(BUDGETS[budget], **(overrides or {}))
    b.pretrained_dirs()  # a bad --pretrained fails before any work
    stages = plan(b, quiet or jobs > 1)
    if only:
        stages = select(stages, only)
    cpu, wall = estimate(stages, jobs)
    log(f"[plan] budget {b.name}: {len(stages)} stages, ~{cpu / 60:.1f} CPU-h, ~{wall / 60:.1f} h with --jobs {jobs} "
        "(estimate from measured per-sample costs)")  # fmt: skip
    done = {st.name for st in stages if _finished(st, out, b)}
    if done:
        # A resumed run states what is left; a stage whose upstream re-runs is not "done" (estimate keeps order).
        left = [dataclasses.replace(st, cost_min=0.0) if st.name in done else st for st in stages]
        cpu, wall = estimate(left, jobs)
        log(f"[plan] {len(done)} stages already finished; left: ~{cpu / 60:.1f} CPU-h, ~{wall / 60:.1f} h (a "
            "stage interrupted mid-way counts in full)")  # fmt: skip
    status: dict[str, str] = {}
    pending = list(stages)
    running: dict[str, _Child] = {}
    last_status = time.perf_counter()

    def finish(stage: Stage, seconds: float) -> None:
        if not stage.valid(out):
            raise RuntimeError(f"stage {stage.name} finished but its output under {out} does not validate")
        report.atomic_write_json(
            out / "stages" / f"{stage.name}.json",
            {"stage": stage.name, "budget": stage.fingerprint(b), "seconds": seconds,
             "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S")},
        )  # fmt: skip
        log(f"[done] {stage.name} in {seconds:.0f} s")
        status[stage.name] = "ran"

    # SIGTERM (a session's end, `kill`) must stop the children too: the default action would end this process
    # without its `finally` and leave one-thread trainings running unsupervised. Ctrl-C already does.
    on_term = None
    if threading.current_thread() is threading.main_thread():
        on_term = signal.signal(signal.SIGTERM, _interrupt)
    try:
        while pending or running:
            progressed = False
            for stage in list(pending):
                if any(n not in status for n in stage.needs):
                    continue  # waits for an upstream stage (running, or later in the plan)
                if stage.heavy and stage.argv is not None and len(running) >= jobs:
                    continue
                pending.remove(stage)
                progressed = True
                marker = out / "stages" / f"{stage.name}.json"
                stale = any(status.get(n) == "ran" for n in stage.needs)
                if not stale and _finished(stage, out, b):
                    seconds = json.loads(marker.read_text()).get("seconds", 0)
                    log(f"[skip] {stage.name}: done ({seconds:.0f} s)")
                    status[stage.name] = "skipped"
                    continue
                marker.unlink(missing_ok=True)
                log(f"[run ] {stage.name}: {stage.describe}")
                t0 = time.perf_counter()
                if stage.argv is None:
                    stage.call(out, stale)
                    finish(stage, time.perf_counter() - t0)
                elif jobs == 1:
                    cli_in_process(stage.argv(out, stale))
                    finish(stage, time.perf_counter() - t0)
                else:
                    argv = _single_thread(stage.argv(out, stale))
                    running[stage.name] = _Child(stage, argv, out / "logs" / f"{stage.name}.log")
                break  # re-scan from the top: a finished stage may have unblocked an earlier one
            for name, child in list(running.items()):
                rc = child.proc.poll()
                if rc is None:
                    continue
                del running[name]
                progressed = True
                if rc != 0:
                    raise RuntimeError(f"stage {name} failed (exit code {rc}); see {child.log_path}")
                finish(child.stage, time.perf_counter() - child.t0)
            if running and not progressed:
                if time.perf_counter() - last_status > STATUS_EVERY_S:
                    last_status = time.perf_counter()
                    for name, child in running.items():
                        log(f"[....] {name} {(time.perf_counter() - child.t0) / 60:.0f} min: {child.last_line()}")
                time.sleep(1.0)
            elif not progressed and pending:
                blocked = ", ".join(f"{s.name} (needs {s.needs})" for s in pending)
                raise RuntimeError(f"no stage can start: {blocked}")
    finally:
        for child in running.values():
            child.stop()
            log(f"[stop] {child.stage.name}: interrupted; re-run the same command to resume it")
        if on_term is not None:
            signal.signal(signal.SIGTERM, on_term)
    return status
