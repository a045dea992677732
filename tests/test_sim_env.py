"""TabletopEnv: API, observation contract, reproducibility, clipping, bad input."""

import gymnasium as gym
import numpy as np
import pytest

import rt2.sim
from rt2.sim import EnvConfig, Scene, SceneConfig, TabletopEnv, TaskSpec
from rt2.sim.scene import Block


@pytest.fixture(scope="module")
def env():
    return TabletopEnv()


def test_registered_and_gym_make():
    import importlib

    importlib.reload(rt2.sim)  # re-registration is guarded
    e = gym.make("rt2/Tabletop-v0", image_size=(64, 80))
    obs, info = e.reset(seed=0)
    assert obs["image"].shape == (64, 80, 3)
    obs, *_ = e.step(np.array([1, 0]))
    assert e.observation_space["image"].contains(obs["image"])


def test_observation_contract(env):
    obs, info = env.reset(seed=1, options={"family": "block2block"})
    assert obs["image"].dtype == np.uint8 and obs["image"].shape == (72, 96, 3)
    assert np.array_equal(obs["prev_image"], obs["image"])  # at reset: the first frame
    assert obs["effector"].dtype == np.float32 and obs["target"].shape == (2,)
    assert isinstance(obs["instruction"], str) and obs["instruction"]
    assert info["family"] == "block2block" and info["success"] is False and info["clipped"] is False
    first = obs["image"]
    obs, reward, terminated, truncated, info = env.step(np.array([3, -2]))
    assert np.array_equal(obs["prev_image"], first)
    assert obs["target"] == pytest.approx(info["task"] and (env.state.target), abs=1e-6)
    assert env.render().shape[1] == 480


def test_integer_units_and_float_metres_agree():
    a, b = TabletopEnv(), TabletopEnv()
    oa, _ = a.reset(seed=5)
    ob, _ = b.reset(seed=5)
    start = oa["target"].copy()
    oa, *_ = a.step(np.array([3, -2]))
    ob, *_ = b.step(np.array([0.03, -0.02]))
    assert oa["target"] == pytest.approx(start + [0.03, -0.02], abs=1e-6)
    assert np.array_equal(oa["image"], ob["image"])


def test_clipping_is_reported(env):
    env.reset(seed=2)
    clipped = [env.step(np.array([-1, -1]))[-1]["clipped"]]  # the effector starts >= 0.08 m from the edges
    for _ in range(8):
        *_, info = env.step(np.array([-10, -10]))
        clipped.append(info["clipped"])
    assert env.state.target == pytest.approx((0.15, -0.3048))
    assert clipped[-1] and not clipped[0]


def test_same_seed_same_rollout():
    def rollout():
        e = TabletopEnv()
        obs, _ = e.reset(seed=123)
        frames, rng = [obs["image"]], np.random.default_rng(0)
        for _ in range(15):
            obs, *_ = e.step(rng.integers(-5, 6, 2))
            frames.append(obs["image"])
        return obs["instruction"], np.stack(frames), e.world_state().positions()

    i1, f1, p1 = rollout()
    i2, f2, p2 = rollout()
    assert i1 == i2 and np.array_equal(f1, f2) and np.array_equal(p1, p2)


def test_truncation_and_termination():
    e = TabletopEnv(max_steps=3)
    e.reset(seed=0, options={"family": "block2absolute"})
    out = [e.step(np.array([0, 0]))[3] for _ in range(3)]
    assert out == [False, False, True]
    # A hand-placed layout that succeeds on the first step terminates.
    scene = Scene((Block("red", "moon", 0.30, 0.0), Block("blue", "cube", 0.30, 0.055)), effector=(0.5, 0.2))
    e.reset(seed=0, options={"scene": scene, "task": TaskSpec("block2block", "red moon", target_block="blue cube")})
    _, reward, terminated, truncated, info = e.step(np.array([0, 0]))
    assert not terminated  # 0.055 > 0.05
    scene = Scene((Block("red", "moon", 0.30, 0.0), Block("blue", "cube", 0.30, 0.045)), effector=(0.5, 0.2))
    e.reset(seed=0, options={"scene": scene, "task": TaskSpec("block2block", "red moon", target_block="blue cube")})
    _, reward, terminated, truncated, info = e.step(np.array([0, 0]))
    assert terminated and reward == 1.0 and info["success"]


