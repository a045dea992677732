"""MODEL_CARD.md for a policy checkpoint, written from data: the checkpoint, its training record, its evaluations.

    from rt2.eval.modelcard import write_model_card
    write_model_card("runs/cft/final", ["runs/eval_final/eval_info.json"])       # -> runs/cft/final/MODEL_CARD.md

    python -m rt2.eval.modelcard runs/cft/final --eval-info runs/eval_final/eval_info.json   # ~2 s
    python -m rt2.eval.modelcard runs/cft/final --eval-info E.json --vqa-info runs/vqa/vqa_info.json   # + web VQA

Sections: model details (read from the checkpoint: backbone, parameters, action space and vocabulary, frames,
image size, sha256 of the weights), intended use, training (``training_info``: a dict, a JSON path, or by default
the ``training.json`` that ``rt2 train`` writes into its export: regime, init, mixture weights, steps x batch,
optimizer, precision, seed), evaluation (every ``eval_info.json``: protocol, per-suite success with Wilson 95 %
CIs, pooled seen / unseen / emergent averages), web knowledge (every ``rt2 vqa`` vqa_info.json: held-out accuracy
per task type against chance), and known failure modes computed from the episodes (weakest suites
and tasks, tasks never solved, invalid-action counts, how far failed episodes ended from their goal, chain-of-
thought plan accuracy). Nothing in the card is typed by hand, so it cannot drift from the numbers.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import rt2
from rt2.eval.report import FIG7A_SUITES, LABELS, UNSEEN_SUITES, atomic_write_bytes, episodes_text
from rt2.eval.stats import wilson

GROUPS = (("seen", ("seen",)), ("unseen average", UNSEEN_SUITES), ("emergent average", FIG7A_SUITES))


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _ci(lo: float, hi: float) -> str:
    return f"[{100 * lo:.0f}, {100 * hi:.0f}]"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _load_json(path: str | Path, what: str) -> Any:
    p = Path(path)
    try:
        return json.loads(p.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} {p} does not exist") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{what} {p} is not valid JSON: {e}") from e


def model_section(policy_dir: Path) -> list[str]:
    from rt2.policy import Policy

    meta = Policy.from_pretrained(policy_dir).metadata()
    weights = policy_dir / "backbone" / "model.safetensors"
    space = meta["action_space"]
    size_mb = sum(f.stat().st_size for f in policy_dir.rglob("*") if f.is_file()) / 2**20
    rows = [
        ("backbone", f"`{meta['model']}` ({meta['backbone_family']})"),
        ("parameters", f"{meta['num_parameters'] / 1e6:.2f} M"),
        ("action space", f"{space.get('name', '?')}: `{space['text_format']}`, integer ranges {space['value_ranges']}"),
        ("action tokens", f"`{meta['action_vocab']}` vocabulary, constrained decoding"),
        ("observation", f"{meta['n_frames']} frame(s) of {meta['image_size'][1]}x{meta['image_size'][0]} RGB"),
        ("prompt", f"`{meta['prompt_format']}`"),
        ("checkpoint", f"{size_mb:.1f} MB; weights sha256 `{_sha256(weights)[:16]}`"),
        ("written by", f"rt2 {rt2.__version__}"),
    ]
    return ["## Model details", "", "| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows] + [""]


def training_section(info: Mapping[str, Any] | None) -> list[str]:
    lines = ["## Training", ""]
    if not info:
        return lines + ["No training record was given (`training.json` missing); the numbers below are eval only.", ""]
    cfg, data = dict(info.get("config") or {}), dict(info.get("data") or {})
    steps = int(info.get("step") or cfg.get("steps") or 0)
    batch = int(cfg.get("batch_size") or 0) * int(cfg.get("grad_accum") or 1)
    weights = data.get("weights") or {}
    rows = [
        ("regime", data.get("regime", "?")),
        ("initialized from", data.get("init") or "random init"),
        ("data mixture (sampling weights)", ", ".join(f"{k} {v:g}" for k, v in weights.items()) or "?"),
        ("robot share of each batch", cfg.get("robot_share", "?")),
        ("budget", f"{steps} steps x {batch} examples = {steps * batch:,} examples" if batch else f"{steps} steps"),
        ("optimizer", f"AdamW lr {cfg.get('lr', '?')}, weight decay {cfg.get('weight_decay', '?')}, "
         f"warm-up {cfg.get('warmup_steps', '?')} steps, grad clip {cfg.get('grad_clip', '?')}"),
        ("precision / seed", f"{cfg.get('precision', '?')} / {cfg.get('seed', '?')}"),
    ]  # fmt: skip
    known = {"step", "config", "data"}
    rows += [(k, json.dumps(v) if not isinstance(v, str) else v) for k, v in info.items() if k not in known]
    rows += [(f"data: {k}", json.dumps(v)) for k, v in data.items() if k not in ("regime", "init", "weights")]
    return lines + ["| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows] + [""]


def _suite_rows(tables: Mapping[str, Any]) -> list[str]:
    out = [
        "| suite | success % | Wilson 95 % CI | episodes | mean steps | invalid actions |",
        "|---|---|---|---|---|---|",
    ]
    for name, s in tables["per_suite"].items():
        out.append(
            f"| {LABELS.get(name, name)} | {_pct(s['success_rate'])} | {_ci(*s['ci95'])} | {s['n']} | "
            f"{s['mean_steps']:.1f} | {s['invalid_actions']} |"
        )
    for label, members in GROUPS:
        sel = [tables["per_suite"][m] for m in members if m in tables["per_suite"]]
        if len(sel) > 1:
            k, n = sum(s["successes"] for s in sel), sum(s["n"] for s in sel)
            out.append(f"| **{label}** (pooled) | {_pct(k / n)} | {_ci(*wilson(k, n))} | {n} | | |")
    o = tables["overall"]
    out.append(f"| **overall** | {_pct(o['success_rate'])} | {_ci(*o['ci95'])} | {o['n']} | {o['mean_steps']:.1f} | "
               f"{o['invalid_actions']} |")  # fmt: skip
    return out


def failure_modes(tables: Mapping[str, Any], episodes: Sequence[Mapping[str, Any]], k: int = 3) -> list[str]:
    """Bullets computed from one policy's result tables and episode rows."""
    lines = []
    suites = sorted(tables["per_suite"].items(), key=lambda kv: kv[1]["success_rate"])
    suites = [(n, s) for n, s in suites if s["successes"] < s["n"]]
    if suites:
        weakest = ", ".join(f"{LABELS.get(n, n)} {_pct(s['success_rate'])} % {_ci(*s['ci95'])}" for n, s in suites[:k])
        lines.append(f"- Weakest suites: {weakest}.")
    else:
        lines.append("- Every evaluated episode succeeded; no failure mode was observed at this sample size.")
    tasks = sorted(tables["per_task"], key=lambda t: (t["success_rate"], -t["n"]))
    n_tasks = len(tasks)
    tasks = [t for t in tasks if t["successes"] < t["n"]]
    if tasks:
        weakest_t = ", ".join(f"{t['suite']}/{t['task']} {t['successes']}/{t['n']}" for t in tasks[:k])
        lines.append(f"- Weakest tasks: {weakest_t}.")
    never = [f"{t['suite']}/{t['task']}" for t in tasks if t["successes"] == 0 and t["n"] > 0]
    if never:
        lines.append(f"- Never solved ({len(never)} of {n_tasks} tasks): {', '.join(never)}.")
    o = tables["overall"]
    steps = sum(int(e["steps"]) for e in episodes)
    if o["invalid_actions"]:
        bad = [
            f"{LABELS.get(n, n)} {s['invalid_actions']}" for n, s in tables["per_suite"].items() if s["invalid_actions"]
        ]
        lines.append(
            f"- Invalid actions: {o['invalid_actions']} of {steps} steps ({100 * o['invalid_rate']:.2f} %), "
            f"executed as zero motion: {', '.join(bad)}."
        )
    else:
        lines.append(f"- Invalid actions: none in {steps} steps.")
    failed = [e for e in episodes if not e["success"]]
    if failed:
        dist = sorted(100 * float(e["final_distance"]) for e in failed)
        capped = sum(1 for e in failed if int(e["steps"]) >= int(e.get("max_steps", 0) or 0))
        near = sum(1 for d in dist if d < 5.0)
        lines.append(
            f"- Failed episodes ({len(failed)}): median final distance to the goal {dist[len(dist) // 2]:.1f} cm; "
            f"{near} ended within 5 cm (near misses) and {len(failed) - near} further away"
            + (f"; {capped} hit the step cap" if capped else "")
            + "."
        )
    for name, s in tables["per_suite"].items():
        if s.get("plan_accuracy") is not None:
            lines.append(
                f"- Chain of thought ({LABELS.get(name, name)}): plan correct in {_pct(s['plan_accuracy'])} % "
                f"{_ci(*s['plan_ci95'])} of episodes."
            )
    return lines


