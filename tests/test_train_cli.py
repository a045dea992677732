"""End to end through the CLI: ``rt2 collect`` -> ``rt2 pretrain`` -> ``rt2 train --regime cofinetune`` (a few
steps of pali-tiny on a 4-episode dataset) -> ``Policy.from_pretrained``; exact resume of the real VLA on the real
mixture; and the commands' input errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rt2 import cli


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    assert cli.main(["collect", "--episodes", "4", "--out", str(root / "data"), "--no-progress"]) == 0
    common = ["--preset", "debug", "--no-progress", "--tokenizer-corpus", "200"]
    assert cli.main(["pretrain", "--out", str(root / "pt"), "--steps", "2", *common]) == 0
    return root, common


def _losses(run) -> list[float]:
    return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_pretrain_writes_tokenizer_checkpoint_and_export(runs):
    root, _ = runs
    pt = root / "pt"
    assert (pt / "tokenizer.json").is_file()
    assert (pt / "checkpoints/latest").read_text().strip() == "step_00000002"
    assert (pt / "final/vla.json").is_file()
    info = json.loads((pt / "final/training.json").read_text())
    assert info["data"]["regime"] == "pretrain" and info["data"]["weights"] == {"web": 1.0}
    # a fresh model normalizes pixels with its own data's statistics, saved for --resume and in the export
    norm = json.loads((pt / "image_norm.json").read_text())
    assert norm == info["data"]["image_norm"]
    assert all(0.02 < s < 0.5 for s in norm["image_std"]) and norm["image_mean"] != [0.5, 0.5, 0.5]
    backbone = json.loads((pt / "final/backbone/config.json").read_text())
    assert backbone["image_mean"] == pytest.approx(norm["image_mean"])


def test_earlier_step_of_a_finished_run_is_evaluable(runs, tmp_path):
    """``load_weights`` / ``rt2 vqa --weights``: the run's export with an earlier checkpoint's weights swapped in."""
    import torch

    from backbone_checks import tiny_vla
    from rt2.policy.policy import Policy
    from rt2.train.checkpoint import CheckpointError, load_weights

    root, common = runs
    pt = tmp_path / "pt4"  # debug preset: a checkpoint every 2 steps, the last 2 kept
    assert cli.main(["pretrain", "--out", str(pt), "--steps", "4", *common]) == 0
    policy = Policy.from_pretrained(pt / "final")
    final = {k: v.clone() for k, v in policy.vla.state_dict().items()}
    assert load_weights(policy.vla, pt / "checkpoints/step_00000004") == 4
    assert all(torch.equal(final[k], v) for k, v in policy.vla.state_dict().items())  # the export is step 4
    assert load_weights(policy.vla, pt / "checkpoints/step_00000002") == 2
    assert any(not torch.equal(final[k], v) for k, v in policy.vla.state_dict().items())
    out = tmp_path / "vqa"
    argv = ["vqa", "--policy", str(pt / "final"), "--weights", str(pt / "checkpoints/step_00000002"), "--quiet"]
    assert cli.main([*argv, "--items", "8", "--max-new-tokens", "4", "--out", str(out)]) == 0
    info = json.loads((out / "vqa_info.json").read_text())
    assert info["weights_step"] == 2 and "--weights" in info["command"]
    # another architecture, or a folder that is not a checkpoint: refused with the reason, nothing half-loaded
    with pytest.raises(CheckpointError, match="does not fit this model"):
        load_weights(tiny_vla(), pt / "checkpoints/step_00000002")
    with pytest.raises(CheckpointError, match="not a training checkpoint"):
        load_weights(policy.vla, pt / "final")
    assert cli.main([*argv[:3], "--weights", str(pt / "final"), "--items", "4"]) == 2
    # --curve: every kept checkpoint on the same items; the last one is the export, so it scores the same
    curve_argv = ["vqa", "--policy", str(pt / "final"), "--items", "8", "--max-new-tokens", "4", "--quiet", "--curve"]
    assert cli.main([*curve_argv, "--out", str(tmp_path / "curve")]) == 0
    curve = json.loads((tmp_path / "curve/vqa_curve.json").read_text())
    final_info = json.loads((tmp_path / "curve/vqa_info.json").read_text())
    assert [r["step"] for r in curve["steps"]] == [2, 4] and curve["items"] == 8
    assert curve["steps"][-1]["overall"] == final_info["overall"]
    assert curve["steps"][0]["overall"] == info["overall"]  # step 2 scores what --weights step 2 scored
    assert (tmp_path / "curve/vqa_curve.png").stat().st_size > 0
    assert cli.main(curve_argv) == 2  # no --out
    assert (
        cli.main([*curve_argv, "--out", str(tmp_path / "c2"), "--weights", str(pt / "checkpoints/step_00000002")]) == 2
    )


def test_cofinetune_produces_a_loadable_policy(runs):
    from rt2.policy.policy import Policy

    root, common = runs
    out = root / "cft"
    argv = ["train", "--regime", "cofinetune", "--init", str(root / "pt"), "--data", str(root / "data")]
    assert cli.main([*argv, "--out", str(out), "--steps", "2", "--batch-size", "10", *common]) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    for key in ("loss", "loss/robot", "loss/robot_aux", "loss/web", "lr", "grad_norm", "samples_per_s"):
        assert key in rows[0], key
    assert any(k.startswith("action_") for k in rows[0])
    policy = Policy.from_pretrained(out / "final")
    assert policy.metadata()["model"] == "pali-nano"
    action = policy.predict_action([np.zeros((72, 96, 3), np.uint8)], "push the red moon to the left")
    assert action.shape == (2,) and np.isfinite(action).all()
    weights = json.loads((out / "final/training.json").read_text())["data"]["weights"]
    assert weights["robot"] == pytest.approx(0.5) and weights["web"] > 0


def test_cli_resume_is_bit_exact_on_the_real_mixture(runs):
    root, common = runs
    argv = ["train", "--regime", "cofinetune", "--init", str(root / "pt"), "--data", str(root / "data"), *common]
    argv += ["--steps", "4", "--set", "ckpt_every=2", "--set", "augment=true", "--grounding-weight", "10"]
    assert cli.main([*argv, "--out", str(root / "straight")]) == 0
    assert cli.main([*argv, "--out", str(root / "split"), "--stop-after", "2"]) == 0
    assert not (root / "split/final").exists()  # stopped early: no export yet
    assert cli.main([*argv, "--out", str(root / "split"), "--resume"]) == 0
    straight, split = _losses(root / "straight"), _losses(root / "split")
    assert len(straight) == len(split) == 4
    assert straight == split
    # the auxiliary grounding head (issue 9) is part of the resumed state and logs its error
    rows = [json.loads(line) for line in (root / "straight/metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["grounding_mse"]) for r in rows if "grounding_mse" in r)
    assert any("grounding_mse" in r for r in rows)


def test_grounding_needs_the_column(runs):
    """Data without observation.environment_state (older collections, other robots) cannot train the grounding
    head: a clear error, not a silently skipped loss."""
    import dataclasses

    from rt2.train.cli import _set_grounding
    from rt2.train.sources import load_robot_data

    root, _ = runs
    robot = load_robot_data(root / "data", "finetune")
    assert robot.info["grounding"] == "observation.environment_state"
    assert all(e.grounding.shape == (len(e), 6) and np.abs(e.grounding).max() < 1.5 for e in robot.episodes)
    from rt2.models import VLA

    vla = VLA.from_pretrained(root / "pt" / "final")
    _set_grounding(vla, 10.0, robot)
    assert vla.grounding_head is not None and vla.config.grounding_dim == 6
    _set_grounding(vla, 0.0, robot)
    assert vla.grounding_head is None
    old = dataclasses.replace(robot, episodes=[dataclasses.replace(e, grounding=None) for e in robot.episodes])
    with pytest.raises(ValueError, match="re-collect"):
        _set_grounding(vla, 10.0, old)


def test_input_errors_are_clear(runs, capsys):
    root, common = runs
    data = str(root / "data")
    # User errors are one line on stderr and exit code 2 (rt2.cli turns the ValueError/OSError into that).
    cases = [
        (["train", "--regime", "finetune", "--data", data, "--out", str(root / "x1"), *common], "needs --init"),
        (
            ["train", "--regime", "finetune", "--init", data, "--data", data, "--out", str(root / "x2"), *common],
            "rt2 pretrain",
        ),
        (
            ["train", "--regime", "scratch", "--data", data, "--out", str(root / "x3"), "--set", "robot_shar=1"],
            "did you mean 'robot_share'",
        ),
    ]
    for argv, needle in cases:
        assert cli.main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("rt2 train: error:") and needle in err and len(err.splitlines()) == 1, err
    with pytest.raises(SystemExit):
        cli.main(["train", "--regime", "cofinetun", "--data", data, "--out", str(root / "x4")])
    assert "did you mean 'cofinetune'" in capsys.readouterr().err


@pytest.mark.slow
def test_two_process_cofinetune_matches_single_process(runs):
    """The real VLA on the real mixture under DDP (2 CPU processes, gloo): same losses as 1 process."""
    import os
    import socket
    import subprocess
    import sys
    from pathlib import Path

    root, common = runs
    argv = ["train", "--regime", "cofinetune", "--init", str(root / "pt"), "--data", str(root / "data"), *common]
    argv += ["--steps", "2", "--batch-size", "8"]
    assert cli.main([*argv, "--out", str(root / "one")]) == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    launcher = [str(Path(sys.executable).with_name("accelerate")), "launch", "--multi_gpu", "--num_processes", "2"]
    launcher += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    launcher += ["--main_process_port", str(port), "-m", "rt2.cli"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [*launcher, *argv, "--out", str(root / "two")], capture_output=True, text=True, env=env, timeout=150
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "2 process(es)" in proc.stderr
    assert _losses(root / "two") == pytest.approx(_losses(root / "one"), rel=1e-4)
    assert (root / "two/checkpoints/step_00000002/rng_rank1.safetensors").is_file()


def test_grounded_recipe_trains_plans_and_serves_them(runs, tmp_path):
    """The issue-14 recipe through the CLI: in-domain block pointing (point_share), the grounding loss and the
    plan action format; the export decodes plans under the slot grammar and eval scores their points."""
    from rt2.data.plan import parse_plan
    from rt2.eval.runner import ModelAdapter, RunConfig, run_suite
    from rt2.eval.suites import get_suite
    from rt2.policy.policy import Policy

    root, common = runs
    out = root / "plan"
    argv = ["train", "--regime", "cofinetune", "--init", str(root / "pt"), "--data", str(root / "data"), *common]
    argv += ["--steps", "2", "--batch-size", "10", "--grounding-weight", "10", "--set", "point_share=0.15"]
    assert cli.main([*argv, "--action-format", "plan", "--out", str(out)]) == 0
    data = json.loads((out / "final/training.json").read_text())["data"]
    assert data["weights"]["robot_point"] == pytest.approx(0.15)
    assert data["weights"]["web"] == pytest.approx(0.25)
    assert data["action_format"]["format"] == "plan"
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert any("loss/robot_point" in r for r in rows)

    policy = Policy.from_pretrained(out / "final")
    assert policy.action_format == "plan"
    frames = [[np.full((72, 96, 3), v, np.uint8)] for v in (0, 90, 200)]
    actions, _ = policy.predict_action_batch(frames, ["push the red moon to the blue cube"] * 3)
    assert actions.shape == (3, 2)
    for plan in policy.last_plans:  # an untrained model still writes exactly three well-formed points
        parsed = parse_plan(plan)
        assert parsed is not None and len(parsed) == 3, plan
    direct = Policy.from_pretrained(out / "final", action_format="direct")  # plan dropout trained this path too
    direct.predict_action_batch(frames, ["push the red moon to the blue cube"] * 3)
    assert direct.last_plans == [None] * 3

    res = run_suite(ModelAdapter(policy), get_suite("seen"), RunConfig(episodes=1, num_envs=5, max_steps=3))
    for r in res.rows:
        assert set(r["plan_slot_exact"]) == {"robot", "block", "goal"}
        assert all(0 <= v <= r["plan_slot_within1"][k] <= 1 for k, v in r["plan_slot_exact"].items())
        assert r["plan_parsed"] == 1.0


@pytest.mark.parametrize("regime", ["finetune", "scratch"])
def test_robot_only_regimes_keep_in_domain_rows_in_the_grounded_recipe(runs, regime):
    """RT-2's ablation removes the web, not the robot-derived pointing rows: with point_share > 0 finetune and
    scratch mix robot_aux 10 % and robot_point, and the web's share goes to the action rows."""
    root, common = runs
    init = ["--init", str(root / "pt")] if regime == "finetune" else []
    out = root / f"grounded_{regime}"
    argv = ["train", "--regime", regime, *init, "--data", str(root / "data"), *common, "--steps", "1"]
    assert cli.main([*argv, "--batch-size", "10", "--set", "point_share=0.15", "--out", str(out)]) == 0
    weights = json.loads((out / "final/training.json").read_text())["data"]["weights"]
    assert weights == pytest.approx({"robot": 0.75, "robot_aux": 0.1, "robot_point": 0.15})
    plain = root / f"plain_{regime}"  # without the grounded recipe: robot only, as before
    assert cli.main([*argv, "--batch-size", "4", "--out", str(plain)]) == 0
    assert json.loads((plain / "final/training.json").read_text())["data"]["weights"] == {"robot": 1.0}


