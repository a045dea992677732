"""``rt2 reproduce --quick``: the whole pipeline's wiring (collect, pretrain, 3 regimes, eval, report) and resume."""

from __future__ import annotations

import json
import shutil

import pytest

from rt2.cli import main
from rt2.eval import reproduce as R
from rt2.eval.reproduce.curves import curve_rows, read_curve


def test_plan_is_data_with_dependencies():
    names = [s.name for s in R.plan(R.BUDGETS["full"])]
    assert names[0] == "collect" and names[-1] == "report"
    assert {
        "pretrain-pali-tiny",  # the size axis: co-fine-tune only at the larger size
        "train-cofinetune-pali-tiny",
        "eval-cofinetune-pali-tiny",
        "eval-scratch-pali-nano",
        "eval-oracle",
    } <= set(names)
    assert "train-scratch-pali-tiny" not in names and "train-finetune-pali-tiny" not in names
    # the central comparison is scheduled first, each training followed by its evaluation
    default = [s.name for s in R.plan(R.BUDGETS["default"])]
    assert default[2:6] == [
        "train-cofinetune-pali-nano",
        "eval-cofinetune-pali-nano",
        "train-finetune-pali-nano",
        "eval-finetune-pali-nano",
    ]
    # every regime trains with the controlling recipe and every suite gets >= 100 episodes
    b = R.BUDGETS["default"]
    assert b.train_preset == "control" and b.train_steps >= 18000 and b.suite_episodes >= 100
    assert set(R.ALL_SUITES) <= set(b.suites) and "cot" in b.suites
    by = {s.name: s for s in R.plan(R.BUDGETS["default"])}
    assert by["train-finetune-pali-nano"].needs == ("collect", "pretrain-pali-nano")
    assert by["eval-cofinetune-pali-nano"].needs == ("train-cofinetune-pali-nano",)
    # web knowledge: the pre-trained VLM and every regime's model answer the held-out web questions
    assert by["vqa-pretrain-pali-nano"].needs == ("pretrain-pali-nano",)
    assert by["vqa-finetune-pali-nano"].needs == ("train-finetune-pali-nano",)
    assert {"vqa-scratch-pali-nano", "vqa-cofinetune-pali-nano"} <= set(by["report"].needs)
    # ... and point at every emergent referent (traces a failed emergent suite to finding or to control)
    assert by["pointing-cofinetune-pali-nano"].needs == ("train-cofinetune-pali-nano",)
    assert {f"pointing-{r}-pali-nano" for r in ("pretrain", *R.REGIMES)} <= set(by["report"].needs)
    with pytest.raises(ValueError, match="unknown budget"):
        R.reproduce("/nonexistent", "huge")


