"""How ``rt2 pointing`` scores: exact-cell and within-one-cell accuracy per referent type, against the best constant
answer (chance) and a random object of the referent's class, and per suite task for the robot frames."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from rt2.data.web.referents import REFERENT_TYPES
from rt2.data.web.scene import parse_grid
from rt2.eval.pointing.probes import Probe
from rt2.eval.stats import wilson
from rt2.eval.vqa import accuracy_row, generate_answers

if TYPE_CHECKING:
    from rt2.policy import Policy

CHANCE_METHOD = (
    "best constant answer on the same items (20 most frequent targets plus '0 0'); random_object: expected "
    "accuracy of a uniformly random object of the referent's class (any block, or any symbol on the board)"
)


def _hits(cell: tuple[int, int], pred: tuple[int, int] | None) -> tuple[bool, bool]:
    if pred is None:
        return False, False
    return pred == cell, abs(pred[0] - cell[0]) <= 1 and abs(pred[1] - cell[1]) <= 1


def _parse(text: str) -> tuple[int, int] | None:
    try:
        return parse_grid(text)
    except ValueError:
        return None


def _constant_chance(cells: Sequence[tuple[int, int]]) -> tuple[float, float]:
    """(exact, within-one) accuracy of the best constant answer among the 20 most frequent cells and 0 0."""
    cands = [c for c, _ in Counter(cells).most_common(20)] + [(0, 0)]
    exact = max(float(np.mean([c == t for t in cells])) for c in cands)
    within = max(float(np.mean([_hits(t, c)[1] for t in cells])) for c in cands)
    return exact, within


def summarize(probes: Sequence[Probe], predictions: Sequence[str]) -> dict[str, Any]:
    """Score ``predictions`` (aligned with ``probes``) -> {"rows": [per-probe dicts], "per_type": {type: row}}.

    A type's row: n, exact and within1 (``accuracy_row``: n, correct, accuracy, ci95, chance, above_chance),
    random_object {exact, within1}, unparsed (answers that are not a grid point)."""
    if len(probes) != len(predictions):
        raise ValueError(f"{len(probes)} probes but {len(predictions)} predictions")
    rows = []
    for p, text in zip(probes, predictions, strict=True):
        pred = _parse(text)
        exact, within = _hits(p.cell, pred)
        base = [_hits(p.cell, c) for c in p.candidates] or [(False, False)]
        rows.append(
            {
                "type": p.rtype,
                "question": p.question,
                "target": f"{p.cell[0]} {p.cell[1]}",
                "prediction": text,
                "exact": exact,
                "within1": within,
                "parsed": pred is not None,
                "random_exact": float(np.mean([b[0] for b in base])),
                "random_within1": float(np.mean([b[1] for b in base])),
                **p.meta,
            }
        )
    return {"rows": rows, "per_type": per_type_rows(rows, probes)}


def per_type_rows(rows: Sequence[dict], probes: Sequence[Probe]) -> dict[str, Any]:
    """Scored rows (aligned with ``probes``) -> {type: row}, in ``REFERENT_TYPES`` order."""
    out = {}
    for t in REFERENT_TYPES:
        rs = [r for r in rows if r["type"] == t]
        if rs:
            out[t] = _type_row(rs, [p.cell for p in probes if p.rtype == t])
    return out


def _type_row(rows: Sequence[dict], cells: Sequence[tuple[int, int]]) -> dict[str, Any]:
    n = len(rows)
    c_exact, c_within = _constant_chance(cells)
    return {
        "n": n,
        "exact": accuracy_row(n, sum(r["exact"] for r in rows), c_exact),
        "within1": accuracy_row(n, sum(r["within1"] for r in rows), c_within),
        "random_object": {
            "exact": float(np.mean([r["random_exact"] for r in rows])),
            "within1": float(np.mean([r["random_within1"] for r in rows])),
        },
        "unparsed": sum(not r["parsed"] for r in rows),
    }


def robot_task_rows(rows: Sequence[dict]) -> list[dict[str, Any]]:
    """Robot-frame rows grouped by (suite, task, slot, type): where in which suite the pointing fails."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["suite"], r["task"], r["slot"], r["type"]), []).append(r)
    out = []
    for (suite, task, slot, rtype), rs in groups.items():
        n = len(rs)
        ex, w1 = sum(r["exact"] for r in rs), sum(r["within1"] for r in rs)
        out.append(
            {"suite": suite, "task": task, "slot": slot, "type": rtype, "n": n,
             "exact": ex / n, "exact_ci95": list(wilson(ex, n)), "within1": w1 / n, "within1_ci95": list(wilson(w1, n)),
             "random_within1": float(np.mean([r["random_within1"] for r in rs]))}
        )  # fmt: skip
    return out


def evaluate_pointing(
    policy: Policy,
    probes: Sequence[Probe],
    *,
    batch_size: int = 32,
    max_new_tokens: int = 8,
    on_batch: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Decode every probe's question with ``policy`` (greedy, ``rt2.eval.vqa.generate_answers``) and score it."""
    items = [p.web_item() for p in probes]
    ans = generate_answers(policy, items, batch_size, max_new_tokens, on_batch)
    return {**summarize(probes, ans.predictions), "prompt_too_long": ans.too_long}