def evaluation_section(path: Path, info: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """-> (evaluation lines, failure-mode lines) for one eval_info.json."""
    meta = info["meta"]
    lines = [
        f"### `{path}`",
        "",
        f"- command: `{meta['command']}`",
        f"- {episodes_text(meta)}, seed {meta['seed']}, {meta['max_steps']}-step cap, "
        f"10 Hz; rt2 {meta['rt2_version']}, git commit {meta.get('git_commit') or 'unknown'}, "
        f"finished {meta.get('finished_at', '?')}",
        "",
    ]
    fails = []
    for label, tables in info["results"].items():
        eps = info.get("episodes", {}).get(label, [])
        eps = [{**e, "max_steps": meta["max_steps"]} for e in eps]
        lines += [f"**{label}**", ""] + _suite_rows(tables) + [""]
        fails += [f"**{label}** (`{path}`):", ""] + failure_modes(tables, eps) + [""]
    return lines, fails


def vqa_section(path: Path, info: Mapping[str, Any]) -> list[str]:
    """Lines of the "Web knowledge" section for one ``rt2 vqa`` vqa_info.json: what the policy still answers of its
    web corpus after robot training (RT-2's reason to co-fine-tune), per task type against chance."""
    from rt2.eval.vqa import is_vqa_info

    if not is_vqa_info(info):
        raise ValueError(f"{path} is not an rt2 vqa_info.json (no 'corpus'/'per_task'); write one with rt2 vqa")
    per_task, o = info["per_task"], info["overall"]
    above = sorted(t for t, r in per_task.items() if r["above_chance"])
    lines = [
        f"### `{path}`",
        "",
        f"- command: `{info.get('command', '?')}`; rt2 {info.get('rt2_version', '?')}, git commit "
        f"{info.get('git_commit') or 'unknown'}",
        f"- overall **{_pct(o['accuracy'])} %** {_ci(*o['ci95'])} of {o['n']} held-out items against "
        f"{_pct(o['chance'])} % chance; above chance (Wilson 95 % lower bound > chance) on {len(above)} of "
        f"{len(per_task)} task types",
        "",
        "| task type | items | accuracy % | Wilson 95 % CI | chance % | above chance |",
        "|---|---|---|---|---|---|",
    ]
    for task, r in sorted(per_task.items()):
        lines.append(
            f"| {task} | {r['n']} | {_pct(r['accuracy'])} | {_ci(*r['ci95'])} | {_pct(r['chance'])} | "
            f"{'yes' if r['above_chance'] else 'no'} |"
        )
    return lines + [""]


def write_model_card(
    policy_dir: str | Path,
    eval_info_paths: Sequence[str | Path],
    training_info: Mapping[str, Any] | str | Path | None = None,
    out: str | Path | None = None,
    vqa_info_paths: Sequence[str | Path] = (),
) -> Path:
    """Write ``MODEL_CARD.md`` (default: inside ``policy_dir``) and return its path. ``training_info``: a dict, a
    JSON path, or None for ``policy_dir/training.json`` (omitted from the card if that does not exist).
    ``vqa_info_paths``: ``rt2 vqa`` outputs for the "Web knowledge" section (omitted if empty)."""
    policy_dir = Path(policy_dir)
    if not eval_info_paths:
        raise ValueError("give at least one eval_info.json (rt2 eval --policy DIR --suite all --out OUT)")
    if training_info is None and (policy_dir / "training.json").is_file():
        training_info = policy_dir / "training.json"
    if isinstance(training_info, (str, Path)):
        training_info = _load_json(training_info, "training info")
    evals, fails = [], []
    for p in eval_info_paths:
        info = _load_json(p, "eval info")
        if not isinstance(info, dict) or "results" not in info or "meta" not in info:
            raise ValueError(f"{p} is not an rt2 eval_info.json (no 'results'/'meta'); write one with rt2 eval")
        e, f = evaluation_section(Path(p), info)
        evals += e
        fails += f
    web = [line for p in vqa_info_paths for line in vqa_section(Path(p), _load_json(p, "vqa info"))]
    lines = [
        f"# Model card: {policy_dir.name}",
        "",
        "An RT-2-style vision-language-action policy (Brohan et al. 2023): a vision-language model whose answers are "
        "robot actions written as text tokens, trained with rt2 for the rt2 tabletop world (a re-implementation of "
        "Language-Table: push blocks on a board, 2-D end-effector deltas in `X Y` units of 1 cm).",
        "",
    ]
    lines += model_section(policy_dir)
    lines += [
        "## Intended use",
        "",
        "- Research and teaching: the RT-2 recipe end to end on a laptop CPU (`rt2 demo`, `rt2 eval`, `rt2 serve`).",
        "- Out of scope: real robots. It has only seen rendered 72x96 images of the simulated board; its actions "
        "are safe only inside that simulator's limits.",
        "",
    ]
    lines += training_section(training_info)
    lines += ["## Evaluation", "", "Closed loop in the rt2 tabletop world (`rt2 eval`); success with Wilson 95 % "
              "confidence intervals; the pooled rows add the episodes of their suites.", ""] + evals  # fmt: skip
    if web:
        lines += [
            "## Web knowledge (held-out VQA)",
            "",
            "Questions of the synthetic web corpus's held-out split "
            "(`rt2 vqa`), answered by free decoding; chance = the best constant answer per task type.",
            "",
        ]
        lines += web
    lines += ["## Known failure modes", "", "Computed from the evaluation episodes above.", ""] + fails
    lines += [
        "## How to use",
        "",
        "```bash",
        "rt2 demo                      # this policy on seen and emergent tasks, with a video (< 2 min)",
        "rt2 eval --suite all --episodes 20 --out runs/eval",
        "rt2 serve                     # websocket policy server on 127.0.0.1:8000",
        "```",
        "",
        "```python",
        "from rt2.policy import Policy",
        "from rt2.policy.default import default_policy_dir",
        "policy = Policy.from_pretrained(default_policy_dir())",
        'action = policy.predict_action([frame], "push the red star to the left")   # float32[2], metres',
        'text = policy.answer([frame], "what colour is the star?")                  # free decoding',
        "```",
        "",
    ]
    target = Path(out) if out is not None else policy_dir / "MODEL_CARD.md"
    return atomic_write_bytes(target, "\n".join(lines).encode())


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rt2.eval.modelcard", description=__doc__.split("\n")[0])
    p.add_argument("policy_dir", help="a VLA.save_pretrained directory")
    p.add_argument("--eval-info", action="append", required=True, help="an eval_info.json (repeatable)")
    p.add_argument("--vqa-info", action="append", default=[], help="an rt2 vqa vqa_info.json (repeatable)")
    p.add_argument("--training-info", default=None, help="training JSON (default: POLICY_DIR/training.json)")
    p.add_argument("--out", default=None, help="output path (default: POLICY_DIR/MODEL_CARD.md)")
    args = p.parse_args(argv)
    try:
        path = write_model_card(args.policy_dir, args.eval_info, args.training_info, args.out, args.vqa_info)
    except (ValueError, FileNotFoundError) as e:
        print(f"modelcard: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