@pytest.mark.slow
def test_reproduce_quick_end_to_end_and_resume(tmp_path):
    logs: list[str] = []
    status = R.reproduce(tmp_path, "quick", quiet=True, log=logs.append)
    assert set(status.values()) == {"ran"} and len(status) == 20
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["results"]) == {
        "scratch-pali-nano",
        "finetune-pali-nano",
        "cofinetune-pali-nano",
        "rt1",
        "oracle",
    }
    # the RT-1-style baseline: the same robot data and the CPU time of one pali-nano regime
    rt1 = json.loads((tmp_path / "models" / "rt1" / "final" / "training.json").read_text())
    assert rt1["step"] == round(4 * 2.64) and "rt1" in (tmp_path / "report.md").read_text()
    for t in results["results"].values():
        assert set(t["per_suite"]) == {"seen", "emergent_math"}
    report_md = (tmp_path / "report.md").read_text()
    assert (tmp_path / "fig7a_emergent.png").is_file() and "Language-Table-style" in report_md
    # the web-knowledge table: one row per VLM, numbers from its vqa_info.json
    web = results["web_vqa"]
    assert list(web) == ["pretrain-pali-nano", "scratch-pali-nano", "finetune-pali-nano", "cofinetune-pali-nano"]
    for m, r in web.items():
        info = json.loads((tmp_path / "vqa" / m / "vqa_info.json").read_text())
        assert r["n"] == 16 == info["overall"]["n"] and r["accuracy"] == info["overall"]["accuracy"]
        assert f"| {m} | {100 * r['accuracy']:.1f} |" in report_md
    assert "## Web knowledge kept" in report_md
    # per-referent pointing of every VLM, numbers from its pointing_info.json
    point = json.loads((tmp_path / "pointing" / "cofinetune-pali-nano" / "pointing_info.json").read_text())
    assert point["items_per_type"] == 2 and point["robot_episodes_per_task"] == 1
    assert list(results["pointing"]) == list(web) and "## Finding the referent" in report_md
    digit = point["web"]["per_type"]["digit"]["exact"]["accuracy"]
    assert results["pointing"]["cofinetune-pali-nano"]["web"]["digit"] == digit
    # Resume: nothing re-runs; invalidating one model re-runs its training, its eval and the report only.
    logs.clear()
    assert set(R.reproduce(tmp_path, "quick", quiet=True, log=logs.append).values()) == {"skipped"}
    assert "[plan] 20 stages already finished; left: ~0.0 CPU-h" in "\n".join(logs)  # a resumed run states what is left
    (tmp_path / "models" / "finetune-pali-nano" / "final" / "vla.json").unlink()
    ran = {k for k, v in R.reproduce(tmp_path, "quick", quiet=True, log=logs.append).items() if v == "ran"}
    assert ran == {"train-finetune-pali-nano", "eval-finetune-pali-nano", "vqa-finetune-pali-nano",
                   "pointing-finetune-pali-nano", "report"}  # fmt: skip

    # --pretrained: a second reproduction starts from the first one's VLM without pre-training
    pre = tmp_path / "models" / "pretrain-pali-nano"
    other = tmp_path / "other"
    status = R.reproduce(other, "quick", quiet=True, log=logs.append, overrides={"pretrained": str(pre)})
    assert set(status.values()) == {"ran"} and not (other / "models" / "pretrain-pali-nano").exists()
    cft = json.loads((other / "models" / "cofinetune-pali-nano" / "final" / "training.json").read_text())
    assert cft["data"]["init"] == str(pre / "final")
    assert f"Pre-trained VLM: `{pre}`, used as is" in (other / "report.md").read_text()
    vqa = json.loads((other / "vqa" / "pretrain-pali-nano" / "vqa_info.json").read_text())
    assert vqa["policy"] == str(pre / "final")
    # the same VLM again: nothing re-runs; a VLM of another size is refused before any training
    assert set(
        R.reproduce(other, "quick", quiet=True, log=logs.append, overrides={"pretrained": str(pre)}).values()
    ) == {"skipped"}
    with pytest.raises(RuntimeError, match="is a pali-nano VLM but this budget trains pali-tiny"):
        R.reproduce(tmp_path / "third", "quick", quiet=True, log=logs.append,
                    overrides={"pretrained": str(pre), "sizes": ("pali-tiny",)})  # fmt: skip
    with pytest.raises(RuntimeError, match="no vla.json"):
        R.reproduce(tmp_path / "fourth", "quick", quiet=True, log=logs.append, overrides={"pretrained": str(other)})

    # --report: a run that spans sessions shows its finished half; what has not finished reads "not run"
    shutil.rmtree(other / "eval" / "finetune-pali-nano")
    shutil.rmtree(other / "pointing" / "scratch-pali-nano")
    assert main(["reproduce", "--quick", "--out", str(other), "--pretrained", str(pre), "--report"]) == 0
    md = (other / "report.md").read_text()
    assert "Partial report: not finished yet: eval-finetune-pali-nano, pointing-scratch-pali-nano." in md
    assert "| co-fine-tuned vs fine-tuned, unseen average | " in md and "| not run |" in md
    by_suite = md.split("## Success % by suite")[1].split("##")[0]
    assert "| cofinetune-pali-nano |" in by_suite and "| finetune-pali-nano |" not in by_suite
    partial = json.loads((other / "results.json").read_text())
    assert partial["partial"] == ["eval-finetune-pali-nano", "pointing-scratch-pali-nano"]
    assert "finetune-pali-nano" not in partial["results"] and "scratch-pali-nano" not in partial["pointing"]
    # every trained model's curve, read from its metrics.jsonl, at the end of its (4-step) schedule
    assert partial["training"]["rt1"]["steps"] == round(4 * 2.64) and (other / "curves.png").is_file()


