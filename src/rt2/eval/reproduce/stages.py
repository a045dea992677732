"""The reproduction as data: :func:`plan` turns a :class:`Budget` into an ordered list of :class:`Stage`.

A stage is either a command line (``argv``: ``rt2 <command> ...``, run in this process or, with ``--jobs 2``, in a
child process of its own) or a small in-process step (``call``: the pre-trained VLM check, the report). Both are
built when the stage starts, not when the plan is made, because their arguments name models that earlier stages
write (``--init`` of a regime is the pre-training stage's output).

Order: the list is topological, and within that the most informative results come first (the co-fine-tune /
fine-tune pair, each followed by its evaluation), so an interrupted reproduction has the central comparison first.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rt2.eval.reproduce.budget import REGIMES, RT1_SAMPLES_PER_NANO_SAMPLE, Budget

DATA = "data/robot"
# CPU-minutes per unit at one thread on this 2-core machine, measured (pali-nano, batch 32): collect 244 s for
# 4,000 episodes; pretrain ~110 samples/s (docs/results/pretrain); the control preset ~110 samples/s
# (docs/results/control); eval 1,107 direct-policy episodes in ~10 CPU-min; vqa 4,600 items in 52 s.
COST_MIN = {
    "collect_per_episode": 244 / 60 / 4000,
    "step_per_sample": {"pali-nano": 1 / 110 / 60, "pali-tiny": 6 / 110 / 60, "pali-small": 24 / 110 / 60},
    "rt1_per_sample": 1 / (110 * RT1_SAMPLES_PER_NANO_SAMPLE) / 60,
    "eval_per_episode": 10 / 1107,
    "vqa_per_item": 52 / 60 / 4600,
    # rt2 pointing --items 300 --robot-episodes 100: 5,400 web + 3,010 robot-frame questions in 520 s (busy cores);
    # ~30 robot-frame questions per episode index over the emergent suites' tasks.
    "pointing_per_question": 520 / 60 / 8410,
    "pointing_robot_questions_per_episode": 3010 / 100,
}
# Regimes in the order they are scheduled (see the module doc); the report lists them in REGIMES order.
RUN_ORDER = ("cofinetune", "finetune", "scratch")


@dataclass(frozen=True)
class Stage:
    """One step: ``argv(out, fresh)`` (an ``rt2`` command line) or ``call(out, fresh)``; ``valid(out)`` says
    whether its output is complete. ``fresh``: an upstream stage ran in this invocation, so discard partial
    output (an interrupted training run is otherwise resumed)."""

    name: str
    valid: Callable[[Path], bool]
    describe: str
    needs: tuple[str, ...] = ()  # must finish first; re-run this stage whenever one of these ran in this invocation
    # The Budget fields this stage's output depends on (None = all): changing the eval episodes must not throw
    # away an hour of training. Upstream changes still propagate through ``needs``.
    keys: tuple[str, ...] | None = None
    argv: Callable[[Path, bool], list[str]] | None = None
    call: Callable[[Path, bool], None] | None = None
    heavy: bool = True  # a long single-threaded job (gets --num-threads 1 and a lane of its own in parallel runs)
    cost_min: float = 0.0  # estimated CPU-minutes at one thread (COST_MIN), for the plan's stated budget

    def fingerprint(self, b: Budget) -> dict:
        d = dataclasses.asdict(b)
        return json.loads(json.dumps(d if self.keys is None else {k: d[k] for k in self.keys}))


def find_model(directory: Path) -> Path | None:
    """The Policy-loadable folder under a training output (itself, ``final/``, or the newest ``*/vla.json``)."""
    directory = Path(directory)
    for cand in (directory, directory / "final"):
        if (cand / "vla.json").is_file() or (cand / "rt1.json").is_file():
            return cand
    hits = sorted(directory.glob("**/vla.json"), key=lambda p: p.stat().st_mtime) if directory.is_dir() else []
    return hits[-1].parent if hits else None


def pretrained_model(directory: Path) -> Path | None:
    """``directory`` or its ``final/`` when it holds a VLM; unlike :func:`find_model` never a model found deeper
    (a whole reproduction folder is not "a pre-trained VLM")."""
    return next((d for d in (directory, directory / "final") if (d / "vla.json").is_file()), None)


def model_dir(out: Path, b: Budget, name: str) -> Path:
    """The Policy-loadable folder of model ``name`` (``pretrain-<size>``, ``<regime>-<size>``, ``rt1``) of a run."""
    given = b.pretrained_dirs()
    size = name.removeprefix("pretrain-")
    if name.startswith("pretrain-") and size in given:
        found = pretrained_model(Path(given[size]))
    else:
        found = find_model(out / "models" / name)
    if found is None:
        raise RuntimeError(f"no trained model for {name} (no vla.json): run its stage first")
    return found


def check_pretrained(directory: Path, size: str) -> None:
    """--pretrained must be a VLM of the size it stands for (scratch is built at that size: a fair ablation)."""
    found = pretrained_model(directory)
    if found is None:
        raise RuntimeError(
            f"--pretrained {directory}: no vla.json there or in final/; give an `rt2 pretrain` --out dir"
        )
    record = found / "training.json"
    model = json.loads(record.read_text()).get("config", {}).get("model") if record.is_file() else None
    if model is not None and model != size:
        raise RuntimeError(f"--pretrained {directory} is a {model} VLM but this budget trains {size}")


def resume_flag(run_dir: Path, fresh: bool) -> list[str]:
    """Training stages: continue an interrupted run bit-exactly (``--resume``) unless its inputs changed, in
    which case the old run directory is discarded."""
    if fresh and run_dir.exists():
        shutil.rmtree(run_dir)
    return ["--resume"] if (run_dir / "checkpoints" / "latest").exists() else []


def eval_valid(path: Path) -> bool:
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and "results" in info and "episodes" in info


def vqa_valid(path: Path) -> bool:
    from rt2.eval.vqa import is_vqa_info

    try:
        return is_vqa_info(json.loads(path.read_text()))
    except (OSError, ValueError):
        return False


def pointing_valid(path: Path) -> bool:
    """A finished ``rt2 pointing`` output: per-type rows for web items and the suites' frames."""
    try:
        info = json.loads(path.read_text())
        return isinstance(info["web"]["per_type"], dict) and isinstance(info["robot_frames"]["per_type"], dict)
    except (OSError, ValueError, KeyError, TypeError):
        return False