def test_point_share_must_leave_web_data(runs, capsys):
    root, common = runs
    argv = ["train", "--regime", "cofinetune", "--init", str(root / "pt"), "--data", str(root / "data"), *common]
    assert cli.main([*argv, "--steps", "1", "--set", "point_share=0.4", "--out", str(root / "bad")]) == 2
    err = capsys.readouterr().err
    assert "leaves no web data" in err and "lower --robot-share" in err and "Traceback" not in err


def test_corrupted_pointing_reaches_the_action(runs):
    """The ablation that shows control depends on the plan: corrupt every point the model writes and the plan
    differs from the model's own, and the action is decoded after (conditioned on) the corrupted points."""
    from rt2.data.plan import parse_plan
    from rt2.policy.policy import Policy

    root, _ = runs
    final = root / "plan/final"
    if not (final / "vla.json").is_file():
        pytest.fail("run test_grounded_recipe_trains_plans_and_serves_them first (module order)")
    frames = [[np.full((72, 96, 3), v, np.uint8)] for v in range(0, 250, 10)]
    instr = ["push the red moon to the blue cube"] * len(frames)
    clean = Policy.from_pretrained(final)
    clean.predict_action_batch(frames, instr)
    bad = Policy.from_pretrained(final, corrupt_plan=1.0, seed=3)
    bad.predict_action_batch(frames, instr)
    assert bad.metadata()["corrupt_plan"] == 1.0
    moved = 0
    for a, b in zip(clean.last_plans, bad.last_plans, strict=True):
        pa, pb = parse_plan(a), parse_plan(b)
        assert pb is not None and len(pb) == 3  # still well-formed: the grammar holds under corruption
        moved += [(p.gx, p.gy) for p in pa] != [(p.gx, p.gy) for p in pb]
    assert moved >= len(frames) - 2  # uniform random cells: nearly every plan changes
    with pytest.raises(ValueError, match="probability"):
        Policy.from_pretrained(final, corrupt_plan=1.5)