def test_custom_task_and_instruction(env):
    spec = TaskSpec("block2relative", "red moon", direction="left", distance="far")
    obs, info = env.reset(seed=3, options={"task": spec, "instruction": "haz lo que quieras"})
    assert obs["instruction"] == "haz lo que quieras"
    assert info["task"].target_xy is not None and info["task"].direction == "left"
    obs, info = env.reset(seed=3, options={"family": "separate", "language": "fr"})
    assert info["task"].avoid
    obs, info = env.reset(seed=4, options={"family": "block2symbol"})
    assert env.world_state().symbols and info["task"].symbol
    obs, info = env.reset(seed=4, options={"scene_config": "heldout_objects", "family": "block2block"})
    assert "purple moon" in env.world_state().names


@pytest.mark.parametrize(
    "action,err,match",
    [
        (np.array([np.nan, 0.0]), ValueError, "NaN"),
        (np.array([1, 2, 3]), ValueError, "shape"),
        ("3 -2", TypeError, "string"),
        (np.array(["a", "b"]), TypeError, "dtype"),
        (np.array([0.5, 0.0]), ValueError, "integer array"),
        (np.array([11, 0]), ValueError, "-10..10"),
    ],
)
def test_bad_actions_raise(env, action, err, match):
    env.reset(seed=0)
    with pytest.raises(err, match=match):
        env.step(action)


def test_bad_options_raise(env):
    with pytest.raises(ValueError, match="valid families: block2block"):
        env.reset(options={"family": "stack"})
    with pytest.raises(ValueError, match="valid: family, task"):
        env.reset(options={"famly": "block2block"})
    with pytest.raises(ValueError, match="valid languages: en, es, fr"):
        env.reset(options={"language": "xx"})
    with pytest.raises(TypeError, match="unknown TabletopEnv option"):
        TabletopEnv(imagesize=(3, 3))
    with pytest.raises(ValueError, match="valid scene presets"):
        SceneConfig.preset("moon")
    with pytest.raises(ValueError, match="not in block set BLOCK_8"):
        env.reset(options={"task": TaskSpec("block2block", "purple moon", target_block="red moon")})
    assert EnvConfig.preset("emergent").families[-1] == "property_referent"


@pytest.mark.parametrize(
    "instruction,match",
    [(123, "must be a str, got int 123"), (b"push", "must be a str"), ("", "empty"), ("  \n", "empty")],
)
def test_bad_instruction_option_raises(env, instruction, match):
    # Before: 123 was accepted as the observation's instruction and "" was silently replaced by a generated one.
    spec = TaskSpec("block2absolute", "red moon", location="top")
    with pytest.raises(ValueError, match=match):
        env.reset(seed=0, options={"task": spec, "instruction": instruction})


def test_none_instruction_means_generated(env):
    spec = TaskSpec("block2absolute", "red moon", location="top")
    a, _ = env.reset(seed=0, options={"task": spec, "instruction": None})
    b, _ = env.reset(seed=0, options={"task": spec})
    assert a["instruction"] == b["instruction"] and a["instruction"].strip()


@pytest.mark.parametrize(
    "colour,shape,match",
    [
        (
            "pink",
            "moon",
            r"Block\('pink', 'moon'\): unknown colour 'pink'; valid colours: red, blue, green, yellow, purple",
        ),
        (
            "red",
            "sphere",
            r"Block\('red', 'sphere'\): unknown shape 'sphere'; valid shapes: moon, cube, star, pentagon, tri",
        ),
        (["red"], "moon", "unknown colour"),
    ],
)
def test_unknown_block_colour_or_shape_rejected_at_construction(colour, shape, match):
    # Before: accepted here, then a bare KeyError from the palette/footprint table at env.reset.
    with pytest.raises(ValueError, match=match):
        Block(colour, shape, 0.3, 0.0)


def test_heldout_colours_and_shapes_are_valid_blocks(env):
    from rt2.sim import board

    # Every colour/shape the renderer draws is a valid Block, held-out ones included (unseen-object suites).
    for colour in board.HELDOUT_COLOURS:
        for shape in board.SHAPES:
            Block(colour, shape, 0.3, 0.0)
    scene = Scene((Block("purple", "triangle", 0.30, -0.1), Block("orange", "heart", 0.40, 0.1)), effector=(0.5, 0.2))
    spec = TaskSpec("block2block", "purple triangle", target_block="orange heart")
    obs, info = env.reset(seed=0, options={"scene": scene, "task": spec})
    assert info["task"].block == "purple triangle" and obs["image"].any()


def test_bad_symbol_rejected_at_construction():
    from rt2.sim.scene import Symbol

    with pytest.raises(ValueError, match="unknown colour 'pink'"):
        Symbol("3", 0.3, 0.0, "pink")
    with pytest.raises(ValueError, match="unknown symbol 'x'"):
        Symbol("x", 0.3, 0.0)
