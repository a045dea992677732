"""The reproduction's report: ``results.json``, ``report.md``, Fig. 7(a)/7(b)-shaped plots, paired comparisons
(Newcombe CIs on the same seeded episodes) and RT-2's claims checked as targets.

Every number comes from ``eval/<policy>/eval_info.json`` and ``vqa/<model>/vqa_info.json``; nothing is typed in.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from rt2.eval import report
from rt2.eval.reproduce.budget import Budget
from rt2.eval.reproduce.curves import curve_lines, curve_rows, plot_curves
from rt2.eval.stats import paired_difference, result_tables, summarize

EMERGENT = report.FIG7A_SUITES
UNSEEN = report.UNSEEN_SUITES


def pooled(rows: Sequence[Mapping], suites: Sequence[str]) -> dict | None:
    """Success over the episodes of ``suites`` pooled (RT-2's "unseen average" / "emergent average")."""
    sel = [r for r in rows if r["suite"] in suites]
    return summarize(sel) if sel else None


def paired(rows_a: Sequence[Mapping], rows_b: Sequence[Mapping], suites: Sequence[str]) -> dict | None:
    """A - B on the episodes of ``suites`` both ran (matched by suite, task, index; same seeded initial state)."""
    key = ("suite", "task", "index")
    ib = {tuple(r[k] for k in key): r for r in rows_b if r["suite"] in suites}
    pairs = [(bool(ra["success"]), bool(ib[k]["success"])) for ra in rows_a if (k := tuple(ra[x] for x in key)) in ib]
    if not pairs:
        return None
    for ra in rows_a:  # a pair from different initial states would not be paired at all
        k = tuple(ra[x] for x in key)
        if k in ib and ra.get("init_hash") != ib[k].get("init_hash"):
            raise ValueError(f"episode {k}: the two policies started from different states; re-run their evals")
    return paired_difference([a for a, _ in pairs], [b for _, b in pairs]).to_dict()


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f}"


def targets(rows: Mapping[str, Sequence[Mapping]], b: Budget) -> list[dict]:
    """RT-2's claims at our scale (issue 15), each measured on the same seeded episodes: name, value, target, met."""
    size = b.sizes[0]
    co, ft, sc = (rows.get(f"{r}-{size}") for r in ("cofinetune", "finetune", "scratch"))

    def rate(rs, suites):
        s = pooled(rs, suites) if rs is not None else None
        return None if s is None else s["success_rate"]

    out: list[dict] = []

    def add(name: str, value: str, target: str, met: bool | None) -> None:
        out.append({"claim": name, "measured": value, "target": target, "met": met})

    seen = rate(co, ("seen",))
    add("co-fine-tuned on seen", _pct(seen) + " %", ">= 80 %", None if seen is None else seen >= 0.8)
    for label, suites, factor in (("unseen", UNSEEN, 1.5), ("emergent", EMERGENT, 3.0)):
        c, f = rate(co, suites), rate(ft, suites)
        met = None if c is None or f is None else (c >= factor * f and c > 0)
        add(f"co-fine-tuned vs fine-tuned, {label} average", f"{_pct(c)} % vs {_pct(f)} %",
            f">= {factor}x", met)  # fmt: skip
    c, s = rate(co, UNSEEN), rate(sc, UNSEEN)
    add("scratch vs co-fine-tuned, unseen average", f"{_pct(s)} % vs {_pct(c)} %", "<= 1/3",
        None if c is None or s is None else s <= c / 3)  # fmt: skip
    for big in b.size_axis:
        lg = rows.get(f"cofinetune-{big}")
        c, g = rate(co, EMERGENT), rate(lg, EMERGENT)
        add(f"{big} vs {size} co-fine-tuned, emergent average", f"{_pct(g)} % vs {_pct(c)} %", ">",
            None if c is None or g is None else g > c)  # fmt: skip
    rt1 = rows.get("rt1")
    if b.baseline:
        for label, suites in (("unseen", UNSEEN), ("emergent", EMERGENT)):
            c, r = rate(co, suites), rate(rt1, suites)
            add(f"co-fine-tuned vs RT-1-style, {label} average", f"{_pct(c)} % vs {_pct(r)} %", ">",
                None if c is None or r is None else c > r)  # fmt: skip
        c, r = rate(co, ("seen",)), rate(rt1, ("seen",))
        add("co-fine-tuned vs RT-1-style, seen", f"{_pct(c)} % vs {_pct(r)} %", "within 10 points",
            None if c is None or r is None else abs(c - r) <= 0.10)  # fmt: skip
    return out


