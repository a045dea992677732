"""What each training regime reads: the tokenizer corpus, the model to start from, and the example mixture.

=============  ==========================  =====================================================================
regime         model                       examples (``rt2.data.mixture.MixtureSampler`` sources and weights)
=============  ==========================  =====================================================================
pretrain       fresh (tokenizer trained)   ``web`` only (our stand-in for web-scale VLM pre-training)
scratch        fresh (tokenizer trained)   ``robot`` only (the "no web knowledge" ablation); see below
finetune       ``--init`` (pretrained)     ``robot`` only; see below
cofinetune     ``--init`` (pretrained)     ``robot`` / ``robot_aux`` / ``web`` = robot_share / 10 % / rest;
                                           with ``point_share`` > 0 also ``robot_point`` (taken from the web share)
=============  ==========================  =====================================================================

With ``point_share`` > 0 (the grounded ``control`` recipe) on tabletop data, scratch and finetune keep the
in-domain rows too: ``robot_aux`` 10 % and ``robot_point`` ``point_share``, with ``robot`` taking the rest (the
web's share). Why: those rows are derived from the robot dataset (its ``observation.environment_state``), not
from the web, so RT-2's ablation (web data or not) must keep them; dropping them as well would confound "no web
knowledge" with "no grounding supervision", which issue 14 measured to be what makes control learnable.

``robot_point`` (``rt2.data.robot`` task ``aux_point``) asks "where is the <block>?" on robot frames about the
blocks the instruction names: the in-domain pointing of the grounded recipe (preset ``control``).

Bring your own data. ``--data`` may be any robot's LeRobot v3.0 dataset: ``rt2.data.robot_columns`` maps its
cameras and action column (float actions become 256 bins over q01..q99 with the dataset's NormStats, which the
model then carries); a model from ``--init`` gets that action codec swapped in (:func:`adapt_action_codec`).
Other robots have no board geometry, so ``robot_aux`` holds only the two-frame questions (history >= 2) and is
absent with one frame. ``--web-data PATH[:WEIGHT]`` adds a ``rt2.data.vqa_files.JsonlVQA`` folder as a source
named after the folder: the *web share* of each batch (all of it in ``pretrain``; what ``robot_share`` and the
aux 10 % leave in ``cofinetune``) is split between the built-in corpus (weight ``synthetic_web_weight``, default
1; 0 drops it) and each folder (its WEIGHT, default 1) in proportion to the weights. Example: cofinetune with
``robot_share`` 0.5 and ``--web-data vqa:3`` gives robot 0.5, robot_aux 0.1, web 0.1, vqa 0.3.

The tokenizer is trained on the web corpus text plus every instruction template of the simulated tasks and the
prompt formats (``rt2.data.prompts``), so robot prompts tokenize into known pieces even though pre-training
never sees a robot episode.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

RESERVED_SOURCES = ("robot", "robot_aux", "robot_point", "web")

REGIMES = ("pretrain", "scratch", "finetune", "cofinetune")


def instruction_corpus(n_scenes: int = 40, seed: int = 0) -> list[str]:
    """Instruction strings of every task family on ``n_scenes`` sampled scenes, all languages / splits, plus
    the action and chain-of-thought prompt wrappers and plan sentences."""
    from rt2.data.prompts import action_prompt, cot_prompt
    from rt2.sim import instructions, tasks
    from rt2.sim.scene import SceneConfig, sample_scene

    rng = np.random.default_rng([seed, 7])
    out: list[str] = []
    configs = [SceneConfig.preset(name) for name in ("language_table", "emergent")]
    for i in range(n_scenes):
        scene = sample_scene(configs[i % len(configs)], rng)
        for family in tasks.FAMILIES:
            spec = tasks.sample_task(family, scene, rng)
            if spec is None:
                continue
            for lang in getattr(instructions, "LANGUAGES", ("en",)):
                for split in getattr(instructions, "SPLITS", ("train",)):
                    try:
                        texts = instructions.enumerate_instructions(spec, scene, lang, split)
                    except ValueError:
                        continue
                    picks = rng.choice(len(texts), size=min(8, len(texts)), replace=False) if texts else []
                    out += [texts[int(k)] for k in picks]
            try:
                plan = instructions.plan_text(spec, scene)
                out += [cot_prompt(plan) + " " + plan + " Action: 3 -7"]
            except (ValueError, KeyError):
                pass
    out += [action_prompt(t) for t in out[: len(out) // 2]]
    return out


def tokenizer_corpus(n_web: int = 5000, n_scenes: int = 40, seed: int = 0) -> list[str]:
    """Web questions/answers (``n_web`` items, all tasks and languages) + :func:`instruction_corpus`."""
    from rt2.data.robot import AUX_TASKS  # noqa: F401  (the aux questions below are the robot module's)
    from rt2.data.web import WebCorpus, WebCorpusConfig

    web = WebCorpus(WebCorpusConfig(seed=seed + 1, size=max(n_web, 1)))
    texts = []
    for i in range(n_web):
        item = web.item(i)
        texts.append(f"{item.prompt} {item.target}")
    texts += [
        "Q: where is the robot? A:",
        "Q: what instruction was the robot following? A:",
        "Q: how many steps apart are these frames? A:",
        "Q: did the robot push the red moon to the blue star? A: yes no",
    ]
    return texts + instruction_corpus(n_scenes, seed)


def build_fresh_model(
    model: str, tokenizer: Any, n_frames: int, action_space: Any = "language_table", norm_stats_key: str | None = None
):
    """A randomly initialised VLA. ``tokenizer``: a trained ``rt2.models.TextTokenizer`` for the built-in
    backbones; None for HF backbones (they bring their own). ``action_space``: a preset name or an
    ActionTokenizer (e.g. ``RobotData.tokenizer``, whose NormStats are saved under ``norm_stats_key``)."""
    from rt2.models import VLA

    kw: dict[str, Any] = {"n_frames": n_frames, "action_space": action_space, "norm_stats_key": norm_stats_key}
    if model.startswith("hf"):
        return VLA.build(model, None, **kw)
    if tokenizer is None:
        raise ValueError(f"{model} needs a text tokenizer (TextTokenizer.train on tokenizer_corpus())")
    return VLA.build(model, tokenizer, **kw)


def pixel_stats(sources: dict[str, Any], weights: dict[str, float], seed: int, n: int = 256) -> dict[str, tuple]:
    """Per-channel mean/std in [0, 1] of ``n`` examples drawn from the training mixture itself (all their frames),
    for a fresh model's input normalization (``PaliBackbone.set_image_norm``). Drawn with a seed of its own, so
    the training stream is untouched. Frames are resized by the sources already; sizes may differ (web items)."""
    from rt2.data.mixture import MixtureSampler

    sampler = MixtureSampler(sources, weights, seed=seed + 7919, batch_size=min(32, n))
    px = [f.reshape(-1, 3) for _ in range(n) for f in sampler.next_example().images]
    flat = np.concatenate(px).astype(np.float64) / 255.0
    return {"image_mean": tuple(flat.mean(0).tolist()), "image_std": tuple(np.maximum(flat.std(0), 1e-3).tolist())}


def adapt_action_codec(vla: Any, action_tokenizer: Any, norm_stats_key: str | None):
    """``vla`` (e.g. from ``--init``) writing actions with ``action_tokenizer``: unchanged when it already does,
    else the same backbone with a new numeric ActionVocab (the integers 0..255 and -10..10 are text tokens)."""
    import dataclasses

    from rt2.actions import ActionVocab
    from rt2.models import VLA

    if vla.action_tokenizer.to_dict() == action_tokenizer.to_dict() and vla.config.norm_stats_key == norm_stats_key:
        return vla
    if vla.vocab.strategy != "numeric":
        raise ValueError(
            f"--init writes actions with a {vla.vocab.strategy!r} action vocab, which cannot be re-targeted to "
            f"this dataset's action space {list(action_tokenizer.space.names)}; pre-train with the numeric vocab"
        )
    vocab = ActionVocab.numeric(vla.backbone.tokenizer, action_tokenizer)
    config = dataclasses.replace(vla.config, norm_stats_key=norm_stats_key)
    return VLA(vla.backbone, action_tokenizer, vocab, config).train(vla.training)


def load_robot_data(data: str | Path | None, regime: str, columns: Any = None):
    """``rt2.data.robot_columns.RobotData`` of ``--data`` (any robot's LeRobot v3.0 dataset)."""
    from rt2.data.robot_columns import open_robot_dataset

    if data is None:
        raise ValueError(f"--regime {regime} needs --data DIR (a LeRobot v3.0 dataset, e.g. from `rt2 collect`)")
    if not Path(data).is_dir():
        raise FileNotFoundError(f"--data {data}: no such directory (create one with `rt2 collect --out {data}`)")
    return open_robot_dataset(data, columns)


def parse_web_data(spec: str) -> tuple[Path, float]:
    """``PATH[:WEIGHT]`` -> (path, weight); weight defaults to 1 and must be > 0."""
    head, sep, tail = spec.rpartition(":")
    path, weight = (head, tail) if sep and re.fullmatch(r"[0-9.eE+-]+", tail) else (spec, "1")
    try:
        w = float(weight)
    except ValueError:
        raise ValueError(f"--web-data {spec!r}: weight {weight!r} is not a number (PATH[:WEIGHT])") from None
    if not (np.isfinite(w) and w > 0):
        raise ValueError(f"--web-data {spec!r}: weight must be > 0, got {w}")
    return Path(path), w


def open_web_data(specs: Sequence[str | tuple[Any, float]], n_frames: int) -> list[tuple[Any, float]]:
    """(JsonlVQA, weight) per ``--web-data`` spec; source names must be distinct and not robot/robot_aux/web."""
    from rt2.data.vqa_files import JsonlVQA

    out: list[tuple[Any, float]] = []
    for spec in specs:
        src, w = parse_web_data(spec) if isinstance(spec, str) else spec
        vqa = src if isinstance(src, JsonlVQA) else JsonlVQA(src, n_frames=n_frames)
        taken = {v.source: v for v, _ in out}
        if vqa.source in RESERVED_SOURCES or vqa.source in taken:
            other = f"{taken[vqa.source].file}" if vqa.source in taken else "a built-in source"
            raise ValueError(
                f"--web-data {vqa.file}: source name {vqa.source!r} (the folder's name) clashes with {other}; "
                "rename the folder"
            )
        out.append((vqa, w))
    return out


def resolve_init(path: str | Path) -> Path:
    """``--init`` accepts a VLA export (has ``vla.json``) or a run directory (uses its ``final/``)."""
    p = Path(path)
    for cand in (p, p / "final"):
        if (cand / "vla.json").is_file():
            return cand
    raise FileNotFoundError(
        f"--init {p}: neither {p}/vla.json nor {p}/final/vla.json exists; pass the output of `rt2 pretrain` "
        "(its run directory or its final/ export)"
    )


def build_sources(
    regime: str,
    *,
    image_size: tuple[int, int],
    n_frames: int,
    data: str | Path | None,
    robot_share: float,
    seed: int,
    robot: Any = None,
    columns: Any = None,
    web_data: Sequence[str | tuple[Any, float]] = (),
    synthetic_web_weight: float = 1.0,
    point_share: float = 0.0,
    plan: tuple[float, float] | None = None,
) -> tuple[dict[str, Any], dict[str, float], dict]:
    """(sources, weights, info) for :class:`rt2.data.mixture.MixtureSampler`; ``info`` is JSON for the export.

    ``robot``: a loaded ``RobotData`` (else ``data`` is opened with ``columns``); ``web_data``: ``PATH[:WEIGHT]``
    strings or (JsonlVQA | path, weight) pairs; see the module doc for how the weights combine. ``plan``:
    ``(plan_dropout, plan_noise)`` writes robot rows as grounded plans (``rt2.data.plan``), except a
    ``plan_dropout`` share of direct-action rows."""
    from rt2.data.mixture import rt2_weights
    from rt2.data.web import WebCorpus, WebCorpusConfig

    if regime not in REGIMES:
        raise ValueError(f"regime must be one of {REGIMES}, got {regime!r}")
    if not (np.isfinite(synthetic_web_weight) and synthetic_web_weight >= 0):
        raise ValueError(f"--synthetic-web-weight must be >= 0, got {synthetic_web_weight}")
    info: dict[str, Any] = {"regime": regime}
    sources: dict[str, Any] = {}
    if regime in ("scratch", "finetune", "cofinetune"):
        from rt2.data.robot import PAIR_TASKS, RobotActions, RobotAux, RobotDataConfig

        robot = robot if robot is not None else load_robot_data(data, regime, columns)
        if n_frames % robot.n_cameras:
            raise ValueError(
                f"{robot.n_cameras} cameras {list(robot.columns.image_keys)} need frames per observation to be a "
                f"multiple of {robot.n_cameras} (cameras x history steps); the model takes {n_frames} (--frames)"
            )
        history = n_frames // robot.n_cameras
        if robot.tabletop:
            aux = ("aux_effector",) if history < 2 else RobotDataConfig().aux_tasks
            rcfg = RobotDataConfig(n_frames=history, seed=seed, aux_tasks=aux)
            if plan is not None:
                rcfg = dataclasses.replace(
                    rcfg, cot_fraction=1.0 - plan[0], plan_format="grounded", plan_noise=float(plan[1])
                )
                info["action_format"] = {"format": "plan", "plan_dropout": plan[0], "plan_noise": plan[1]}
        elif plan is not None:
            raise ValueError("the plan action format needs tabletop data (task specs and grounding targets)")
        else:  # no board geometry; the tabletop's web-only concept control does not apply to another robot
            aux = PAIR_TASKS if history >= 2 else ()
            rcfg = RobotDataConfig(n_frames=history, seed=seed, aux_tasks=aux, on_web_only="keep")
        sources["robot"] = RobotActions(robot.episodes, rcfg, action_space=robot.tokenizer)
        info.update(robot.info, data=str(data or robot.info["dataset"]), robot_frames=len(sources["robot"]))
        # cofinetune always mixes the in-domain rows; the robot-only regimes only in the grounded recipe (module doc)
        if regime == "cofinetune" or (point_share > 0 and robot.tabletop):
            if aux:
                sources["robot_aux"] = RobotAux(robot.episodes, rcfg)
            else:
                info["robot_aux"] = "none: other robots' aux questions show two frames; use --frames 2 x cameras"
            if point_share > 0:
                if not robot.tabletop:
                    raise ValueError(
                        f"point_share {point_share}: in-domain pointing needs tabletop data (task specs and "
                        "observation.environment_state, as `rt2 collect` writes); use --set point_share=0"
                    )
                pcfg = dataclasses.replace(rcfg, aux_tasks=("aux_point",))
                sources["robot_point"] = RobotAux(robot.episodes, pcfg, source="robot_point")
    web_parts: dict[str, float] = {}
    if regime in ("pretrain", "cofinetune"):
        if synthetic_web_weight > 0:
            sources["web"] = WebCorpus(WebCorpusConfig(seed=seed, image_size=tuple(image_size), n_frames=n_frames))
            web_parts["web"] = float(synthetic_web_weight)
        for vqa, w in open_web_data(web_data, n_frames):
            sources[vqa.source], web_parts[vqa.source] = vqa, w
            info.setdefault("web_data", {})[vqa.source] = {"path": str(vqa.file), "rows": len(vqa), "weight": w}
        if not web_parts:
            raise ValueError("--synthetic-web-weight 0 leaves no web data; add --web-data PATH[:WEIGHT]")
    elif web_data:
        raise ValueError(f"--web-data mixes web data into training; --regime {regime} is robot-only (use cofinetune)")
    total = sum(web_parts.values())
    if regime == "cofinetune":
        base = rt2_weights(robot_share, None if "robot_aux" in sources else 0.0)
        web_share = base.pop("web")
        if "robot_point" in sources:
            if point_share >= web_share:
                raise ValueError(
                    f"point_share {point_share} leaves no web data (robot {robot_share} + aux "
                    f"{base['robot_aux']} + point {point_share} >= 1); lower --robot-share or point_share"
                )
            base["robot_point"], web_share = point_share, web_share - point_share
        if web_share <= 0 and web_data:
            raise ValueError(f"robot_share {robot_share} leaves no room for --web-data; lower --robot-share")
        weights = {k: v for k, v in base.items() if k in sources}
        weights.update({k: web_share * w / total for k, w in web_parts.items()})
    elif regime == "pretrain":
        weights = {k: w / total for k, w in web_parts.items()}
    elif "robot_point" in sources:  # scratch / finetune in the grounded recipe: the web's share goes to robot
        weights = {"robot_aux": rt2_weights(0.0)["robot_aux"] if "robot_aux" in sources else 0.0}
        weights["robot_point"] = point_share
        weights["robot"] = 1.0 - weights["robot_aux"] - point_share
        if weights["robot"] <= 0:
            raise ValueError(f"point_share {point_share} leaves no action rows; lower point_share")
        weights = {k: v for k, v in weights.items() if v > 0}
    else:
        weights = {"robot": 1.0}
    info["weights"] = weights
    return sources, weights, info
