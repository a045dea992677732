"""Evaluation outputs: ``eval_info.json``, rollout videos, RT-2-shaped bar charts and a markdown report.

    write_videos(out / "videos", suite_result, label="A")     # mp4 (imageio-ffmpeg), gif if ffmpeg is missing
    plot_bars(out / "fig4.png", categories, {"A": [(rate, lo, hi), ...]}, title=...)
    figure_rows(results, FIG4_SUITES)                          # (categories, series) for one figure
    write_report(out, info)                                    # report.md linking everything in ``info``

Figure shapes follow the paper: Fig. 4 (seen / unseen objects / unseen backgrounds / unseen environments /
unseen average, one bar per policy) and Fig. 7(a) (emergent categories). Every bar carries its Wilson 95 % CI.
All files are written atomically (temp file + rename), so an interrupted run never leaves a half file behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from rt2.eval.stats import summarize

FIG4_SUITES = ("seen", "unseen_objects", "unseen_backgrounds", "unseen_environments")
UNSEEN_SUITES = ("unseen_objects", "unseen_backgrounds", "unseen_environments")
FIG7A_SUITES = ("emergent_symbols", "emergent_math", "emergent_multilingual", "emergent_reasoning", "emergent_people")
LABELS = {
    "seen": "seen tasks",
    "unseen_objects": "unseen objects",
    "unseen_backgrounds": "unseen backgrounds",
    "unseen_environments": "unseen environments",
    "unseen_average": "unseen average",
    "paraphrase": "paraphrase",
    "emergent_symbols": "symbol understanding",
    "emergent_math": "math",
    "emergent_multilingual": "multilingual",
    "emergent_reasoning": "reasoning",
    "emergent_people": "person recognition",
    "emergent_average": "emergent average",
    "cot": "chain of thought",
}


def episodes_text(meta: dict) -> str:
    """How many episodes an eval ran: "20 episodes per task", or with --suite-episodes the floor per suite too."""
    text = f"{meta['episodes_per_task']} episodes per task"
    if meta.get("suite_episodes"):
        text += f", at least {meta['suite_episodes']} per suite ({meta.get('episodes_per_task_by_suite')})"
    return text


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_json(path: str | Path, obj) -> Path:
    return atomic_write_bytes(path, (json.dumps(obj, indent=2, default=_json_default) + "\n").encode())


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON-serializable: {type(o).__name__}")


def _pad16(frame: np.ndarray) -> np.ndarray:
    """Pad H and W up to multiples of 16 (H.264 macro blocks) with white, so ffmpeg does not rescale."""
    h, w = frame.shape[:2]
    ph, pw = (-h) % 16, (-w) % 16
    return np.pad(frame, ((0, ph), (0, pw), (0, 0)), constant_values=255) if ph or pw else frame


def write_video(path: str | Path, frames: Sequence[np.ndarray], fps: int = 10) -> Path:
    """frames uint8[h, w, 3] -> ``path`` (.mp4 via imageio-ffmpeg; falls back to .gif if ffmpeg is missing)."""
    import imageio.v2 as imageio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not frames:
        raise ValueError(f"no frames to write to {path}")
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        with imageio.get_writer(tmp, fps=fps, codec="libx264", quality=7, macro_block_size=16) as w:
            for f in frames:
                w.append_data(_pad16(np.asarray(f, np.uint8)))
    except (ImportError, RuntimeError, OSError):
        tmp.unlink(missing_ok=True)
        path = path.with_suffix(".gif")
        tmp = path.with_name(f".{path.stem}.tmp.gif")
        imageio.mimsave(tmp, [np.asarray(f, np.uint8) for f in frames], duration=1.0 / fps)
    os.replace(tmp, path)
    return path


def write_videos(directory: str | Path, suite_result, label: str = "") -> list[dict]:
    """Write every recorded episode of a SuiteResult; -> [{path, suite, task, index, success, instruction}]."""
    rows = {(r["suite"], r["task"], r["index"]): r for r in suite_result.rows}
    out = []
    for key, frames in suite_result.videos.items():
        row = rows[key]
        stem = f"{label + '_' if label else ''}{key[0]}_{key[1].replace(':', '-')}_{key[2]:03d}"
        p = write_video(Path(directory) / f"{stem}.mp4", frames)
        out.append(
            {
                "path": str(p),
                "suite": key[0],
                "task": key[1],
                "index": key[2],
                "policy": label,
                "success": row["success"],
                "instruction": row["instruction"],
            }
        )
    return out


def figure_rows(
    results: Mapping[str, Sequence[Mapping]], suites: Sequence[str], average: str | None = None
) -> tuple[list[str], dict[str, list[tuple[float, float, float] | None]]]:
    """Episode rows per policy label -> (category labels, {label: [(rate, lo, hi) | None per category]}).

    ``average`` names an extra category pooling the episodes of every suite except "seen" (e.g. "unseen_average").
    Suites missing from every policy's results are dropped.
    """
    present = [s for s in suites if any(any(r["suite"] == s for r in rows) for rows in results.values())]
    cats = list(present) + ([average] if average and len([s for s in present if s != "seen"]) > 1 else [])
    series = {}
    for label, rows in results.items():
        vals = []
        for c in cats:
            pick = [s for s in present if s != "seen"] if c == average else [c]
            sel = [r for r in rows if r["suite"] in pick]
            if not sel:
                vals.append(None)
                continue
            s = summarize(sel)
            vals.append((s["success_rate"], s["ci95"][0], s["ci95"][1]))
        series[label] = vals
    return [LABELS.get(c, c) for c in cats], series


def plot_bars(
    path: str | Path,
    categories: Sequence[str],
    series: Mapping[str, Sequence[tuple[float, float, float] | None]],
    title: str,
    ylabel: str = "success rate (%)",
) -> Path:
    """Grouped bar chart, one group per category and one bar per series, Wilson CI error bars. -> png path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not categories:
        raise ValueError(f"nothing to plot for {title!r}: no categories")
    n = max(len(series), 1)
    width = 0.8 / n
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(categories) + 2), 4.0))
    x = np.arange(len(categories))
    for i, (label, vals) in enumerate(series.items()):
        rate = np.array([v[0] if v else np.nan for v in vals]) * 100
        lo = np.clip(np.array([v[0] - v[1] if v else 0 for v in vals]) * 100, 0, None)
        hi = np.clip(np.array([v[2] - v[0] if v else 0 for v in vals]) * 100, 0, None)
        pos = x - 0.4 + width * (i + 0.5)
        ax.bar(pos, np.nan_to_num(rate), width, yerr=[lo, hi], capsize=3, label=label)
        for p, r, h in zip(pos, rate, hi, strict=True):
            y = 1 if np.isnan(r) else r + h + 1
            ax.text(p, y, "n/a" if np.isnan(r) else f"{r:.0f}", ha="center", fontsize=7)
    ax.set_xticks(x, categories, rotation=15, ha="right")
    ax.set_ylim(0, 110)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def _ci(ci) -> str:
    return f"[{100 * ci[0]:.0f}, {100 * ci[1]:.0f}]"