def web_knowledge_lines(out: Path, vlms: list[str]) -> tuple[list[str], dict]:
    """The report's web-knowledge section from ``vqa/<model>/vqa_info.json`` -> (markdown lines, {model: summary})."""
    infos = {m: json.loads((out / "vqa" / m / "vqa_info.json").read_text()) for m in vlms}
    summary = {
        m: {**i["overall"], "types_above_chance": sum(r["above_chance"] for r in i["per_task"].values()),
            "types": len(i["per_task"]), "per_task": {t: r["accuracy"] for t, r in i["per_task"].items()}}
        for m, i in infos.items()
    }  # fmt: skip
    lines = [
        "## Web knowledge kept: held-out web VQA",
        "",
        "What each model still answers of the web corpus (`rt2 vqa`, held-out split, free decoding; chance = the best "
        'constant answer per task type; "above" = Wilson 95 % lower bound > chance). Co-fine-tuning should keep the '
        "pre-trained VLM's accuracy, robot-only fine-tuning forgets it, scratch never learned it.",
        "",
        "| model | accuracy % | 95 % CI | chance % | task types above chance | items |",
        "|---|---|---|---|---|---|",
    ]
    for m, r in summary.items():
        lines.append(
            f"| {m} | {100 * r['accuracy']:.1f} | [{100 * r['ci95'][0]:.1f}, {100 * r['ci95'][1]:.1f}] | "
            f"{100 * r['chance']:.1f} | {r['types_above_chance']} / {r['types']} | {r['n']} |"
        )
    tasks = sorted({t for r in summary.values() for t in r["per_task"]})
    lines += ["", "<details><summary>accuracy % per task type</summary>", "", "| task | " + " | ".join(summary) + " |"]
    lines.append("|---|" + "---|" * len(summary))
    for t in tasks:
        cells = [f"{100 * r['per_task'][t]:.0f}" if t in r["per_task"] else "–" for r in summary.values()]
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    lines += ["", "</details>", ""]
    return lines, summary


def pointing_lines(out: Path, models: list[str]) -> tuple[list[str], dict]:
    """The report's per-referent pointing section from ``pointing/<model>/pointing_info.json`` -> (markdown lines,
    {model: {"web": {type: exact}, "frames": {type: exact}}})."""
    infos = {m: json.loads((out / "pointing" / m / "pointing_info.json").read_text()) for m in models}
    if not infos:
        return [], {}

    def exact(rows: Mapping, t: str) -> float | None:
        r = rows.get(t)
        return None if r is None or not r["n"] else r["exact"]["accuracy"]

    summary = {
        m: {src: {t: exact(i[key]["per_type"], t) for t in i["types"]} for src, key in (("web", "web"),
            ("frames", "robot_frames"))} for m, i in infos.items()
    }  # fmt: skip
    first = next(iter(infos.values()))
    types = list(first["types"])
    lines = [
        "## Finding the referent: pointing per referent type",
        "",
        "Exact-cell accuracy % of `Q: where is <referent>? A:` (`rt2 pointing`), web / the emergent suites' own "
        "initial frames (the episodes `eval` played; – = no such referent there). An emergent suite whose referent "
        "is not found fails before control; one whose referent is found and still fails, fails at control. "
        '"random object" = pointing at a random object of the right class in the frame; every model is asked the same '
        "items (n), so few frames of a type (a relation that few episodes use) give a coarse percentage.",
        "",
        "| referent | " + " | ".join(infos) + " | random object (frames) | web n / frames n |",
        "|---|" + "---|" * (len(infos) + 2),
    ]
    rand = first["robot_frames"]["per_type"]
    for t in types:
        cells = [f"{_pct(summary[m]['web'][t])} / {_pct(summary[m]['frames'][t])}" for m in infos]
        r = rand.get(t)
        cells.append(_pct(r["random_object"]["exact"]) if r and r["n"] else "–")
        cells.append(f"{first['web']['per_type'].get(t, {}).get('n', 0)} / {r['n'] if r else 0}")  # same items for all
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    return [*lines, ""], summary


