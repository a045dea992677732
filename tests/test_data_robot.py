"""Robot episodes -> action / CoT / in-domain examples, and the web-only concept exclusion on the robot side."""

from __future__ import annotations

import numpy as np
import pytest

from rt2.data.prompts import action_prompt, split_cot_target
from rt2.data.robot import AUX_TASKS, RobotActions, RobotAux, RobotDataConfig, RobotEpisode, load_episodes
from rt2.data.web.concepts import find_web_only
from rt2.data.web.scene import board_to_grid, parse_grid
from rt2.sim import LT_FAMILIES, ScriptedOracle, TabletopEnv, enumerate_instructions, sample_scene, sample_task
from rt2.sim.scene import SceneConfig


def rollout(family: str, seed: int, max_steps: int = 60) -> RobotEpisode:
    """One oracle episode in memory (what ``rt2 collect`` writes per episode)."""
    env = TabletopEnv(max_steps=max_steps)
    oracle = ScriptedOracle()
    obs, info = env.reset(seed=seed, options={"family": family})
    images, labels, eff = [], [], []
    done = False
    while not done:
        a = oracle.act(env)
        images.append(obs["image"])
        labels.append(a)
        eff.append(obs["effector"])
        obs, _, term, trunc, info = env.step(a)
        done = term or trunc
    return RobotEpisode(
        np.stack(images), np.stack(labels).astype(np.int64), np.stack(eff).astype(np.float64),
        info["instruction"], bool(info["success"]), info["task"], family,
    )  # fmt: skip


@pytest.fixture(scope="module")
def episodes() -> list[RobotEpisode]:
    eps = [rollout(f, seed) for seed, f in enumerate(("block2block", "block2absolute", "block2relative", "separate"))]
    assert any(e.success for e in eps)
    return eps


def test_action_examples_two_frames_and_labels(episodes):
    acts = RobotActions(episodes)
    kept = [e for e in episodes if e.success]
    assert len(acts) == sum(len(e) for e in kept)
    ex0 = acts[0]
    ep = acts.episodes[0]
    assert ex0.kind == "action" and ex0.source == "robot" and len(ex0.images) == 2
    assert np.array_equal(ex0.images[0], ep.images[0]) and np.array_equal(ex0.images[1], ep.images[0])  # padded
    ex3 = acts[3]
    assert np.array_equal(ex3.images[0], ep.images[2]) and np.array_equal(ex3.images[1], ep.images[3])
    assert ex3.prompt == action_prompt(ep.instruction)
    assert ex3.target == f"{ep.labels[3][0]} {ep.labels[3][1]}"
    assert np.array_equal(ex3.action_bins, ep.labels[3])
    last = acts[len(acts) - 1]
    assert np.array_equal(last.action_bins, acts.episodes[-1].labels[-1])
    one = RobotActions(episodes, RobotDataConfig.preset("single_frame"))
    assert len(one[5].images) == 1
    with pytest.raises(IndexError):
        acts[len(acts)]


def test_cot_examples_carry_resolved_plan(episodes):
    acts = RobotActions(episodes, RobotDataConfig(cot_fraction=0.5, seed=1))
    cots = [i for i in range(len(acts)) if acts.is_cot(i)]
    assert 0.3 < len(cots) / len(acts) < 0.7
    ex = acts[cots[0]]
    plan, action = split_cot_target(ex.target)
    e, t = acts.locate(cots[0])
    spec = acts.episodes[e].spec
    assert ex.kind == "cot" and plan.startswith("push the ") and spec.block in plan
    assert action == f"{acts.episodes[e].labels[t][0]} {acts.episodes[e].labels[t][1]}"
    again = RobotActions(episodes, RobotDataConfig(cot_fraction=0.5, seed=1))
    assert [again.is_cot(i) for i in range(len(acts))] == [acts.is_cot(i) for i in range(len(acts))]


def test_aux_tasks_answers_are_correct(episodes):
    aux = RobotAux(episodes, RobotDataConfig(seed=2))
    seen = set()
    for i in range(200):
        task, ex = aux.item(i)
        seen.add(task)
        assert ex.kind == "text" and ex.source == "robot_aux" and len(ex.images) == 2
        assert find_web_only(ex.prompt) == []  # in-domain questions never teach a web concept
        if task == "aux_effector":
            # the answer is the effector's grid cell at the shown (last) frame
            matches = [
                (e, t) for e in aux.episodes for t in range(len(e))
                if np.array_equal(e.images[t], ex.images[-1]) and board_to_grid(*e.effector[t]) == parse_grid(ex.target)
            ]  # fmt: skip
            assert matches
        elif task == "aux_instruction":
            ep = next(e for e in aux.episodes if e.instruction == ex.target)
            assert np.array_equal(ex.images[0], ep.images[0]) and np.array_equal(ex.images[1], ep.images[-1])
        elif task == "aux_timesteps":
            gap = int(ex.target)
            assert 1 <= gap <= aux.config.max_gap
            hits = [
                e for e in aux.episodes for t in range(len(e) - gap)
                if np.array_equal(e.images[t], ex.images[0]) and np.array_equal(e.images[t + gap], ex.images[1])
            ]  # fmt: skip
            assert hits
        else:
            assert ex.target in ("yes", "no")
    assert seen == set(AUX_TASKS)
    a, b = RobotAux(episodes, RobotDataConfig(seed=2)), aux
    assert all(a.item(i)[1].target == b.item(i)[1].target for i in range(30))


