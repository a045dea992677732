"""Success tests at their exact boundaries (just inside / just outside), task sampling and binding."""

import dataclasses

import numpy as np
import pytest

from rt2.sim import board, tasks
from rt2.sim.scene import Block, Scene, Symbol
from rt2.sim.tasks import TaskSpec, evaluate

EPS = 1e-4


def scene_with(*blocks, symbols=()):
    return Scene(blocks=tuple(Block(c, s, x, y) for c, s, x, y in blocks), symbols=tuple(symbols), effector=(0.2, 0.2))


def at(spec, scene, name, xy):
    """``scene`` with block ``name`` moved to ``xy``."""
    blocks = tuple(dataclasses.replace(b, x=xy[0], y=xy[1]) if b.name == name else b for b in scene.blocks)
    return dataclasses.replace(scene, blocks=blocks)


def test_block2block_boundary():
    sc = scene_with(("red", "moon", 0.3, 0.0), ("blue", "cube", 0.4, 0.0))
    spec = TaskSpec("block2block", "red moon", target_block="blue cube")
    assert evaluate(spec, at(spec, sc, "red moon", (0.4 - 0.05 + EPS, 0.0)))[0]
    assert not evaluate(spec, at(spec, sc, "red moon", (0.4 - 0.05 - EPS, 0.0)))[0]


@pytest.mark.parametrize("location", list(board.LOCATIONS))
def test_block2absolute_boundary(location):
    gx, gy = board.LOCATIONS[location]
    radius = 0.10 if location == "center" else 0.115
    spec = TaskSpec("block2absolute", "red moon", location=location)
    sc = scene_with(("red", "moon", 0.35, 0.0))
    direction = np.array([0.35, 0.0]) - (gx, gy)
    direction = direction / np.hypot(*direction) if np.hypot(*direction) > 0 else np.array([1.0, 0.0])
    inside = np.array([gx, gy]) + direction * (radius - EPS)
    outside = np.array([gx, gy]) + direction * (radius + EPS)
    assert evaluate(spec, at(spec, sc, "red moon", inside))[0]
    assert not evaluate(spec, at(spec, sc, "red moon", outside))[0]


def test_absolute_locations_are_shifted_corners():
    assert board.LOCATIONS["top_left"] == pytest.approx((0.125, -0.3048))
    assert board.LOCATIONS["bottom_right"] == pytest.approx((0.575, 0.3048))
    assert board.LOCATIONS["center"] == pytest.approx((0.35, 0.0))


@pytest.mark.parametrize("distance,mag", [("near", 0.15), ("far", 0.25)])
def test_block2relative_target_and_boundary(distance, mag):
    sc = scene_with(("red", "moon", 0.45, 0.1))
    spec = tasks.bind(TaskSpec("block2relative", "red moon", direction="up_left", distance=distance), sc)
    s = 1 / np.sqrt(2)
    assert spec.target_xy == pytest.approx((0.45 - mag * s, 0.1 - mag * s))
    t = np.asarray(spec.target_xy)
    assert evaluate(spec, at(spec, sc, "red moon", t + (0.10 - EPS, 0)))[0]
    assert not evaluate(spec, at(spec, sc, "red moon", t + (0.10 + EPS, 0)))[0]
    # The target is fixed at reset: moving the block does not move it.
    assert tasks.bind(spec, at(spec, sc, "red moon", (0.3, 0.0))).target_xy == spec.target_xy


def test_block2blockrelative_points_and_reference_rule():
    sc = scene_with(("red", "moon", 0.30, 0.0), ("blue", "cube", 0.35, 0.0))
    spec = tasks.bind(TaskSpec("block2blockrelative", "red moon", target_block="blue cube", direction="left"), sc)
    ref = np.array([0.35, 0.0])
    # The 10 points span 0.5x..1.1x of the 0.08 m offset: (0.35, -0.04) .. (0.35, -0.088).
    for frac in (0.5, 1.1):
        p = ref + (0, -0.08 * frac)
        assert evaluate(spec, at(spec, sc, "red moon", p + (0.04 - EPS, 0)))[0]
        assert not evaluate(spec, at(spec, sc, "red moon", p + (0.04 + EPS, 0)))[0]
    assert not evaluate(spec, at(spec, sc, "red moon", ref + (0, -0.088 - 0.04 - EPS)))[0]
    # Diagonal offsets are (0.04, 0.04), not 0.08 along the diagonal.
    assert tasks.bbr_offset("up_right") == pytest.approx((-0.04, 0.04))
    # Reference moved more than 0.05 m from its reset position: fail even when the block sits on a point.
    good = ref + (0, -0.064)
    moved = at(spec, at(spec, sc, "blue cube", ref + (0.05 - EPS, 0)), "red moon", good + (0.05 - EPS, 0))
    assert evaluate(spec, moved)[0]
    moved = at(spec, at(spec, sc, "blue cube", ref + (0.05 + EPS, 0)), "red moon", good + (0.05 + EPS, 0))
    assert not evaluate(spec, moved)[0]


