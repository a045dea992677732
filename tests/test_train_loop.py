"""The optimization loop over the abstract ``model.loss(batch)`` contract: exact resume, the non-finite guard,
gradient accumulation, checkpoint contents and pruning. The model is a small MLP regressor with dropout (so RNG
restoration matters); the VLA end to end is in test_train_cli.py."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from rt2.train.batches import ExampleBatches
from rt2.train.checkpoint import CheckpointError, CheckpointManager
from rt2.train.config import apply_overrides, preset
from rt2.train.trainer import NonFiniteLossError, Trainer


class Stream:
    """Deterministic example stream: example i is a function of (seed, i) only; resumable by its index."""

    def __init__(self, seed: int = 0) -> None:
        self.seed, self.i = seed, 0

    def __next__(self):
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.i)
        self.i += 1
        x = torch.randn(8, generator=g)
        return x, torch.stack([x[:4].sum(), x[4:].prod()])

    def state_dict(self) -> dict:
        return {"i": self.i}

    def load_state_dict(self, s: dict) -> None:
        self.i = int(s["i"])


class MLP(nn.Module):
    def __init__(self, dropout: float = 0.1) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 32), nn.GELU(), nn.Dropout(dropout), nn.Linear(32, 2))

    def loss(self, batch):
        x, y = batch
        err = (self.net(x) - y) ** 2
        return err.mean(), {"loss/sum": err[:, 0].mean().item(), "loss/prod": err[:, 1].mean().item()}


def collate(examples):
    return torch.stack([e[0] for e in examples]), torch.stack([e[1] for e in examples])


def make_trainer(run_dir, dropout: float = 0.1, **overrides) -> Trainer:
    cfg = apply_overrides(preset("debug"), {"steps": 8, "ckpt_every": 4, "batch_size": 8, **overrides})
    torch.manual_seed(cfg.seed)
    model = MLP(dropout)

    def batches(micro: int, rank: int, world: int) -> ExampleBatches:
        return ExampleBatches(Stream(), collate, micro, rank, world)

    return Trainer(model, cfg, batches, run_dir, progress=False)


def test_resume_is_bit_exact(tmp_path):
    straight = make_trainer(tmp_path / "a").fit()
    first = make_trainer(tmp_path / "b").fit(until=4)
    assert first.final_step == 4 and (tmp_path / "b/checkpoints/step_00000004").is_dir()
    second = make_trainer(tmp_path / "b").fit(resume=True)
    assert second.start_step == 4
    assert straight.losses == first.losses + second.losses  # bit-exact, not approximately
    a = CheckpointManager.load_model_state(tmp_path / "a/checkpoints/step_00000008")
    b = CheckpointManager.load_model_state(tmp_path / "b/checkpoints/step_00000008")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_changed_config_and_fresh_run_refuses_existing(tmp_path):
    make_trainer(tmp_path / "r").fit(until=4)
    with pytest.raises(CheckpointError, match=r"config differs in lr"):
        make_trainer(tmp_path / "r", lr=5e-3).fit(resume=True)
    with pytest.raises(CheckpointError, match="--resume"):
        make_trainer(tmp_path / "r").fit()
    with pytest.raises(CheckpointError, match="no checkpoint"):
        make_trainer(tmp_path / "empty").fit(resume=True)


def _nan_on_calls(module: nn.Module, calls: set[int]) -> None:
    count = {"n": 0}

    def hook(_mod, _inp, out):
        count["n"] += 1
        return out * float("nan") if count["n"] in calls else out

    module.register_forward_hook(hook)


def test_nonfinite_steps_are_skipped_and_counted(tmp_path):
    tr = make_trainer(tmp_path / "n", dropout=0.0, max_nonfinite=3)
    _nan_on_calls(tr.model.net[0], {3, 5})
    before = {k: v.clone() for k, v in tr.model.state_dict().items()}
    res = tr.fit()
    assert res.nonfinite_steps == 2 and res.final_step == 8
    assert [math.isfinite(x) for x in res.losses] == [True, True, False, True, False, True, True, True]
    after = tr.model.state_dict()
    assert all(torch.isfinite(v).all() for v in after.values())  # a NaN update would have poisoned the weights
    assert not all(torch.equal(before[k], after[k]) for k in before)
    rows = [json.loads(line) for line in (tmp_path / "n/metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["nonfinite_steps"] == 2


def test_nonfinite_guard_aborts_after_limit(tmp_path):
    tr = make_trainer(tmp_path / "abort", dropout=0.0, max_nonfinite=1)
    _nan_on_calls(tr.model.net[2], {2, 4, 6})
    with pytest.raises(NonFiniteLossError, match=r"2 steps had a non-finite loss.*max_nonfinite=1"):
        tr.fit()


def test_grad_accumulation_matches_full_batch(tmp_path):
    full = make_trainer(tmp_path / "full", dropout=0.0, steps=4).fit()
    accum = make_trainer(tmp_path / "acc", dropout=0.0, steps=4, grad_accum=4).fit()
    assert full.losses == pytest.approx(accum.losses, rel=1e-5, abs=1e-6)


def test_checkpoints_are_pickle_free_pruned_and_logged(tmp_path):
    make_trainer(tmp_path / "k", steps=8, ckpt_every=2, keep_last=2).fit()
    root = tmp_path / "k/checkpoints"
    names = sorted(p.name for p in root.iterdir())
    assert names == ["latest", "step_00000006", "step_00000008"]
    assert (root / "latest").read_text().strip() == "step_00000008"
    files = {p.name for p in (root / "step_00000008").iterdir()}
    assert files == {"model.safetensors", "state.safetensors", "state.json", "rng_rank0.safetensors", "rng_rank0.json"}
    state = CheckpointManager.load_state(root / "step_00000008")
    assert state["step"] == 8 and state["data"] == {"stream": {"i": 64}, "drawn": 8}
    assert set(state["optimizer"]["state"]) == {f"model.net.{i}.{w}" for i in (0, 3) for w in ("weight", "bias")}
    rows = [json.loads(line) for line in (tmp_path / "k/metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 9))
    for key in ("loss", "loss/sum", "loss/prod", "lr", "grad_norm", "samples_per_s"):
        assert all(key in r for r in rows), key
    assert rows[0]["lr"] > rows[-1]["lr"] > 0  # warm-up 1 step, then cosine decay
    assert any((tmp_path / "k/tb").iterdir())


def test_bf16_autocast_trains_close_to_fp32(tmp_path):
    from rt2.train.optim import cpu_has_bf16, resolve_precision

    assert resolve_precision("auto") == ("bf16" if cpu_has_bf16() else "fp32")
    fp32 = make_trainer(tmp_path / "fp32", dropout=0.0, steps=3).fit()
    tr = make_trainer(tmp_path / "bf16", dropout=0.0, steps=3, precision="bf16")
    assert tr.precision == "bf16"
    bf16 = tr.fit()
    assert all(math.isfinite(x) for x in bf16.losses)
    assert bf16.losses != fp32.losses  # autocast really ran in bf16...
    assert bf16.losses == pytest.approx(fp32.losses, rel=0.05)  # ...and still trains the same model
    assert all(p.dtype == torch.float32 for p in tr.model.parameters())  # fp32 master weights


def test_metrics_have_one_row_per_step_after_a_resume(tmp_path, monkeypatch):
    """Issue 17 #6: a run killed after its last checkpoint re-runs those steps on --resume; each step is logged
    once (and a torn last line from the kill is dropped)."""
    t = make_trainer(tmp_path / "m", log_every=1)
    real, calls = t._train_step, {"n": 0}

    def killed_after_six():
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt  # "kill" after steps 5-6 were logged but not checkpointed (ckpt_every 4)
        return real()

    monkeypatch.setattr(t, "_train_step", killed_after_six)
    with pytest.raises(KeyboardInterrupt):
        t.fit()
    with open(tmp_path / "m/metrics.jsonl", "a") as f:
        f.write('{"step": 6, "lo')
    make_trainer(tmp_path / "m", log_every=1).fit(resume=True)
    rows = [json.loads(line) for line in (tmp_path / "m/metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 9))
