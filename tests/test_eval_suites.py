"""Suites: registry, seeded resets independent of everything but (seed, suite, task, index), task filters."""

from __future__ import annotations

import pytest

from rt2.eval import suites as S
from rt2.eval.reproduce import ALL_SUITES
from rt2.sim import HELDOUT_COLOURS, HELDOUT_SHAPES, TabletopEnv


def test_builtin_suites_and_registry():
    names = S.list_suites()
    for want in ALL_SUITES:  # every suite the paper reproduction runs is a built-in
        assert want in names
    assert S.get_suite("cot").mode == "plan_and_act"
    mine = S.Suite("test_red_only", "block2block only", (S.TaskDef("b2b", "block2block", scene="block4"),))
    try:
        S.register_suite(mine)
        assert S.get_suite("test_red_only") is mine and "test_red_only" in S.list_suites()
        assert [s.name for s in S.resolve_suites("seen, test_red_only")] == ["seen", "test_red_only"]
        with pytest.raises(ValueError, match="already registered"):
            S.register_suite(mine)
    finally:
        S._REGISTRY.pop("test_red_only", None)
    with pytest.raises(ValueError, match="valid suites: seen, unseen_objects"):
        S.get_suite("seeen")
    assert len(S.resolve_suites("all")) == len(S.list_suites())
    with pytest.raises(ValueError, match="unknown family"):
        S.TaskDef("x", "block2nowhere")
    with pytest.raises(ValueError, match="math phrasing"):
        S.TaskDef("x", "block2block", math=True)
    with pytest.raises(ValueError, match="reserved"):
        S.register_suite(S.Suite("all", "x", (S.TaskDef("b", "block2block"),)))


def test_episode_reset_is_a_function_of_its_key_only():
    env_a, env_b = TabletopEnv(), TabletopEnv()
    task = S.get_suite("seen").tasks[0]
    S.reset_episode(env_b, "seen", S.get_suite("seen").tasks[3], 0, 7)  # a different history on env_b
    _, _, seed_a = S.reset_episode(env_a, "seen", task, 0, 2)
    _, _, seed_b = S.reset_episode(env_b, "seen", task, 0, 2)
    assert seed_a == seed_b and S.initial_state_hash(env_a) == S.initial_state_hash(env_b)
    S.reset_episode(env_b, "seen", task, 0, 3)
    assert S.initial_state_hash(env_a) != S.initial_state_hash(env_b)
    S.reset_episode(env_b, "seen", task, 1, 2)  # another base seed
    assert S.initial_state_hash(env_a) != S.initial_state_hash(env_b)


def test_task_filters_hold():
    env = TabletopEnv()
    for i in range(3):
        _, info, _ = S.reset_episode(env, "emergent_math", S.get_suite("emergent_math").tasks[0], 0, i)
        assert info["task"].symbol.isdigit()
        assert any(w in info["instruction"] for w in ("plus", "minus", "times", "sum", "product", "difference"))
        _, info, _ = S.reset_episode(env, "emergent_people", S.get_suite("emergent_people").tasks[0], 0, i)
        assert info["task"].symbol == "face_glasses" and "glasses" in info["instruction"]
        hard = S.get_suite("unseen_objects").tasks[5]
        _, info, _ = S.reset_episode(env, "unseen_objects", hard, 0, i)
        colour, shape = info["task"].block.split(" ")
        assert colour in HELDOUT_COLOURS or shape in HELDOUT_SHAPES
        _, info, _ = S.reset_episode(env, "emergent_reasoning", S.get_suite("emergent_reasoning").tasks[1], 0, i)
        assert info["task"].referent == "smallest"
        _, info, _ = S.reset_episode(env, "emergent_multilingual", S.get_suite("emergent_multilingual").tasks[0], 0, i)
        assert info["instruction"].split()[0] in ("empuja", "mueve", "desliza", "pon", "lleva")