def test_separate_target_recomputed_each_step():
    sc = scene_with(("red", "moon", 0.30, 0.0), ("blue", "cube", 0.30, 0.06), ("green", "star", 0.50, 0.2))
    spec = tasks.bind(TaskSpec("separate", "red moon"), sc)
    assert spec.avoid == ("blue cube",)  # green star is farther than 0.08 m
    # Target = 0.10 m from the group centroid (0.30, 0.06), away from it: block at y = 0.06 - 0.10.
    assert evaluate(spec, at(spec, sc, "red moon", (0.30, -0.04 + 0.025 - EPS)))[0]
    assert not evaluate(spec, at(spec, sc, "red moon", (0.30, -0.04 + 0.025 + EPS)))[0]
    # Move the group: the target moves with it.
    sc2 = at(spec, sc, "blue cube", (0.30, 0.10))
    assert evaluate(spec, at(spec, sc2, "red moon", (0.30, 0.0)))[0]


def test_separate_needs_a_neighbour():
    sc = scene_with(("red", "moon", 0.30, 0.0), ("blue", "cube", 0.30, 0.2))
    with pytest.raises(ValueError, match="no block within 0.08"):
        tasks.bind(TaskSpec("separate", "red moon"), sc)
    assert tasks.sample_task("separate", sc, np.random.default_rng(0)) is None


def test_block2symbol_and_property_referent():
    syms = (Symbol("3", 0.3, 0.1, "blue"), Symbol("heart", 0.45, -0.2, "green"))
    sc = scene_with(("red", "moon", 0.3, -0.15), ("green", "cube", 0.4, 0.2), ("blue", "star", 0.5, 0.0), symbols=syms)
    spec = TaskSpec("block2symbol", "red moon", symbol="3")
    assert evaluate(spec, at(spec, sc, "red moon", (0.3, 0.1 - 0.05 + EPS)))[0]
    assert not evaluate(spec, at(spec, sc, "red moon", (0.3, 0.1 - 0.05 - EPS)))[0]
    assert tasks.resolve_referent("colour_of:heart", sc) == "green cube"
    assert tasks.resolve_referent("colour_of:3", sc) == "blue star"
    assert tasks.resolve_referent("closest_to:3", sc) == "green cube"
    assert tasks.resolve_referent("closest_to:heart", sc) == "red moon"
    assert tasks.resolve_referent("leftmost", sc) == "red moon"
    assert tasks.resolve_referent("bottommost", sc) == "blue star"
    assert tasks.resolve_referent("smallest", sc) is None  # equal sizes: ambiguous
    spec = TaskSpec(
        "property_referent", "green cube", referent="colour_of:heart", goal="block2absolute", location="top"
    )
    assert spec.scoring_family == "block2absolute"
    top = np.asarray(board.LOCATIONS["top"])
    assert evaluate(spec, at(spec, sc, "green cube", top + (0.115 - EPS, 0)))[0]


def test_sampled_tasks_are_valid_and_unsatisfied():
    from rt2.sim.scene import SceneConfig, sample_scene

    rng = np.random.default_rng(0)
    for family in tasks.FAMILIES:
        found = 0
        for _ in range(15):
            sc = sample_scene(SceneConfig.preset("emergent"), rng)
            spec = tasks.sample_task(family, sc, rng)
            if spec is not None:
                found += 1
                assert spec.family == family
                assert not evaluate(spec, sc)[0]
        assert found > 0, family


def test_unknown_names_list_valid_ones():
    with pytest.raises(ValueError, match="valid families: block2block, block2absolute"):
        TaskSpec("block2moon", "red moon")
    with pytest.raises(ValueError, match="valid locations: top_left"):
        TaskSpec("block2absolute", "red moon", location="upstairs")
    with pytest.raises(ValueError, match="needs target_block"):
        TaskSpec("block2block", "red moon")
    sc = scene_with(("red", "moon", 0.3, 0.0))
    with pytest.raises(ValueError, match="blocks present: red moon"):
        tasks.bind(TaskSpec("block2block", "red moon", target_block="blue cube"), sc)
    with pytest.raises(ValueError, match="valid colours: red, blue"):
        board.check_colour("pink")
    with pytest.raises(ValueError, match="valid shapes: moon, cube"):
        board.check_shape("sphere")


def test_plural_in_choice_lists():
    assert [board.plural(k) for k in ("family", "referent kind", "policy", "key", "mode")] == [
        "families",
        "referent kinds",
        "policies",
        "keys",
        "modes",
    ]
    with pytest.raises(ValueError, match="valid referent kinds: colour_of"):
        TaskSpec("property_referent", "red moon", referent="bluest", goal="block2absolute", location="top")


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (
            {"block": "red sphere", "target_block": "blue cube"},
            r"block 'red sphere': unknown shape 'sphere'; valid shapes",
        ),
        (
            {"block": "pink moon", "target_block": "blue cube"},
            r"block 'pink moon': unknown colour 'pink'; valid colours",
        ),
        (
            {"block": "red moon", "target_block": "blue"},
            r"target_block 'blue' is not a block name: use \"<colour> <shape>\"",
        ),
        ({"block": "moon", "target_block": "blue cube"}, "is not a block name"),
        ({"block": "red  moon", "target_block": "blue cube"}, "is not a block name"),
        ({"block": "red moon", "target_block": "blue cube", "avoid": "green star"}, "tuple of block names"),
        ({"block": "red moon", "target_block": "blue cube", "avoid": ("green sphere",)}, "avoid 'green sphere'"),
    ],
)
def test_block_names_checked_at_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TaskSpec("block2block", **kwargs)


def test_heldout_block_names_are_valid():
    spec = TaskSpec("block2block", "purple triangle", target_block="orange heart", avoid=("red moon",))
    assert tasks.check_block_name(spec.block) == "purple triangle"