def test_bench_curve_evaluates_every_checkpoint_and_resumes(runs, tmp_path, capsys):
    """rt2 bench curve: one closed-loop point per checkpoint of a run (through rt2 eval --weights), read back
    instead of re-run when its eval_info.json exists."""
    from rt2 import benchcli

    root, _ = runs
    run = root / "plan"
    out = tmp_path / "curve"
    argv = ["--policy", str(run / "final"), "--checkpoints", str(run / "checkpoints"), "--out", str(out)]
    argv += ["--episodes", "2", "--num-envs", "2", "--max-steps", "2"]
    import argparse

    assert benchcli.run(argparse.Namespace(name="curve", bench_args=argv)) == 0
    curve = json.loads((out / "curve.json").read_text())
    steps = sorted(int(p.name.split("_")[-1]) for p in (run / "checkpoints").glob("step_*") if "." not in p.name)
    assert [p["step"] for p in curve["points"]] == steps
    assert all(p["n"] == 2 and set(p["plan_slot_exact"]) == {"robot", "block", "goal"} for p in curve["points"])
    assert (out / "curve.png").stat().st_size > 1000
    first = (out / f"step_{steps[0]:08d}" / "eval_info.json").stat().st_mtime_ns
    assert benchcli.run(argparse.Namespace(name="curve", bench_args=argv)) == 0
    assert (out / f"step_{steps[0]:08d}" / "eval_info.json").stat().st_mtime_ns == first  # read, not re-run


