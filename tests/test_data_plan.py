"""Grounded plans (point, then act) and in-domain pointing: the text the model learns, from the episode's own
task and grounding targets, and the parsing/scoring that eval applies to a model's plans."""

from __future__ import annotations

import numpy as np
import pytest

from rt2.data.plan import (
    PlanPoint,
    format_plan,
    goal_label,
    grounded_plan,
    parse_plan,
    plan_labels,
    plan_points,
    slot_errors,
)
from rt2.data.robot import RobotActions, RobotAux, RobotDataConfig, RobotEpisode
from rt2.data.web.scene import board_to_grid
from rt2.sim.tasks import TaskSpec, board_from_unit, board_unit


def _episode(spec: TaskSpec, t: int = 6, seed: int = 0) -> RobotEpisode:
    rng = np.random.default_rng(seed)
    g = rng.uniform(-0.95, 0.95, size=(t, 6)).astype(np.float32)
    return RobotEpisode(
        images=rng.integers(0, 255, size=(t, 72, 96, 3), dtype=np.uint8),
        labels=rng.integers(-10, 11, size=(t, 2)),
        effector=np.stack([board_from_unit(row[:2]) for row in g]),
        instruction=f"push the {spec.block} somewhere",
        success=True,
        spec=spec,
        family=spec.family,
        grounding=g,
    )


B2B = TaskSpec("block2block", "red moon", target_block="blue cube")
B2A = TaskSpec("block2absolute", "green star", location="top_left")
B2R = TaskSpec("block2relative", "yellow pentagon", direction="left", distance="near", target_xy=(0.3, 0.1))


def test_labels_name_each_slot_by_what_it_points_at():
    assert plan_labels(B2B) == ("robot", "red moon", "blue cube")
    assert goal_label(B2A) == "top left"
    assert goal_label(B2R) == "goal"  # a free point has no name of its own


def test_board_units_round_trip():
    for xy in [(0.2, -0.25), (0.45, 0.1), (0.6, 0.29)]:
        assert np.allclose(board_from_unit(board_unit(xy)), xy, atol=1e-6)


def test_plan_text_round_trips_and_points_are_the_grounding_cells():
    g = np.asarray([*board_unit((0.3, -0.1)), *board_unit((0.5, 0.2)), *board_unit((0.25, 0.05))], np.float32)
    text = grounded_plan(B2B, g)
    pts = plan_points(g)
    assert pts == [board_to_grid(0.3, -0.1), board_to_grid(0.5, 0.2), board_to_grid(0.25, 0.05)]
    assert (
        text == f"robot {pts[0][0]} {pts[0][1]} ; red moon {pts[1][0]} {pts[1][1]} ; blue cube {pts[2][0]} {pts[2][1]}"
    )
    parsed = parse_plan(text)
    assert [p.label for p in parsed] == ["robot", "red moon", "blue cube"]
    assert [(p.gx, p.gy) for p in parsed] == pts
    assert slot_errors(parsed, pts) == [0, 0, 0]


def test_noise_is_seeded_small_and_stays_on_the_grid():
    g = np.asarray([*board_unit((0.3, -0.1)), *board_unit((0.5, 0.2)), *board_unit((0.25, 0.05))], np.float32)
    a = grounded_plan(B2B, g, noise=0.35, rng=np.random.default_rng(3))
    assert a == grounded_plan(B2B, g, noise=0.35, rng=np.random.default_rng(3))
    errs = []
    for s in range(300):
        p = parse_plan(grounded_plan(B2B, g, noise=0.35, rng=np.random.default_rng(s)))
        errs += slot_errors(p, plan_points(g))
        assert all(max(abs(q.gx), abs(q.gy)) <= 10 for q in p)
    off = np.mean([e > 0 for e in errs])
    assert 0.15 < off < 0.45  # ~15 % of coordinates one cell off -> ~28 % of points
    with pytest.raises(ValueError, match="rng"):
        grounded_plan(B2B, g, noise=0.35)


@pytest.mark.parametrize(
    "text",
    ["", "robot 1", "robot 1 2 ; red moon 3", "robot 11 0", "robot 1 2 3", "robot x y", "robot 1 2 ;"],
)
def test_malformed_plans_do_not_parse(text):
    assert parse_plan(text) is None
    assert slot_errors(parse_plan(text), [(0, 0)] * 3) == [None, None, None]


def test_labels_with_digits_are_refused():
    with pytest.raises(ValueError, match="digits"):
        format_plan(("robot", "the 3"), [(0, 0), (1, 1)])


def test_slot_errors_measure_cells():
    plan = [PlanPoint("robot", 0, 0), PlanPoint("red moon", 2, 3)]
    assert slot_errors(plan, [(0, 1), (4, 3), (0, 0)]) == [1, 2, None]


def test_robot_actions_write_grounded_plans_with_dropout():
    ep = _episode(B2B, t=40)
    cfg = RobotDataConfig(n_frames=1, aux_tasks=("aux_effector",), cot_fraction=0.75, plan_format="grounded")
    ra = RobotActions([ep], cfg)
    kinds = [ra[i].kind for i in range(len(ra))]
    assert 0.5 < kinds.count("cot") / len(kinds) < 0.95 and "action" in kinds  # plan dropout leaves direct rows
    for i in range(len(ra)):
        ex = ra[i]
        if ex.kind != "cot":
            continue
        plan, action = ex.target.split(" Action: ")
        parsed = parse_plan(plan)
        assert slot_errors(parsed, plan_points(ep.grounding[i])) == [0, 0, 0]  # no noise: the exact cells
        assert action == ra.tokenizer.to_text(ep.labels[i])
        assert ex.grounding is not None


def test_grounded_plans_need_specs_and_grounding():
    ep = _episode(B2B)
    bare = RobotEpisode(ep.images, ep.labels, ep.effector, ep.instruction, True)
    cfg = RobotDataConfig(n_frames=1, aux_tasks=("aux_effector",), cot_fraction=0.5, plan_format="grounded")
    with pytest.raises(ValueError, match="re-collect"):
        RobotActions([bare], cfg)


def test_aux_point_asks_about_the_named_blocks_at_their_cells():
    eps = [_episode(B2B, seed=1), _episode(B2A, seed=2)]
    aux = RobotAux(eps, RobotDataConfig(n_frames=1, aux_tasks=("aux_point",)), source="robot_point")
    asked = set()
    for i in range(200):
        task, ex = aux.item(i)
        assert task == "aux_point" and ex.source == "robot_point"
        name = ex.prompt.removeprefix("Q: where is the ").removesuffix("? A:")
        asked.add(name)
        ep = next(e for e in eps if name in (e.spec.block, e.spec.target_block))
        t = next(t for t in range(len(ep)) if np.array_equal(ep.images[t], ex.images[0]))
        slot = 1 if name == ep.spec.block else 2
        assert ex.target == f"{plan_points(ep.grounding[t])[slot][0]} {plan_points(ep.grounding[t])[slot][1]}"
        assert np.allclose(ex.grounding[:2], ep.grounding[t][:2])  # (effector, block, block)
        assert np.allclose(ex.grounding[2:4], ex.grounding[4:6])
    # block2absolute's goal is a place, not a block: only the pushed block is asked about there
    assert asked == {"red moon", "blue cube", "green star"}


def test_aux_point_needs_specs():
    ep = _episode(B2B)
    bare = RobotEpisode(ep.images, ep.labels, ep.effector, ep.instruction, True)
    with pytest.raises(ValueError, match="re-collect"):
        RobotAux([bare], RobotDataConfig(n_frames=1, aux_tasks=("aux_point",)))