def _slots(s: Mapping) -> str:
    """``robot 98/100 · block 80/95 · goal 75/90``: exact-cell / within-one % per plan slot."""
    ex, w1 = s["plan_slot_exact"], s["plan_slot_within1"]
    return " · ".join(f"{k} {100 * ex[k]:.0f}/{100 * w1[k]:.0f}" for k in ex)


def summary_table(tables: Mapping) -> list[str]:
    """Markdown lines: one row per suite + overall for one policy's result tables (with a plan-slot column,
    exact cell / within one cell %, when the policy writes grounded plans)."""
    rows = list(tables["per_suite"].items()) + [("**overall**", tables["overall"])]
    slotted = any("plan_slot_exact" in s for _, s in rows)
    head = "| suite | success % | 95 % CI | n | mean steps | invalid | control Hz |"
    lines = [head + (" plan slots, exact / within one % |" if slotted else ""), "|---|---|---|---|---|---|---|"]
    lines[1] += "---|" if slotted else ""
    for name, s in rows:
        hz = "–" if s["control_hz"] is None else f"{s['control_hz']:.1f}"
        line = (
            f"| {name} | {_pct(s['success_rate'])} | {_ci(s['ci95'])} | {s['n']} | {s['mean_steps']:.1f} | "
            f"{s['invalid_actions']} | {hz} |"
        )
        if slotted:
            line += f" {_slots(s) if 'plan_slot_exact' in s else '–'} |"
        lines.append(line)
    return lines


def write_report(out: str | Path, info: Mapping) -> Path:
    """report.md: run metadata, per-suite and per-task tables per policy, paired A/B, plots and videos."""
    out = Path(out)
    meta = info["meta"]
    lines = [
        "# rt2 evaluation report",
        "",
        f"- command: `{meta['command']}`",
        f"- policies: {', '.join(f'`{p}`' for p in meta['policies'])}; seed {meta['seed']}; "
        f"{episodes_text(meta)}; {meta['max_steps']}-step cap; {meta['num_envs']} parallel envs",
        f"- rt2 {meta['rt2_version']}, git commit {meta.get('git_commit') or 'unknown'}; wall time {meta['wall_time_s']:.0f} s",
        "- invalid actions: counted, and executed as a zero action (the episode continues); see `eval_info.json`",
        "",
    ]
    for plot in info.get("plots", []):
        lines += [f"![{plot['title']}]({os.path.relpath(plot['path'], out)})", ""]
    for label, tables in info["results"].items():
        lines += [f"## {label}", ""] + summary_table(tables) + [""]
        lines += [
            "<details><summary>per task</summary>",
            "",
            "| suite | task | success % | 95 % CI | n | mean steps | invalid | plan acc. % |",
        ]
        lines += ["|---|---|---|---|---|---|---|---|"]
        for t in tables["per_task"]:
            lines.append(
                f"| {t['suite']} | {t['task']} | {_pct(t['success_rate'])} | {_ci(t['ci95'])} | {t['n']} | "
                f"{t['mean_steps']:.1f} | {t['invalid_actions']} | {_pct(t.get('plan_accuracy'))} |"
            )
        lines += ["", "</details>", ""]
    if info.get("paired"):
        p = info["paired"]
        lines += [f"## Paired A/B: {p['a']} − {p['b']} ({p['method']})", ""]
        lines += [
            "| suite | A % | B % | A − B (pp) | 95 % CI (pp) | A only | B only | n |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, d in list(p["per_suite"].items()) + [("**overall**", p["overall"])]:
            lines.append(
                f"| {name} | {_pct(d['rate_a'])} | {_pct(d['rate_b'])} | {100 * d['diff']:+.1f} | "
                f"[{100 * d['ci95'][0]:+.1f}, {100 * d['ci95'][1]:+.1f}] | {d['a_only']} | {d['b_only']} | {d['n']} |"
            )
        lines.append("")
    if info.get("videos"):
        lines += ["## Rollout videos", ""]
        for v in info["videos"]:
            mark = "success" if v["success"] else "failure"
            rel = os.path.relpath(v["path"], out)
            who = f"{v['policy']} " if v.get("policy") else ""
            lines.append(f"- {who}{v['suite']}/{v['task']} #{v['index']} ({mark}): [{v['instruction']}]({rel})")
        lines.append("")
    return atomic_write_bytes(out / "report.md", "\n".join(lines).encode())
