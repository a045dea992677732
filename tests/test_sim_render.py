"""Renderer without an env: orientation, determinism, shapes distinguishable, symbols, lighting."""

import numpy as np
import pytest

from rt2.sim import board
from rt2.sim.render import Renderer, pixel_to_world, render_scene, world_to_pixel
from rt2.sim.scene import SCENE_PRESETS, Block, Scene, SceneConfig, Symbol, sample_scene


def test_world_to_pixel_orientation():
    size = (72, 96)
    assert world_to_pixel((board.X_MIN, board.Y_MIN), size) == pytest.approx((0, 0))  # top-left
    assert world_to_pixel((board.X_MAX, board.Y_MAX), size) == pytest.approx((72, 96))
    xy = np.array([[0.3, 0.1], [0.5, -0.2]])
    assert pixel_to_world(world_to_pixel(xy, size), size) == pytest.approx(xy)


def test_block_drawn_where_world_to_pixel_says():
    img = render_scene(Scene((Block("red", "cube", 0.2, -0.25),)), effector=False)
    r, c = np.floor(world_to_pixel((0.2, -0.25))).astype(int)
    assert tuple(img[r, c]) == board.COLOUR_RGB["red"]
    assert img[:36].mean() > img[36:].mean()  # small x (the block) is at the top of the image


def mask(shape):
    img = Renderer((72, 96)).render(Scene((Block("red", shape, 0.35, 0.0),)), effector=False)
    return img[..., 1].astype(int)  # red blocks change G relative to the board only through anti-aliasing


def test_shapes_are_distinguishable_at_default_size():
    crops = {
        s: Renderer((72, 96)).render(Scene((Block("red", s, 0.35, 0.0),)), effector=False)[28:44, 40:56, 0]
        for s in board.SHAPES
    }
    for a in board.SHAPES:
        for b in board.SHAPES:
            if a < b:
                diff = np.abs(crops[a].astype(int) - crops[b].astype(int)).sum()
                assert diff > 1500, (a, b, diff)


@pytest.mark.parametrize("preset", SCENE_PRESETS)
def test_presets_render_deterministically(preset):
    sc1 = sample_scene(SceneConfig.preset(preset), np.random.default_rng(7))
    sc2 = sample_scene(SceneConfig.preset(preset), np.random.default_rng(7))
    assert sc1 == sc2
    a, b = render_scene(sc1), Renderer((72, 96)).render(sc2)
    assert a.dtype == np.uint8 and a.shape == (72, 96, 3) and np.array_equal(a, b)


def test_every_symbol_draws_something():
    for kind in board.SYMBOL_KINDS:
        img = render_scene(Scene((), symbols=(Symbol(kind, 0.35, 0.0, "yellow"),)), size=(144, 192), effector=False)
        assert (img.astype(int).sum(-1) > 400).sum() > 30, kind


def test_video_size_and_bad_sizes():
    sc = sample_scene(SceneConfig(), np.random.default_rng(0))
    assert render_scene(sc, size=(360, 480)).shape == (360, 480, 3)
    with pytest.raises(ValueError, match="at least 8x8"):
        Renderer((4, 4))
    with pytest.raises(ValueError, match="valid backgrounds"):
        Scene((), background="marble")