def _paired_lines(rows: Mapping[str, Sequence[Mapping]], b: Budget) -> tuple[list[str], dict]:
    ref = f"cofinetune-{b.sizes[0]}"
    if ref not in rows:
        return [], {}
    groups = [(s, (s,)) for s in b.suites] + [("unseen average", UNSEEN), ("emergent average", EMERGENT)]
    lines = [
        f"## Paired: {ref} minus each other policy (same seeded episodes, Newcombe 95 % CI, points)",
        "",
        "| vs | " + " | ".join(g for g, _ in groups) + " |",
        "|---|" + "---|" * len(groups),
    ]
    data: dict = {}
    for other, rs in rows.items():
        if other == ref:
            continue
        cells = []
        for g, suites in groups:
            d = paired(rows[ref], rs, suites)
            data.setdefault(other, {})[g] = d
            cells.append("–" if d is None else f"{100 * d['diff']:+.0f} [{100 * d['ci95'][0]:+.0f}, "
                                                f"{100 * d['ci95'][1]:+.0f}]")  # fmt: skip
        lines.append(f"| {other} | " + " | ".join(cells) + " |")
    return [*lines, ""], data


def _trained(out: Path, policies: Sequence[str], b: Budget) -> dict[str, tuple[Path, int]]:
    """{model: (its metrics.jsonl, its schedule's steps)} for every trained policy (not the oracle)."""
    from rt2.eval.reproduce.stages import rt1_steps

    return {p: (out / "models" / p / "metrics.jsonl", rt1_steps(b) if p == "rt1" else b.train_steps)
            for p in policies if p != "oracle"}  # fmt: skip