def test_serve_replies_carry_the_plan_and_its_points(runs):
    """rt2 serve with a point-then-act policy: every reply has the action and the plan it was decoded after."""
    from rt2.policy.policy import Policy
    from rt2.serve.client import PolicyClient
    from rt2.serve.server import ServerConfig, ServerThread

    root, _ = runs
    policy = Policy.from_pretrained(root / "plan/final")
    assert policy.metadata()["action_format"] == "plan"
    with ServerThread(policy, ServerConfig(port=0)) as srv, PolicyClient(srv.url) as client:
        for v in (0, 120):
            reply = client.infer({"image": np.full((72, 96, 3), v, np.uint8), "instruction": "push the red moon left"})
            assert np.asarray(reply["actions"]).shape == (2,)
            plan = reply["plan"]
            assert isinstance(plan["text"], str) and len(plan["points"]) == 3
            assert all(len(p["point"]) == 2 and all(-10 <= c <= 10 for c in p["point"]) for p in plan["points"])
    direct = Policy.from_pretrained(root / "plan/final", action_format="direct")
    with ServerThread(direct, ServerConfig(port=0)) as srv, PolicyClient(srv.url) as client:
        assert "plan" not in client.infer(
            {"image": np.zeros((72, 96, 3), np.uint8), "instruction": "push the red moon"}
        )
