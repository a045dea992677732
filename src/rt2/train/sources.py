"""What each training regime reads: the tokenizer corpus, the model to start from, and the example mixture.

=============  ==========================  =====================================================================
regime         model                       examples (``rt2.data.mixture.MixtureSampler`` sources and weights)
=============  ==========================  =====================================================================
pretrain       fresh (tokenizer trained)   ``web`` only (our stand-in for web-scale VLM pre-training)
scratch        fresh (tokenizer trained)   ``robot`` only (the "no web knowledge" ablation)
finetune       ``--init`` (pretrained)     ``robot`` only
cofinetune     ``--init`` (pretrained)     ``robot`` / ``robot_aux`` / ``web`` = robot_share / 10 % / rest
=============  ==========================  =====================================================================

The tokenizer is trained on the web corpus text plus every instruction template of the simulated tasks and the
prompt formats (``rt2.data.prompts``), so robot prompts tokenize into known pieces even though pre-training
never sees a robot episode.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

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


def build_fresh_model(model: str, tokenizer: Any, n_frames: int):
    """A randomly initialised VLA on the Language-Table action space. ``tokenizer``: a trained
    ``rt2.models.TextTokenizer`` for the built-in backbones; None for HF backbones (they bring their own)."""
    from rt2.models import VLA

    overrides: dict[str, Any] = {"n_frames": n_frames}
    if model.startswith("hf"):
        return VLA.build(model, None, action_space="language_table", **overrides)
    if tokenizer is None:
        raise ValueError(f"{model} needs a text tokenizer (TextTokenizer.train on tokenizer_corpus())")
    return VLA.build(model, tokenizer, action_space="language_table", **overrides)


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
    regime: str, *, image_size: tuple[int, int], n_frames: int, data: str | Path | None, robot_share: float, seed: int
) -> tuple[dict[str, Any], dict[str, float], dict]:
    """(sources, weights, info) for :class:`rt2.data.mixture.MixtureSampler`; ``info`` is JSON for the export."""
    from rt2.data.mixture import rt2_weights
    from rt2.data.web import WebCorpus, WebCorpusConfig

    if regime not in REGIMES:
        raise ValueError(f"regime must be one of {REGIMES}, got {regime!r}")
    info: dict[str, Any] = {"regime": regime}
    sources: dict[str, Any] = {}
    if regime in ("scratch", "finetune", "cofinetune"):
        from rt2.data.robot import RobotActions, RobotAux, RobotDataConfig, load_episodes

        if data is None:
            raise ValueError(f"--regime {regime} needs --data DIR (a LeRobot dataset written by `rt2 collect`)")
        if not Path(data).is_dir():
            raise FileNotFoundError(f"--data {data}: no such directory (create one with `rt2 collect --out {data}`)")
        aux = ("aux_effector",) if n_frames < 2 else RobotDataConfig().aux_tasks
        rcfg = RobotDataConfig(n_frames=n_frames, seed=seed, aux_tasks=aux)
        episodes = load_episodes(data)
        sources["robot"] = RobotActions(episodes, rcfg)
        info.update(data=str(data), episodes=len(episodes), robot_frames=len(sources["robot"]))
        if regime == "cofinetune":
            sources["robot_aux"] = RobotAux(episodes, rcfg)
    if regime in ("pretrain", "cofinetune"):
        sources["web"] = WebCorpus(WebCorpusConfig(seed=seed, image_size=tuple(image_size), n_frames=n_frames))
    if regime == "cofinetune":
        weights = rt2_weights(robot_share)
    else:
        weights = {next(iter(sources)): 1.0}
    info["weights"] = weights
    return sources, weights, info