def policies(b: Budget) -> list[str]:
    """Every evaluated policy: the regimes per size, the size axis, the baseline and the scripted oracle."""
    out = [f"{r}-{s}" for s in b.sizes for r in REGIMES]
    out += [f"cofinetune-{s}" for s in b.size_axis if s not in b.sizes]
    return out + (["rt1"] if b.baseline else []) + ["oracle"]


def vlms(b: Budget) -> list[str]:
    """Every model that answers web questions: the pre-trained VLMs and each VLA regime (not RT-1, not the oracle)."""
    out = [m for s in b.sizes for m in (f"pretrain-{s}", *(f"{r}-{s}" for r in REGIMES))]
    return out + [m for s in b.size_axis if s not in b.sizes for m in (f"pretrain-{s}", f"cofinetune-{s}")]


def plan(budget: Budget, quiet: bool = False) -> list[Stage]:
    """The pipeline for ``budget`` as a list of stages (topological order)."""
    b = budget
    warmup = str(max(1, min(100, b.train_steps // 10)))
    progress = ["--no-progress"] if quiet else []
    common = ["--batch-size", str(b.batch_size), "--warmup-steps", warmup, *progress]
    tok = ["--tokenizer-corpus", str(b.tokenizer_corpus)]
    train_keys = ("train_steps", "batch_size", "tokenizer_corpus", "grounding_weight", "train_lr", "train_preset",
                  "action_format")  # fmt: skip
    eval_keys = ("suites", "eval_episodes", "suite_episodes", "max_steps", "num_envs", "videos")
    stages = [
        Stage(
            "collect",
            lambda out: (out / DATA / "meta" / "info.json").is_file(),
            f"{b.collect_episodes} oracle demonstrations",
            keys=("collect_episodes", "collect_noise"),
            argv=lambda out, fresh: [
                "collect",
                "--episodes",
                str(b.collect_episodes),
                "--noise",
                b.collect_noise,
                "--out",
                str(out / DATA),
                "--overwrite",
                *progress,
            ],  # fmt: skip
        )
    ]
    given = b.pretrained_dirs()
    for size in b.all_sizes:
        pre = f"models/pretrain-{size}"
        if size in given:
            stages.append(
                Stage(
                    f"pretrain-{size}",
                    lambda out, size=size: pretrained_model(Path(given[size])) is not None,
                    f"none: the pre-trained VLM {given[size]} is used as is",
                    keys=("pretrained",),
                    call=lambda out, fresh, size=size: check_pretrained(Path(given[size]), size),
                    heavy=False,
                )
            )
        else:
            stages.append(
                Stage(
                    f"pretrain-{size}",
                    lambda out, pre=pre: find_model(out / pre) is not None,
                    f"{size} on the web corpus, {b.pretrain_steps} steps",
                    keys=("pretrain_steps", "pretrain_lr", "batch_size", "tokenizer_corpus"),
                    argv=lambda out, fresh, pre=pre, size=size: [
                        "pretrain",
                        "--model",
                        size,
                        "--steps",
                        str(b.pretrain_steps),
                        "--lr",
                        str(b.pretrain_lr),
                        *common,
                        *tok,
                        *resume_flag(out / pre, fresh),
                        "--out",
                        str(out / pre),
                    ],  # fmt: skip
                )
            )
    trained = [(r, s) for s in b.sizes for r in RUN_ORDER]
    trained += [("cofinetune", s) for s in b.size_axis if s not in b.sizes]
    for regime, size in trained:
        dst = f"models/{regime}-{size}"

        def train_argv(out: Path, fresh: bool, regime=regime, dst=dst, size=size) -> list[str]:
            init = [] if regime == "scratch" else ["--init", str(model_dir(out, b, f"pretrain-{size}"))]
            return [
                "train", "--preset", b.train_preset, "--regime", regime, "--model", size, "--data", str(out / DATA),
                *init, "--steps", str(b.train_steps), "--grounding-weight", str(b.grounding_weight),
                *(["--lr", str(b.train_lr)] if b.train_lr > 0 else []),
                *(["--action-format", b.action_format] if b.action_format != "direct" else []),
                *common, *(tok if regime == "scratch" else []), *resume_flag(out / dst, fresh), "--out", str(out / dst),
            ]  # fmt: skip

        stages.append(
            Stage(
                f"train-{regime}-{size}",
                lambda out, dst=dst: find_model(out / dst) is not None,
                f"{regime} {size}, {b.train_steps} steps of the {b.train_preset} preset",
                ("collect",) if regime == "scratch" else ("collect", f"pretrain-{size}"),
                keys=train_keys,
                argv=train_argv,
            )
        )
        stages.append(_eval_stage(b, f"{regime}-{size}", (f"train-{regime}-{size}",), eval_keys, quiet))
    if b.baseline:
        stages.append(
            Stage(
                "train-rt1",
                lambda out: find_model(out / "models" / "rt1") is not None,
                f"the RT-1-style baseline (preset {b.baseline}) on the same robot data and CPU time, "
                f"{rt1_steps(b)} steps",
                ("collect",),
                keys=("train_steps", "batch_size", "baseline"),
                argv=lambda out, fresh: [
                    "train",
                    "--preset",
                    b.baseline,
                    "--regime",
                    "scratch",
                    "--data",
                    str(out / DATA),
                    "--steps",
                    str(rt1_steps(b)),
                    *common,
                    *resume_flag(out / "models" / "rt1", fresh),
                    "--out",
                    str(out / "models" / "rt1"),
                ],  # fmt: skip
            )
        )
        stages.append(_eval_stage(b, "rt1", ("train-rt1",), eval_keys, quiet))
    stages.append(_eval_stage(b, "oracle", (), eval_keys, quiet))
    for m in vlms(b):
        needs = (m,) if m.startswith("pretrain-") else (f"train-{m}",)
        vqa = ["--items", str(b.vqa_items)]
        stages.append(_probe_stage(b, "vqa", m, needs, f"held-out web VQA, {b.vqa_items} items", ("vqa_items",), vqa))
        point = ["--items", str(b.pointing_items), "--robot-episodes", str(b.pointing_episodes)]
        what = f"pointing per referent type, {b.pointing_items} web items per type, {b.pointing_episodes} frames per "
        stages.append(_probe_stage(b, "pointing", m, needs, what + "emergent task",
                                   ("pointing_items", "pointing_episodes"), point))  # fmt: skip
    from rt2.eval.reproduce.summary import write_summary

    pols, models = policies(b), vlms(b)
    stages.append(
        Stage(
            "report",
            lambda out: (out / "report.md").is_file(),
            "tables, paired comparisons, targets and figures",
            tuple(f"eval-{p}" for p in pols) + tuple(f"{k}-{m}" for m in models for k in ("vqa", "pointing")),
            call=lambda out, fresh: write_summary(out, pols, b, models),
            heavy=False,
        )
    )
    return [dataclasses.replace(st, cost_min=stage_cost(st.name, b)) for st in stages]


def rt1_steps(b: Budget) -> int:
    """The RT-1 baseline's steps: the CPU time of one pali-nano regime (RT1_SAMPLES_PER_NANO_SAMPLE)."""
    return max(1, round(b.train_steps * RT1_SAMPLES_PER_NANO_SAMPLE))


def stage_cost(name: str, b: Budget) -> float:
    """Estimated CPU-minutes of stage ``name`` at one thread (COST_MIN); 0 for the in-process steps."""
    per = COST_MIN["step_per_sample"]
    if name == "collect":
        return b.collect_episodes * COST_MIN["collect_per_episode"]
    if name.startswith("pretrain-") and name.removeprefix("pretrain-") not in b.pretrained_dirs():
        return b.pretrain_steps * b.batch_size * per.get(name.removeprefix("pretrain-"), per["pali-nano"])
    if name == "train-rt1":
        return rt1_steps(b) * b.batch_size * COST_MIN["rt1_per_sample"]
    if name.startswith("train-"):
        return b.train_steps * b.batch_size * per.get(name.split("-", 2)[2], per["pali-nano"])
    if name.startswith("eval-"):
        return len(b.suites) * max(b.suite_episodes, 5 * b.eval_episodes) * COST_MIN["eval_per_episode"]
    if name.startswith("vqa-"):
        return b.vqa_items * COST_MIN["vqa_per_item"]
    if name.startswith("pointing-"):
        from rt2.data.web.referents import REFERENT_TYPES

        questions = b.pointing_items * len(REFERENT_TYPES)
        questions += b.pointing_episodes * COST_MIN["pointing_robot_questions_per_episode"]
        return questions * COST_MIN["pointing_per_question"]
    return 0.0


def estimate(stages: list[Stage], jobs: int) -> tuple[float, float]:
    """(CPU-minutes, wall minutes) of running ``stages`` with ``jobs`` lanes, simulating the scheduler: a stage
    starts in plan order once what it needs has finished and a lane is free."""
    done: dict[str, float] = {}
    lanes = [0.0] * max(1, jobs)
    for st in stages:
        ready = max((done.get(n, 0.0) for n in st.needs), default=0.0)
        i = min(range(len(lanes)), key=lambda k: max(lanes[k], ready))
        start = max(lanes[i], ready)
        done[st.name] = lanes[i] = start + st.cost_min
    return sum(st.cost_min for st in stages), max(done.values(), default=0.0)


def _probe_stage(
    b: Budget, command: str, m: str, needs: tuple[str, ...], describe: str, keys: tuple[str, ...], args: list[str]
) -> Stage:
    """``rt2 vqa`` / ``rt2 pointing`` of VLM ``m`` into ``<command>/<m>/`` (what the model knows of the web)."""
    info = f"{command}_info.json"
    valid = vqa_valid if command == "vqa" else pointing_valid
    return Stage(
        f"{command}-{m}",
        lambda out: valid(out / command / m / info),
        describe,
        needs,
        keys=keys,
        argv=lambda out, fresh: [
            command,
            "--policy",
            str(model_dir(out, b, m)),
            *args,
            "--out",
            str(out / command / m),
            "--quiet",
        ],  # fmt: skip
    )


def _eval_stage(b: Budget, pol: str, needs: tuple[str, ...], keys: tuple[str, ...], quiet: bool) -> Stage:
    def argv(out: Path, fresh: bool) -> list[str]:
        spec = "oracle" if pol == "oracle" else str(find_model(out / "models" / pol))
        return [
            "eval", "--policy", spec, "--suite", ",".join(b.suites), "--episodes", str(b.eval_episodes),
            "--suite-episodes", str(b.suite_episodes), "--num-envs", str(b.num_envs), "--max-steps", str(b.max_steps),
            "--videos", str(b.videos), "--out", str(out / "eval" / pol), "--quiet",
        ]  # fmt: skip

    return Stage(
        f"eval-{pol}",
        lambda out: eval_valid(out / "eval" / pol / "eval_info.json"),
        f"{len(b.suites)} suites, {b.eval_episodes} episodes per task"
        + (f", >= {b.suite_episodes} per suite" if b.suite_episodes else ""),
        needs,
        keys=keys,
        argv=argv,
    )
