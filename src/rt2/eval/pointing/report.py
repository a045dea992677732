"""The outputs of ``rt2 pointing``: the markdown tables (``pointing_report.md``) and the bar plot (``pointing.png``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rt2.data.web.referents import REFERENT_TYPES


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _acc(r: dict) -> str:
    return f"{_pct(r['accuracy'])} [{_pct(r['ci95'][0])}, {_pct(r['ci95'][1])}]"


def markdown(info: dict[str, Any]) -> str:
    """The per-type table (web and robot frames side by side) and the per-suite-task robot table."""
    web, robot = info["web"]["per_type"], info["robot_frames"]["per_type"]
    lines = [
        f"# Pointing per referent type: `{info['policy']}`",
        "",
        f"`{info['command']}`",
        "",
        f"Web: {info['items_per_type']} held-out items per type. Robot frames: initial frames of "
        f"{info['robot_episodes_per_task']} episodes per task of {', '.join(info['robot_suites'])} (base seed "
        f"{info['episode_seed']}). Accuracy % with Wilson 95 % CI; chance = best constant answer; random = a random "
        "object of the referent's class.",
        "",
        "| referent | suites | web n | web exact % | web within one % | chance exact / within one | random object "
        "within one | robot n | robot exact % | robot within one % | robot random within one |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for t, spec in REFERENT_TYPES.items():
        w, r = web.get(t), robot.get(t)
        if w is None and r is None:
            continue
        cells = [t, ", ".join(spec.suites) or "–"]
        if w:
            cells += [str(w["n"]), _acc(w["exact"]), _acc(w["within1"])]
            cells += [f"{_pct(w['exact']['chance'])} / {_pct(w['within1']['chance'])}"]
            cells += [_pct(w["random_object"]["within1"])]
        else:
            cells += ["–"] * 5
        if r:
            cells += [str(r["n"]), _acc(r["exact"]), _acc(r["within1"]), _pct(r["random_object"]["within1"])]
        else:
            cells += ["–"] * 4
        lines.append("| " + " | ".join(cells) + " |")
    tasks = info["robot_frames"]["per_task"]
    if tasks:
        lines += [
            "",
            "Robot frames by suite task and slot (block = the pushed block, goal = the symbol or target block):",
            "",
            "| suite | task | slot | referent | n | exact % | within one % | random within one % |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in tasks:
            lines.append(
                f"| {r['suite']} | {r['task']} | {r['slot']} | {r['type']} | {r['n']} | {_pct(r['exact'])} | "
                f"{_pct(r['within1'])} | {_pct(r['random_within1'])} |"
            )
    return "\n".join(lines) + "\n"


def plot(info: dict[str, Any], path: str | Path) -> Path:
    """Bars per referent type: web exact, web within one, robot-frame within one (Wilson CIs)."""
    from rt2.eval.report import plot_bars

    web, robot = info["web"]["per_type"], info["robot_frames"]["per_type"]
    cats = [t for t in REFERENT_TYPES if t in web or t in robot]

    def bar(table: dict, key: str) -> list:
        return [(table[t][key]["accuracy"], *table[t][key]["ci95"]) if t in table else None for t in cats]

    series = {"web exact": bar(web, "exact"), "web within one": bar(web, "within1")}
    if robot:
        series["robot frames exact"] = bar(robot, "exact")
        series["robot frames within one"] = bar(robot, "within1")
    title = f"Pointing per referent type: {Path(info['policy']).name or info['policy']}"
    return plot_bars(path, cats, series, title, ylabel="pointing accuracy (%)")
