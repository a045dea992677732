"""Pair two finished evaluations after the fact: ``rt2 eval --compare A B --out DIR``.

    rt2 eval --compare runs/eval_direct runs/eval_plan --out runs/direct_vs_plan     # < 1 s
    rt2 eval --compare runs/eval_direct runs/eval_plan,runs/eval_plan_more --out ...   # B's episodes from two runs

Two ``rt2 eval`` runs of different policies on the same suites and seed play identical initial states
(``rt2.eval.suites``: an episode's seed depends only on suite, task, index and base seed), so their episodes pair
exactly, as in ``rt2 eval --policy A --policy B``, without running either again. Only episodes both runs played
are paired (one may have run more suites); a pair whose initial-state hashes differ is an error, never silently
dropped: it means the runs used another seed or another suite definition.

Writes ``paired.json`` (``rt2.eval.stats.paired_tables``: per task, per suite, overall; Newcombe method 10) and
``paired.md`` (a per-suite table).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from rt2.eval import report
from rt2.eval.stats import paired_tables

KEY = ("suite", "task", "index")


def load_rows(path: str | Path) -> tuple[str, list[Mapping]]:
    """(label, episode rows) of a one-policy ``eval_info.json`` (or the folder holding it)."""
    p = Path(path)
    p = p / "eval_info.json" if p.is_dir() else p
    try:
        info = json.loads(p.read_text())
        episodes = info["episodes"]
    except FileNotFoundError:
        raise ValueError(f"--compare {path}: no eval_info.json there (give an `rt2 eval --out` folder)") from None
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"--compare {path}: {p} is not an `rt2 eval` eval_info.json") from None
    if not isinstance(episodes, dict) or len(episodes) != 1:
        raise ValueError(
            f"--compare {path}: holds {len(episodes) if isinstance(episodes, dict) else 0} policies; compare "
            "one-policy runs (an A/B run already has its paired table in eval_info.json)"
        )
    label, rows = next(iter(episodes.items()))
    return str(info.get("meta", {}).get("policies", [label])[0]), rows


def load_many(spec: str | Path) -> tuple[str, list[Mapping]]:
    """``DIR[,DIR...]``: the episodes of one policy evaluated in several runs (e.g. more suites later), which must
    be the same policy and must not repeat an episode."""
    parts = [p for p in str(spec).split(",") if p]
    loaded = [load_rows(p) for p in parts]
    labels = {lab for lab, _ in loaded}
    if len(labels) > 1:
        raise ValueError(f"--compare {spec}: the runs evaluated different policies ({', '.join(sorted(labels))})")
    rows = [r for _, rs in loaded for r in rs]
    if len({tuple(r[k] for k in KEY) for r in rows}) != len(rows):
        raise ValueError(f"--compare {spec}: the runs repeat episodes; give each episode once")
    return loaded[0][0], rows


def compare(a: str | Path, b: str | Path, out: str | Path | None = None) -> dict:
    """Paired A - B on the episodes both sides played (``a``/``b``: ``DIR[,DIR...]``); writes ``out/paired.json``
    and ``out/paired.md`` if given."""
    label_a, rows_a = load_many(a)
    label_b, rows_b = load_many(b)
    keys_a = {tuple(r[k] for k in KEY) for r in rows_a}
    common = keys_a & {tuple(r[k] for k in KEY) for r in rows_b}
    if not common:
        raise ValueError(f"--compare: {a} and {b} share no episode (different suites or --suite-episodes?)")
    pick = [r for r in rows_a if tuple(r[k] for k in KEY) in common]
    pick_b = [r for r in rows_b if tuple(r[k] for k in KEY) in common]
    info = {"a": f"{label_a} ({a})", "b": f"{label_b} ({b})", **paired_tables(pick, pick_b)}
    if out is not None:
        out = Path(out)
        report.atomic_write_json(out / "paired.json", info)
        report.atomic_write_bytes(out / "paired.md", "\n".join(table(info)).encode())
    return info


def table(info: Mapping) -> list[str]:
    """Markdown: per suite, A %, B %, A - B with its CI, discordant pairs, n."""
    lines = [
        f"A = {info['a']}, B = {info['b']}; {info['method']}",
        "",
        "| suite | A % | B % | A - B (points) | 95 % CI | only A | only B | n |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rows: Sequence[tuple[str, Mapping]] = [*info["per_suite"].items(), ("all", info["overall"])]
    for name, d in rows:
        lines.append(
            f"| {name} | {100 * d['rate_a']:.1f} | {100 * d['rate_b']:.1f} | {100 * d['diff']:+.1f} | "
            f"[{100 * d['ci95'][0]:+.1f}, {100 * d['ci95'][1]:+.1f}] | {d['a_only']} | {d['b_only']} | {d['n']} |"
        )
    return lines