def test_stage_fingerprint_only_covers_the_fields_it_uses():
    """More eval episodes must not invalidate an hour of training; more training steps must."""
    import dataclasses

    b = R.BUDGETS["default"]
    more_eval = dataclasses.replace(b, eval_episodes=b.eval_episodes + 5)
    more_steps = dataclasses.replace(b, train_steps=b.train_steps + 5)
    by = {s.name: s for s in R.plan(b)}
    train, ev = by["train-cofinetune-pali-nano"], by["eval-cofinetune-pali-nano"]
    assert train.fingerprint(b) == train.fingerprint(more_eval)
    assert train.fingerprint(b) != train.fingerprint(more_steps)
    assert ev.fingerprint(b) != ev.fingerprint(more_eval)
    assert by["report"].fingerprint(b) != by["report"].fingerprint(more_eval)
    # the pre-training lr is pinned in the budget (not taken from the preset) and re-runs pre-training when changed
    pre = by["pretrain-pali-nano"]
    assert pre.fingerprint(b) != pre.fingerprint(dataclasses.replace(b, pretrain_lr=5e-4))
    assert pre.fingerprint(b) == pre.fingerprint(more_steps)
    # --pretrained replaces the pre-training stage by a check whose fingerprint is the path; without it the old
    # fingerprint (and so the markers of existing runs) is unchanged
    with_pre = {s.name: s for s in R.plan(dataclasses.replace(b, pretrained="runs/pt"))}["pretrain-pali-nano"]
    assert with_pre.fingerprint(dataclasses.replace(b, pretrained="runs/pt")) == {"pretrained": "runs/pt"}
    assert with_pre.argv is None and with_pre.call is not None  # a check in this process, not a job
    assert "pretrained" not in pre.fingerprint(b)
    vqa = by["vqa-cofinetune-pali-nano"]  # more VQA items re-run the VQA stages only
    assert vqa.fingerprint(b) == vqa.fingerprint(more_eval) != vqa.fingerprint(dataclasses.replace(b, vqa_items=9))
    assert train.fingerprint(b) == train.fingerprint(dataclasses.replace(b, vqa_items=9))


def test_command_line_overrides_reach_the_budget():
    import argparse
    import dataclasses

    parser = argparse.ArgumentParser()
    R.add_arguments(parser)
    argv = ["--pretrain-steps", "30000", "--pretrain-lr", "5e-4", "--grounding-weight", "0", "--vqa-items", "230"]
    over = R.overrides_from_args(parser.parse_args(argv))
    assert over == {"pretrain_steps": 30000, "pretrain_lr": 5e-4, "grounding_weight": 0.0, "vqa_items": 230}
    argv = ["--train-steps", "14000", "--action-format", "plan"]
    assert R.overrides_from_args(parser.parse_args(argv)) == {"train_steps": 14000, "action_format": "plan"}
    assert R.overrides_from_args(parser.parse_args(["--pretrained", "runs/pt"])) == {"pretrained": "runs/pt"}
    assert R.overrides_from_args(parser.parse_args([])) == {}
    b = dataclasses.replace(R.BUDGETS["default"], **over)
    pre = {s.name: s for s in R.plan(b)}["pretrain-pali-nano"]
    assert "30000 steps" in pre.describe
    assert pre.fingerprint(b) != pre.fingerprint(R.BUDGETS["default"])  # a resumed run re-does pre-training


@pytest.mark.slow
def test_two_jobs_run_stages_side_by_side_in_one_thread_children(tmp_path):
    """--jobs 2: every command stage is a child process with its own log and one thread; the result validates
    and resumes like a sequential run; a failing child names its log."""
    logs: list[str] = []
    status = R.reproduce(tmp_path, "quick", quiet=True, log=logs.append, jobs=2)
    assert set(status.values()) == {"ran"} and len(status) == 20
    train_log = (tmp_path / "logs" / "train-cofinetune-pali-nano.log").read_text()
    assert train_log.startswith("$ rt2 train --preset control --regime cofinetune") and "--num-threads 1" in train_log
    assert (tmp_path / "logs" / "eval-oracle.log").is_file()
    results = json.loads((tmp_path / "results.json").read_text())
    assert {t["claim"] for t in results["targets"]} >= {
        "co-fine-tuned on seen",
        "scratch vs co-fine-tuned, unseen average",
    }
    assert "finetune-pali-nano" in results["paired"]  # co-fine-tune minus each other policy, same episodes
    assert "## RT-2's claims at this scale" in (tmp_path / "report.md").read_text()
    assert set(R.reproduce(tmp_path, "quick", quiet=True, log=logs.append, jobs=2).values()) == {"skipped"}

    with pytest.raises(RuntimeError, match=r"stage collect failed .*logs/collect.log"):
        R.reproduce(tmp_path / "bad", "quick", quiet=True, log=logs.append, jobs=2,
                    overrides={"collect_noise": "not-a-number"})  # fmt: skip
    assert "--noise" in (tmp_path / "bad" / "logs" / "collect.log").read_text()
    # --stages: one regime and what it needs, nothing else
    only = tmp_path / "only"
    status = R.reproduce(only, "quick", quiet=True, log=logs.append, only=["eval-scratch-pali-nano"])
    assert list(status) == ["collect", "train-scratch-pali-nano", "eval-scratch-pali-nano"]
    with pytest.raises(ValueError, match="no such stage"):
        R.reproduce(only, "quick", only=["train-nonsense"])
    with pytest.raises(ValueError, match="--jobs must be >= 1"):
        R.reproduce(tmp_path / "bad", "quick", jobs=0)


