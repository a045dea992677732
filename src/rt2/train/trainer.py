"""The optimization loop, on Hugging Face accelerate: one code path for 1 CPU process, DDP, multi-GPU or FSDP.

The trainer knows two things about the model and the data:

* ``model`` is an ``nn.Module`` with ``loss(batch) -> (loss: float[] tensor, metrics: dict[str, float])``
  (``rt2.models.VLA`` is one). Per-source metrics use keys ``"loss/<source>"``; ``"action_accuracy"`` is
  logged as is.
* ``batches`` is a :class:`BatchSource`: ``next_batch()`` returns THIS process's micro-batch, and
  ``state_dict()`` / ``load_state_dict()`` capture the data position (identical on every process).

Per optimizer step every process runs ``grad_accum`` micro-batches of ``cfg.micro_batch(world)`` examples;
gradients are averaged over processes by DDP (``accelerator.backward``), so the global batch, and the loss for
equal-length targets, match single-process training. A step whose loss or gradient norm is non-finite on any
process is skipped on all of them (no parameter update, counted); more than ``max_nonfinite`` such steps abort
with :class:`NonFiniteLossError`. Checkpoints: :mod:`rt2.train.checkpoint`; ``resume=True`` continues
bit-exactly (model, optimizer, scheduler, step, RNG of every process, data position).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, Protocol

import torch
from torch import nn

from rt2.train.checkpoint import CheckpointError, CheckpointManager
from rt2.train.config import TrainConfig, save_config
from rt2.train.monitor import RunLogger, progress_bar
from rt2.train.optim import build_optimizer, build_scheduler, configure_trainable, resolve_precision

# Config fields that may differ between a run and its resumption (they do not change the optimization).
RESUMABLE_CHANGES = frozenset({"steps", "log_every", "ckpt_every", "keep_last", "max_nonfinite", "num_threads"})


def exit_launched_process(code: int) -> NoReturn:
    """Leave a process of a multi-process launch without interpreter teardown.

    The trap: with torch 2.13 + gloo, one rank sometimes aborts (SIGABRT, "terminate called without an active
    exception", no Python frame on the stack) *after* its script has returned, even though :meth:`Trainer.close`
    passed the final barrier and destroyed the process group. The launcher then SIGTERMs the other ranks and
    reports the whole run as failed although every checkpoint and the export are complete. Measured on this 2-core
    machine with two shell loops side by side, each repeating ``accelerate launch --multi_gpu --num_processes 2
    tests/test_train_multiprocess.py DIR``: 2 aborts in 76 launches before, 0 in 142 with this exit (Dec 2026);
    it failed CI once. Call this only after ``close()``: every file is already written atomically, so skipping
    the teardown (atexit handlers, C++ static destructors) loses nothing; stdio is flushed here.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


class NonFiniteLossError(RuntimeError):
    """Too many steps had a non-finite loss or gradient norm."""


class BatchSource(Protocol):
    def next_batch(self) -> Any: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


class _LossModule(nn.Module):
    """``forward(batch) = model.loss(batch)``, so DDP/FSDP wrappers see a forward call (their sync hooks)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: Any):
        return self.model.loss(batch)


@dataclass
class TrainResult:
    losses: list[float] = field(default_factory=list)  # global mean loss of every step run in this call
    start_step: int = 0
    final_step: int = 0
    nonfinite_steps: int = 0
    checkpoint: Path | None = None
    export_dir: Path | None = None
    samples_per_s: float = 0.0


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)) and batch and isinstance(batch[0], torch.Tensor):
        return type(batch)(_to_device(v, device) for v in batch)
    if hasattr(batch, "to") and callable(batch.to):
        return batch.to(device)
    return batch


class Trainer:
    """Train ``model`` on ``batches`` under ``config``, writing checkpoints and logs into ``run_dir``.

    ``batches``: a :class:`BatchSource`, or a factory ``(micro_batch, rank, world) -> BatchSource`` called once
    the process layout is known (e.g. ``lambda m, r, w: ExampleBatches(stream, collate, m, r, w)``).

    ``accelerator``: pass one to control the launch (FSDP plugins, GPUs); the default is ``Accelerator(cpu=True)``
    on machines without CUDA. bf16 autocast comes from ``config.precision`` (not from accelerate). ``export``: called on the main process
    with a temp directory to write the final ``Policy.from_pretrained``-loadable export (default: the model's
    own ``save_pretrained`` if it has one); the directory is renamed to ``run_dir/final`` afterwards.
    """

    def __init__(
        self,
        model: nn.Module,
        config: TrainConfig,
        batches: BatchSource | Callable[[int, int, int], BatchSource],
        run_dir: str | Path,
        *,
        accelerator=None,
        progress: bool = True,
        export: Callable[[Path], None] | None = None,
        data_info: dict | None = None,
    ) -> None:
        from accelerate import Accelerator

        self.cfg = config
        self.precision = resolve_precision(config.precision)
        if accelerator is None:
            # cpu=True on a machine without CUDA makes a torchrun-style launch (``accelerate launch --multi_gpu
            # --num_processes N``) run DDP over gloo; ``accelerate launch --cpu`` alone spawns N only via mpirun.
            # Precision is NOT given to accelerate (its state is a per-process singleton that cannot change); the
            # trainer applies bf16 autocast itself, so runs of both precisions can share a process.
            accelerator = Accelerator(cpu=not torch.cuda.is_available())
        self.acc = accelerator
        self.model = model
        self.run_dir = Path(run_dir)
        self.progress = progress and self.acc.is_main_process
        self.data_info = dict(data_info or {})
        self.micro_batch = config.micro_batch(self.acc.num_processes)
        if not hasattr(batches, "next_batch") and callable(batches):
            batches = batches(self.micro_batch, self.acc.process_index, self.acc.num_processes)
        self.batches = batches
        if export is None and hasattr(model, "save_pretrained"):
            export = model.save_pretrained
        self.export = export

        configure_trainable(model, config)
        self.optimizer = build_optimizer(model, config)
        self.scheduler = build_scheduler(self.optimizer, config)
        self.wrapped, self.optimizer = self.acc.prepare(_LossModule(model), self.optimizer)
        self.ckpt = CheckpointManager(
            self.run_dir / "checkpoints",
            keep_last=config.keep_last,
            is_main=self.acc.is_main_process,
            barrier=self.acc.wait_for_everyone,
        )
        self.step = 0
        self.nonfinite = 0

    # ------------------------------------------------------------------------------------------- state
    def _full_state(self) -> tuple[dict[str, torch.Tensor], dict]:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

        opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
        msd, osd = get_state_dict(self.wrapped, self.optimizer, options=opts)
        msd = {k.removeprefix("model."): v for k, v in msd.items()}
        return msd, osd

    def save_checkpoint(self) -> Path:
        msd, osd = self._full_state()
        tmp = self.ckpt.begin(self.step)
        self.ckpt.write_rng(tmp, self.acc.process_index)
        if self.acc.is_main_process:
            state = {
                "step": self.step,
                "optimizer": osd,
                "scheduler": self.scheduler.state_dict(),
                "data": self.batches.state_dict(),
                "trainer": {"nonfinite": self.nonfinite, "world_size": self.acc.num_processes},
                "config": self.cfg.to_dict(),
            }
            self.ckpt.write_main(tmp, msd, state)
        return self.ckpt.commit(tmp, self.step)

    def load_checkpoint(self, path: str | Path) -> None:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

        path = Path(path)
        state = CheckpointManager.load_state(path)
        saved = state["config"]
        diff = {
            k: (saved.get(k), v)
            for k, v in self.cfg.to_dict().items()
            if k not in RESUMABLE_CHANGES and saved.get(k) != v
        }
        if diff:
            raise CheckpointError(
                f"cannot resume from {path}: config differs in {', '.join(f'{k} (saved {a!r}, now {b!r})' for k, (a, b) in diff.items())}"
            )
        if state["trainer"]["world_size"] != self.acc.num_processes:
            raise CheckpointError(
                f"{path} was saved with {state['trainer']['world_size']} processes, this run has "
                f"{self.acc.num_processes}; bit-exact resume needs the same process count"
            )
        msd = {f"model.{k}": v for k, v in CheckpointManager.load_model_state(path).items()}
        set_state_dict(
            self.wrapped,
            self.optimizer,
            model_state_dict=msd,
            optim_state_dict=state["optimizer"],
            options=StateDictOptions(full_state_dict=True, strict=True),
        )
        self.scheduler.load_state_dict(state["scheduler"])
        self.batches.load_state_dict(state["data"])
        self.step = int(state["step"])
        self.nonfinite = int(state["trainer"]["nonfinite"])
        CheckpointManager.load_rng(path, self.acc.process_index)

    # ------------------------------------------------------------------------------------------- loop
    def _autocast(self):
        """bf16 autocast for forward + loss (fp32 master weights and optimizer state); a no-op for fp32."""
        if self.precision != "bf16":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.acc.device.type, dtype=torch.bfloat16)

    def _train_step(self) -> tuple[float, float, dict[str, float], bool]:
        """One optimizer step. Returns (global loss, grad norm, local metrics, applied)."""
        accum = self.cfg.grad_accum
        total = torch.zeros((), device=self.acc.device)
        metrics: dict[str, list[float]] = {}
        for micro in range(accum):
            batch = _to_device(self.batches.next_batch(), self.acc.device)
            sync = contextlib.nullcontext() if micro == accum - 1 else self.acc.no_sync(self.wrapped)
            with sync:
                with self._autocast():
                    loss, m = self.wrapped(batch)
                self.acc.backward(loss / accum)
            total += loss.detach().float() / accum
            for k, v in (m or {}).items():
                metrics.setdefault(k, []).append(float(v))
        params = [p for p in self.wrapped.parameters() if p.requires_grad]
        if self.cfg.grad_clip > 0:
            norm = self.acc.clip_grad_norm_(params, self.cfg.grad_clip)
        else:
            grads = [p.grad.detach().norm() for p in params if p.grad is not None]
            norm = torch.stack(grads).norm() if grads else torch.zeros(())
        norm = torch.as_tensor(norm, device=self.acc.device).float()
        global_loss = self.acc.reduce(total, reduction="mean")
        bad = (~torch.isfinite(global_loss)) | (~torch.isfinite(norm))
        bad = self.acc.reduce(bad.float(), reduction="sum") > 0
        applied = not bool(bad)
        if applied:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        return float(global_loss), float(norm), {k: sum(v) / len(v) for k, v in metrics.items()}, applied

    def fit(self, resume: bool = False, until: int | None = None) -> TrainResult:
        """Train to ``config.steps`` (or stop early after step ``until``, e.g. to test resumption)."""
        if self.cfg.num_threads:
            torch.set_num_threads(self.cfg.num_threads)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if resume:
            latest = self.ckpt.latest()
            if latest is None:
                raise CheckpointError(f"--resume: no checkpoint under {self.ckpt.root} (no 'latest' pointer)")
            self.load_checkpoint(latest)
        elif self.ckpt.latest() is not None:
            raise CheckpointError(
                f"{self.run_dir} already holds checkpoints; pass --resume to continue it or choose a new --out"
            )
        else:  # dropout / augmentation streams differ per process; resumption restores them from the checkpoint
            from accelerate.utils import set_seed

            set_seed(self.cfg.seed + self.acc.process_index)
        if self.acc.is_main_process:
            save_config(self.cfg, self.run_dir / "config.json")
        result = TrainResult(start_step=self.step, nonfinite_steps=self.nonfinite)
        log = RunLogger(self, enabled=self.acc.is_main_process)
        window: list[dict] = []
        t_run = time.perf_counter()
        try:
            stop = self.cfg.steps if until is None else min(until, self.cfg.steps)
            with progress_bar(self.progress, self.cfg.steps, self.step) as bar:
                while self.step < stop:
                    t0 = time.perf_counter()
                    loss, norm, metrics, applied = self._train_step()
                    self.step += 1
                    dt = time.perf_counter() - t0
                    result.losses.append(loss)
                    if not applied:
                        self.nonfinite += 1
                        if self.nonfinite > self.cfg.max_nonfinite:
                            raise NonFiniteLossError(
                                f"{self.nonfinite} steps had a non-finite loss or gradient norm (last: step "
                                f"{self.step}, loss {loss}, grad norm {norm}); limit max_nonfinite="
                                f"{self.cfg.max_nonfinite}. Lower lr, check the data, or use --precision fp32."
                            )
                    window.append(
                        {**metrics, "loss": loss, "grad_norm": norm, "samples_per_s": self.cfg.batch_size / dt}
                    )
                    if self.step % self.cfg.log_every == 0 or self.step == stop:
                        log.write(window)
                        window = []
                    if self.step % self.cfg.ckpt_every == 0 or self.step == stop:
                        result.checkpoint = self.save_checkpoint()
                    bar(self.step, loss)
        finally:
            log.close()
        result.final_step = self.step
        result.nonfinite_steps = self.nonfinite
        n = self.step - result.start_step
        result.samples_per_s = n * self.cfg.batch_size / max(time.perf_counter() - t_run, 1e-9)
        if self.step >= self.cfg.steps:
            result.export_dir = self._export()
        return result

    def close(self) -> None:
        """End the run: barrier, then destroy the process group (multi-process launches must call this before
        exiting, then leave through :func:`exit_launched_process`)."""
        self.acc.wait_for_everyone()
        self.acc.end_training()

    def _export(self) -> Path | None:
        if self.export is None:
            return None
        final = self.run_dir / "final"
        if self.acc.is_main_process:
            import shutil

            tmp = self.run_dir / ".tmp-final"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            self.export(tmp)
            (tmp / "training.json").write_text(
                json.dumps({"step": self.step, "config": self.cfg.to_dict(), "data": self.data_info}, indent=2)
            )
            if final.exists():
                shutil.rmtree(final)
            tmp.rename(final)
        self.acc.wait_for_everyone()
        return final
