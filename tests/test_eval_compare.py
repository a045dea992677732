"""``rt2 eval --compare A B``: pairing two finished evaluations on the episodes both played."""

from __future__ import annotations

import json

import pytest

from rt2 import cli


def _eval(tmp_path, name: str, suites: str, seed: int = 0, max_steps: int = 40):
    out = tmp_path / name
    argv = ["eval", "--policy", "oracle", "--suite", suites, "--episodes", "2", "--max-steps", str(max_steps)]
    assert cli.main([*argv, "--seed", str(seed), "--videos", "0", "--out", str(out), "--quiet"]) == 0
    return out


def test_compare_pairs_the_common_episodes_and_reports_per_suite(tmp_path, capsys):
    a = _eval(tmp_path, "a", "seen,emergent_math")
    b = _eval(tmp_path, "b", "seen", max_steps=3)  # the same episodes, cut short: the oracle rarely finishes
    capsys.readouterr()
    assert cli.main(["eval", "--compare", str(a), str(b), "--out", str(tmp_path / "ab")]) == 0
    printed = capsys.readouterr().out
    info = json.loads((tmp_path / "ab" / "paired.json").read_text())
    assert list(info["per_suite"]) == ["seen"]  # emergent_math ran only in A: not paired
    rows_a = json.loads((a / "eval_info.json").read_text())["episodes"]
    seen_a = [r for r in next(iter(rows_a.values())) if r["suite"] == "seen"]
    d = info["overall"]
    assert d["n"] == len(seen_a) == 10
    assert d["rate_a"] == pytest.approx(sum(r["success"] for r in seen_a) / len(seen_a))
    assert d["diff"] > 0 and d["a_only"] > 0  # 40 steps beat 3
    assert "| seen |" in printed and (tmp_path / "ab" / "paired.md").is_file()
    # one policy's episodes from two runs (more suites evaluated later) pair as one
    more = _eval(tmp_path, "b2", "emergent_math", max_steps=3)
    assert cli.main(["eval", "--compare", str(a), f"{b},{more}", "--out", str(tmp_path / "ab2")]) == 0
    joined = json.loads((tmp_path / "ab2" / "paired.json").read_text())
    assert list(joined["per_suite"]) == ["seen", "emergent_math"] and joined["overall"]["n"] == len(rows_a_all(a))
    assert cli.main(["eval", "--compare", str(a), f"{b},{b}", "--out", str(tmp_path / "x")]) == 2
    assert "repeat episodes" in capsys.readouterr().err


def rows_a_all(path):
    return next(iter(json.loads((path / "eval_info.json").read_text())["episodes"].values()))


def test_compare_refuses_unpaired_runs_with_one_line(tmp_path, capsys):
    a = _eval(tmp_path, "a", "seen", max_steps=2)
    other_seed = _eval(tmp_path, "s1", "seen", seed=1, max_steps=2)
    capsys.readouterr()
    assert cli.main(["eval", "--compare", str(a), str(other_seed), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "different states" in err and "Traceback" not in err and err.count("\n") == 1
    assert cli.main(["eval", "--compare", str(a), str(tmp_path / "missing"), "--out", str(tmp_path / "x")]) == 2
    assert "no eval_info.json" in capsys.readouterr().err
    assert cli.main(["eval", "--compare", str(a), str(a), "--policy", "oracle", "--out", str(tmp_path / "x")]) == 2
    assert "drop --policy" in capsys.readouterr().err