def test_bad_config_and_episode_errors(episodes):
    with pytest.raises(ValueError, match="n_frames=1"):
        RobotDataConfig(n_frames=1)
    with pytest.raises(ValueError, match="robot aux task"):
        RobotDataConfig(aux_tasks=("aux_dance",))
    ep = episodes[0]
    with pytest.raises(ValueError, match="labels"):
        RobotEpisode(ep.images, ep.labels[:-1], ep.effector, ep.instruction)


def test_web_only_episodes_are_excluded(episodes):
    ep = episodes[0]
    bad = RobotEpisode(ep.images, ep.labels, ep.effector, "push the red moon to the number 3", True, None)
    with pytest.warns(UserWarning, match="skipped 1"):
        acts = RobotActions([*episodes, bad])
    assert acts.skipped == 1 and all(e.instruction != bad.instruction for e in acts.episodes)
    with pytest.raises(ValueError, match="web-only"):
        RobotActions([*episodes, bad], RobotDataConfig(on_web_only="error"))


def test_sim_training_instructions_never_contain_web_only_concepts():
    """Every English training phrasing of every Language-Table family, on many layouts, is free of web concepts."""
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(12):
        scene = sample_scene(SceneConfig.preset("language_table"), rng)
        for family in LT_FAMILIES:
            spec = sample_task(family, scene, rng)
            if spec is None:
                continue
            for text in enumerate_instructions(spec, scene, language="en", split="train"):
                assert find_web_only(text) == [], (text, find_web_only(text))
                checked += 1
    assert checked > 1000


def test_emergent_pointing_phrases_never_occur_in_robot_training_instructions():
    """Issue 15's web pointing questions name the suites' referents in the suites' words ("the sum of two plus
    one", "la luna roja", "le cube"): none of those phrases, article included, occurs in a robot training instruction
    ("cube" alone is English and French, "le cube" is not)."""
    from rt2.data.web.referents import EMERGENT_TYPES, sample_question

    phrases = {sample_question(t, np.random.default_rng([3, k])).phrase for t in EMERGENT_TYPES for k in range(40)}
    assert len(phrases) > 200
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(12):
        scene = sample_scene(SceneConfig.preset("language_table"), rng)
        for family in LT_FAMILIES:
            spec = sample_task(family, scene, rng)
            if spec is None:
                continue
            for text in enumerate_instructions(spec, scene, language="en", split="train"):
                hits = [p for p in phrases if f" {p} " in f" {text} "]
                assert not hits, (text, hits)
                checked += 1
    assert checked > 1000


def test_emergent_instructions_do_use_web_only_concepts():
    """The other side of the contract: every emergent-suite instruction needs some web concept."""
    rng = np.random.default_rng(1)
    n = 0
    for _ in range(30):
        scene = sample_scene(SceneConfig.preset("emergent"), rng)
        for family in ("block2symbol", "property_referent"):
            spec = sample_task(family, scene, rng)
            if spec is None:
                continue
            for lang in ("en", "es", "fr"):
                for text in enumerate_instructions(spec, scene, language=lang, split="train")[:20]:
                    assert find_web_only(text), text
                    n += 1
    assert n > 100


def test_load_episodes_from_collected_dataset(tmp_path):
    from rt2.data.collect import CollectConfig, collect

    collect(CollectConfig(episodes=2, families=("block2block",), max_steps=60), tmp_path / "ds", progress=False)
    eps = load_episodes(tmp_path / "ds")
    assert len(eps) == 2 and all(e.success for e in eps)
    assert eps[0].images.dtype == np.uint8 and eps[0].labels.shape[1] == 2 and eps[0].spec.family == "block2block"
    acts = RobotActions(eps)
    assert len(acts) == sum(len(e) for e in eps)
    assert acts[0].target == f"{eps[0].labels[0][0]} {eps[0].labels[0][1]}"
    aux = RobotAux(eps, RobotDataConfig(aux_tasks=("aux_effector",), seed=0))
    task, ex = aux.item(0)
    hit = [(e, t) for e in eps for t in range(len(e)) if np.array_equal(e.images[t], ex.images[-1])]
    assert task == "aux_effector" and any(board_to_grid(*e.effector[t]) == parse_grid(ex.target) for e, t in hit)
