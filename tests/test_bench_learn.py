"""``rt2 bench learn --quick``: the learning-curve benchmark wires data, pretraining, three regimes, evaluation,
table, JSON and plot together (seconds of training; the curves themselves are measured by the full run)."""

from __future__ import annotations

import json

from rt2 import benchcli


def _load_learn():
    import importlib.util

    spec = importlib.util.spec_from_file_location("rt2_bench_learn_test", benchcli.bench_dir() / "learn.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_learn_quick(tmp_path, capsys):
    learn = _load_learn()
    assert learn.main(["--quick", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| regime | CPU min | wall min | samples |" in out
    report = json.loads((tmp_path / "learn.json").read_text())
    assert set(report["curves"]) == {"scratch", "finetune", "cofinetune"}
    for rows in report["curves"].values():
        assert rows and all(0.0 <= r["success"] <= 1.0 and r["samples"] > 0 and r["cpu_min"] > 0 for r in rows)
        assert rows[-1]["n"] == 2
    assert report["pretrain"]["samples"] > 0
    assert set(report["seen"]) == {"scratch", "finetune", "cofinetune"}
    assert all(ev["n"] == 5 for ev in report["seen"].values())  # 1 episode x 5 Language-Table families
    assert (tmp_path / "learn.png").stat().st_size > 0
    assert (tmp_path / "final_cofinetune" / "vla.json").exists()


def test_learn_rejects_unknown_regime(tmp_path):
    import pytest

    learn = _load_learn()
    with pytest.raises(SystemExit):
        learn.parse_args(["--regimes", "scratch,bogus"])


def test_action_ceiling_quick_scores_prior_and_state_mlp(tmp_path, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("rt2_bench_ceiling_test", benchcli.bench_dir() / "action_ceiling.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--quick", "--json", str(tmp_path / "c.json")]) == 0
    res = json.loads((tmp_path / "c.json").read_text())
    assert res["train_frames"] > 0 and res["test_frames"] > 0 and res["state_mlp_steps"] > 0
    assert 0.0 <= res["state_mlp_exact"] <= 1.0 and res["prior_bin_l1"] > 0
    assert "prior (always" in capsys.readouterr().out
