"""Policy: input validation, frame handling, metadata, int8, checkpoint loading."""

import json

import numpy as np
import pytest

from backbone_checks import sample_images, tiny_vla
from rt2.policy import Policy


@pytest.fixture(scope="module")
def policy2():
    return Policy(tiny_vla("language_table", n_frames=2, seed=6))


def test_predict_action_shapes_and_legality(policy2):
    obs = sample_images(policy2.vla.backbone, 2, seed=1)
    actions, texts = policy2.predict_action_batch(obs, ["push the red star left", "go"])
    assert actions.shape == (2, 2) and actions.dtype == np.float32
    assert np.all(np.abs(actions) <= 0.1 + 1e-6)
    for a, t in zip(actions, texts, strict=True):
        bins = policy2.vla.action_tokenizer.from_text(t)
        np.testing.assert_allclose(policy2.vla.action_tokenizer.decode(bins), a)
    one = policy2.predict_action(obs[0], "push the red star left")
    np.testing.assert_array_equal(one, actions[0])


def test_single_frame_is_repeated_at_episode_start(policy2):
    f = sample_images(policy2.vla.backbone, 1, seed=2)[0][0]
    a1 = policy2.predict_action([f], "go")
    a2 = policy2.predict_action([f, f], "go")
    a3 = policy2.predict_action(f, "go")  # bare array = one frame
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_array_equal(a1, a3)


def test_any_image_size_is_resized(policy2):
    big = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    a = policy2.predict_action([big], "go")
    assert a.shape == (2,)


@pytest.mark.parametrize(
    "images, msg",
    [
        ([np.zeros((24, 32), np.uint8)], "grayscale"),
        ([np.zeros((24, 32, 4), np.uint8)], "alpha"),
        ([np.zeros((24, 32, 3), np.float32)], "uint8"),
        ([np.zeros((24, 32, 3), np.uint8)] * 3, "at most 2 frame"),
        ([], "no frames"),
        ("image.png", "expected a list"),
    ],
)
def test_input_validation(policy2, images, msg):
    with pytest.raises(ValueError, match=msg):
        policy2.predict_action(images, "go")


def test_instruction_validation(policy2):
    obs = sample_images(policy2.vla.backbone, 2)
    with pytest.raises(ValueError, match="not a single string"):
        policy2.predict_action_batch(obs, "go")
    with pytest.raises(ValueError, match="observations but"):
        policy2.predict_action_batch(obs, ["go"])
    with pytest.raises(ValueError, match="empty"):
        policy2.predict_action(obs[0], "   ")


def test_answer_and_plan(policy2):
    obs = sample_images(policy2.vla.backbone, 1)[0]
    assert isinstance(policy2.answer(obs, "what color is the star?", max_new_tokens=4), str)
    plan, action = policy2.plan_and_act(obs, "push the fruit", max_plan_tokens=4)
    assert isinstance(plan, str) and action.shape == (2,)


def test_metadata(policy2):
    meta = policy2.metadata()
    json.dumps(meta)
    assert meta["model"] == "pali-tiny" and meta["n_frames"] == 2 and meta["image_size"] == [24, 32]
    assert meta["action_space"]["names"] == ["x", "y"] and meta["action_space"]["dim"] == 2
    assert meta["action_space"]["value_ranges"] == [[-10, 10], [-10, 10]]
    assert "rt2_version" in meta and "norm_stats_key" in meta


def test_int8_quantized_policy(tmp_path):
    vla = tiny_vla("rt1", seed=7)
    vla.save_pretrained(tmp_path / "ck")
    q = Policy.from_pretrained(tmp_path / "ck", quantize="int8", num_threads=1)
    obs = sample_images(q.vla.backbone, 2)
    actions, texts = q.predict_action_batch(obs, ["go", "push the red star left"])
    assert actions.shape == (2, 8)
    for t in texts:
        q.vla.action_tokenizer.from_text(t)
    assert q.metadata()["quantize"] == "int8"
    with pytest.raises(ValueError, match="quantize"):
        Policy(vla, quantize="int4")
