"""Wilson and Newcombe intervals against hand-computed values (formulas written out here, not rt2's code)."""

from __future__ import annotations

import math

import pytest

from rt2.eval.stats import paired_difference, paired_tables, summarize, wilson

Z = 1.959963984540054


def _wilson_by_hand(k: int, n: int) -> tuple[float, float]:
    p = k / n
    centre = (2 * n * p + Z**2) / (2 * (n + Z**2))
    half = Z * math.sqrt(Z**2 + 4 * n * p * (1 - p)) / (2 * (n + Z**2))
    return centre - half, centre + half


# Published Wilson 95 % intervals (e.g. Newcombe 1998 Table I style, 4 decimals).
REFERENCE = {(0, 10): (0.0, 0.2775), (5, 10): (0.2366, 0.7634), (10, 10): (0.7225, 1.0), (50, 100): (0.4038, 0.5962)}


@pytest.mark.parametrize(("k", "n"), list(REFERENCE))
def test_wilson_matches_hand_formula_and_reference(k, n):
    lo, hi = wilson(k, n)
    hlo, hhi = _wilson_by_hand(k, n)
    assert lo == pytest.approx(max(hlo, 0.0), abs=1e-12) and hi == pytest.approx(min(hhi, 1.0), abs=1e-12)
    assert (round(lo, 4), round(hi, 4)) == REFERENCE[(k, n)]


def test_wilson_edges_and_bad_input():
    assert wilson(0, 10)[0] == 0.0 and wilson(10, 10)[1] == 1.0  # exact ends, no round-off past the estimate
    assert wilson(0, 0) == (0.0, 1.0)
    for k, n in ((11, 10), (-1, 10), (1, -1)):
        with pytest.raises(ValueError, match="successes"):
            wilson(k, n)


def _newcombe_by_hand(a: int, b: int, c: int, d: int) -> tuple[float, float, float]:
    n = a + b + c + d
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = _wilson_by_hand(a + b, n)
    l2, u2 = _wilson_by_hand(a + c, n)
    l1, u1, l2, u2 = max(l1, 0), min(u1, 1), max(l2, 0), min(u2, 1)
    denom = (a + b) * (c + d) * (a + c) * (b + d)
    num = a * d - b * c
    num = max(num - n / 2, 0) if num > 0 else num  # Newcombe's continuity-corrected phi
    phi = num / math.sqrt(denom) if denom else 0.0
    theta = (b - c) / n
    lower = theta - math.sqrt((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2)
    upper = theta + math.sqrt((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2)
    return theta, lower, upper


@pytest.mark.parametrize("table", [(36, 12, 2, 0), (5, 10, 3, 32), (20, 3, 3, 24), (1, 7, 0, 2)])
def test_newcombe_paired_difference(table):
    a, b, c, d = table
    xs = [True] * a + [True] * b + [False] * c + [False] * d
    ys = [True] * a + [False] * b + [True] * c + [False] * d
    res = paired_difference(xs, ys)
    theta, lo, hi = _newcombe_by_hand(a, b, c, d)
    assert (res.both, res.a_only, res.b_only, res.neither) == table
    assert res.diff == pytest.approx(theta) and res.ci95[0] == pytest.approx(lo) and res.ci95[1] == pytest.approx(hi)
    assert res.ci95[0] <= res.diff <= res.ci95[1]


def test_paired_difference_detects_a_clear_winner_and_symmetry():
    clear = paired_difference([True] * 20, [False] * 20)
    assert clear.diff == 1.0 and clear.ci95[0] > 0.5
    same = paired_difference([True, False] * 10, [True, False] * 10)
    assert same.diff == 0.0 and same.ci95[0] < 0 < same.ci95[1]
    fwd, back = paired_difference([1, 1, 0, 1, 0], [0, 1, 0, 0, 1]), paired_difference([0, 1, 0, 0, 1], [1, 1, 0, 1, 0])
    assert fwd.ci95[0] == pytest.approx(-back.ci95[1]) and fwd.ci95[1] == pytest.approx(-back.ci95[0])
    with pytest.raises(ValueError, match="equal lengths"):
        paired_difference([True], [True, False])


def _row(task, i, success, h="x"):
    return {
        "suite": "s",
        "task": task,
        "index": i,
        "success": success,
        "steps": 10,
        "invalid_actions": 1,
        "control_hz": 5.0,
        "init_hash": h,
    }


def test_summarize_and_pairing_checks_initial_states():
    rows = [_row("t", i, i < 3) for i in range(4)]
    s = summarize(rows)
    assert (s["n"], s["successes"], s["success_rate"], s["invalid_actions"], s["mean_steps"]) == (4, 3, 0.75, 4, 10.0)
    assert s["ci95"] == list(wilson(3, 4))
    tables = paired_tables(rows, [_row("t", i, False) for i in range(4)])
    assert tables["overall"]["a_only"] == 3 and tables["per_suite"]["s"]["n"] == 4
    with pytest.raises(ValueError, match="different states"):
        paired_tables(rows, [_row("t", i, False, h="y") for i in range(4)])
    with pytest.raises(ValueError, match="different episodes"):
        paired_tables(rows, rows[:2])