def write_summary(
    out: Path, policies: list[str], b: Budget, vlms: list[str] | None = None, partial: bool = False
) -> None:
    """results.json, Fig. 7(a)/7(b)-shaped plots, training curves and report.md from every
    eval/<policy>/eval_info.json (and, for ``vlms``, the web-knowledge table from vqa/<model>/vqa_info.json).
    ``partial``: use the policies and models whose eval / vqa has finished and say which have not (a run that spans
    sessions can show its finished half; the ``report`` stage rewrites the files when everything is done)."""
    missing: list[str] = []
    trained = _trained(out, policies, b)  # every model's curve, evaluated yet or not
    pointers = list(vlms or [])
    if partial:
        missing = [f"eval-{p}" for p in policies if not (out / "eval" / p / "eval_info.json").is_file()]
        missing += [f"vqa-{m}" for m in vlms or [] if not (out / "vqa" / m / "vqa_info.json").is_file()]
        missing += [f"pointing-{m}" for m in vlms or [] if not (out / "pointing" / m / "pointing_info.json").is_file()]
        policies = [p for p in policies if (out / "eval" / p / "eval_info.json").is_file()]
        pointers = [m for m in vlms or [] if (out / "pointing" / m / "pointing_info.json").is_file()]
        vlms = [m for m in vlms or [] if (out / "vqa" / m / "vqa_info.json").is_file()]
        if not policies:
            raise ValueError(f"no finished evaluation under {out / 'eval'}: nothing to report yet")
    rows = {p: json.loads((out / "eval" / p / "eval_info.json").read_text())["episodes"] for p in policies}
    rows = {p: next(iter(r.values())) for p, r in rows.items()}
    tables = {p: result_tables(r) for p, r in rows.items()}
    plots = []
    for name, suites, avg, title in (
        ("fig7b_unseen.png", UNSEEN, "unseen_average", "Unseen suites by regime and size (RT-2 Fig. 7b shape)"),
        ("fig7a_emergent.png", EMERGENT, "emergent_average", "Emergent skills (RT-2 Fig. 7a shape)"),
    ):
        cats, series = report.figure_rows(rows, suites, avg)
        if cats:
            plots.append((title, report.plot_bars(out / name, cats, series, title)))
    curves = curve_rows(trained)
    if curves:
        plot_curves(curves, out / "curves.png")
    lines = ["# rt2 reproduction", "", f"Budget `{b.name}`: {dataclasses.asdict(b)}", ""]
    if partial:
        lines += [f"**Partial report: not finished yet: {', '.join(missing) or 'nothing'}.** Their rows read "
                  "\"not run\"; re-run the reproduction's command to finish them.", ""]  # fmt: skip
    if b.pretrained:
        lines += [f"Pre-trained VLM: `{b.pretrained}`, used as is (this run did not pre-train; the budget's "
                  "pretrain_steps / pretrain_lr are unused).", ""]  # fmt: skip
    if b.max_steps != 200:
        lines += [f"**Step cap {b.max_steps} (not the 200-step protocol): a wiring check, not a result.**", ""]
    checks = targets(rows, b)
    lines += ["## RT-2's claims at this scale", "", "| claim | measured | target | met |", "|---|---|---|---|"]
    for t in checks:
        met = {True: "yes", False: "**no**", None: "not run"}[t["met"]]
        lines.append(f"| {t['claim']} | {t['measured']} | {t['target']} | {met} |")
    lines += ["", "## Language-Table-style overall success on `seen`", "", "| policy | success % | 95 % CI | n |",
              "|---|---|---|---|"]  # fmt: skip
    for p, t in tables.items():
        s = t["per_suite"].get("seen")
        if s:
            lines.append(
                f"| {p} | {100 * s['success_rate']:.1f} | [{100 * s['ci95'][0]:.0f}, {100 * s['ci95'][1]:.0f}] | {s['n']} |"
            )
    suites = list(b.suites)
    averages = {p: (pooled(r, UNSEEN), pooled(r, EMERGENT)) for p, r in rows.items()}
    lines += ["", "## Success % by suite", "",
              "| policy | " + " | ".join(suites) + " | unseen avg | emergent avg |",
              "|---|" + "---|" * (len(suites) + 2)]  # fmt: skip
    for p, t in tables.items():
        cells = [_pct(t["per_suite"][s]["success_rate"]) if s in t["per_suite"] else "–" for s in suites]
        cells += [_pct(a["success_rate"]) if a else "–" for a in averages[p]]
        lines.append(f"| {p} | " + " | ".join(cells) + " |")
    lines.append("")
    paired_lines, paired_data = _paired_lines(rows, b)
    lines += paired_lines
    for title, path in plots:
        lines += [f"![{title}]({path.name})", ""]
    web_lines, web = web_knowledge_lines(out, vlms) if vlms else ([], {})
    lines += web_lines
    point_lines, pointing = pointing_lines(out, pointers)
    lines += point_lines
    lines += curve_lines(curves)
    lines += ["Per-policy details: " + ", ".join(f"[{p}](eval/{p}/report.md)" for p in policies), ""]
    report.atomic_write_json(
        out / "results.json",
        {"budget": dataclasses.asdict(b), "results": tables, "web_vqa": web, "paired": paired_data,
         "targets": checks, "partial": missing if partial else [], "pointing": pointing,
         "training": {m: {k: v for k, v in r.items() if k != "curve"} for m, r in curves.items()}},
    )  # fmt: skip
    report.atomic_write_bytes(out / "report.md", "\n".join(lines).encode())