def test_the_plan_states_its_budget_in_cpu_and_wall_time():
    """Every budget states what it costs; two lanes cut wall time but not CPU time, and --pretrained drops the
    pre-training's share."""
    import dataclasses

    from rt2.eval.reproduce.stages import estimate

    b = R.BUDGETS["default"]
    stages = R.plan(b)
    by = {s.name: s for s in stages}
    assert by["train-cofinetune-pali-nano"].cost_min > 60 and by["report"].cost_min == 0
    cpu1, wall1 = estimate(stages, 1)
    cpu2, wall2 = estimate(stages, 2)
    assert cpu1 == cpu2 == wall1 and wall2 < 0.8 * wall1
    with_pre = R.plan(dataclasses.replace(b, pretrained="runs/pt"))
    assert estimate(with_pre, 2)[0] < cpu1 - 60
    assert estimate(R.plan(R.BUDGETS["quick"]), 2)[1] < 1.0  # minutes


def test_training_curves_keep_the_last_line_of_a_resumed_step_and_ignore_a_torn_tail(tmp_path):
    m = tmp_path / "metrics.jsonl"
    rows = [{"step": s, "action_bin_l1": 3.0 - s / 100} for s in range(10, 110, 10)]
    rows.insert(5, {"step": 20, "action_bin_l1": 9.0})  # a resumed run logs step 20 again: the later line wins
    rows.insert(3, {"step": 30, "samples_per_s": 100.0})  # no metric: skipped
    m.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 110, "action_')  # killed mid-write
    curve = read_curve(m)
    assert [s for s, _ in curve] == list(range(10, 110, 10)) and dict(curve)[20] == 9.0
    got = curve_rows({"a": (m, 200), "gone": (tmp_path / "none.jsonl", 200)})
    assert list(got) == ["a"] and got["a"]["logged_to"] == 100
    assert got["a"]["at"][0.5] == pytest.approx(sum(v for _, v in curve) / len(curve))  # the mean up to step 100
    assert got["a"]["at"][1.0] is None  # not reached: shown as "-", never extrapolated
    m.write_text('{"step": 10}\nnot json\n{"step": 20}\n')
    with pytest.raises(ValueError, match="line 2 is not JSON"):
        read_curve(m)


def test_report_of_a_run_that_has_not_started_is_one_clear_line(tmp_path, capsys):
    assert main(["reproduce", "--out", str(tmp_path / "none"), "--report"]) == 2
    assert "start the reproduction first" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["reproduce", "--out", str(tmp_path / "empty"), "--report"]) == 2
    assert "nothing to report yet" in capsys.readouterr().err


@pytest.mark.slow
def test_sigterm_stops_the_children_and_a_rerun_resumes(tmp_path):
    """The end of a session sends SIGTERM: no one-thread training may keep running unsupervised."""
    import os
    import re
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "rt2.cli", "reproduce", "--quick", "--out", str(out), "--jobs", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    # A stage's log appears when its child starts (collect first, then pre-training): signal while one runs.
    while not list((out / "logs").glob("*.log")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "interrupted; re-run the same command to resume" in stderr
    assert re.search(r"\[stop\] [a-z0-9-]+: interrupted", stdout), stdout
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    assert str(out) not in ps  # every child is gone
    rerun = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ}, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert (out / "report.md").is_file() and "stages ran" in rerun.stdout
