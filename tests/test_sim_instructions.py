"""Instruction templates: splits disjoint, every family x language, naming rule, math, seeded."""

import numpy as np
import pytest

from rt2.sim import instructions, tasks
from rt2.sim.lexicon import LANGUAGES, VERBS
from rt2.sim.scene import Block, Scene, SceneConfig, Symbol, sample_scene
from rt2.sim.tasks import TaskSpec


def _specs():
    rng = np.random.default_rng(0)
    out = []
    for family in tasks.FAMILIES:
        for _ in range(40):
            sc = sample_scene(SceneConfig.preset("emergent"), rng)
            spec = tasks.sample_task(family, sc, rng)
            if spec is not None:
                out.append((spec, sc))
                break
    return out


SPECS = _specs()


def test_every_family_found():
    assert sorted(s.family for s, _ in SPECS) == sorted(tasks.FAMILIES)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_family_every_language_both_splits(language):
    for spec, sc in SPECS:
        train = set(instructions.enumerate_instructions(spec, sc, language, "train"))
        held = set(instructions.enumerate_instructions(spec, sc, language, "heldout"))
        assert train and held, (spec.family, language)
        assert not train & held, (spec.family, language, sorted(train & held)[:3])
        assert all("{" not in t and "  " not in t for t in train | held)


def test_heldout_verbs_disjoint():
    for lang in LANGUAGES:
        assert not set(VERBS[lang]["train"]) & set(VERBS[lang]["heldout"])


def test_naming_rule():
    sc = Scene((Block("red", "moon", 0.3, 0), Block("blue", "moon", 0.4, 0), Block("blue", "cube", 0.5, 0)))
    names = lambda n, lang="en": [p.text for p in instructions.block_phrases(n, sc, lang)]  # noqa: E731
    assert names("red moon") == ["red moon", "red block"]  # unique colour
    assert names("blue cube") == ["blue cube", "cube"]  # unique shape
    assert names("blue moon") == ["blue moon"]
    assert names("red moon", "es") == ["luna roja", "bloque rojo"]
    assert names("red moon", "fr") == ["lune rouge", "bloc rouge"]
    spec = TaskSpec("block2block", "red moon", target_block="blue cube")
    en = instructions.enumerate_instructions(spec, sc)
    assert "push the red block next to the cube" in en and "push the red moon to the blue cube" in en
    es = instructions.enumerate_instructions(spec, sc, "es")
    assert "empuja la luna roja al cubo azul" in es  # "a + el" contracts to "al"


def test_seeded_generation_and_plan():
    spec, sc = SPECS[0]
    a = [instructions.generate(spec, sc, np.random.default_rng(9)) for _ in range(3)]
    assert len(set(a)) == 1
    assert instructions.plan_text(spec, sc).startswith("push the ")


def test_property_referent_plan_names_the_block():
    sc = Scene(
        (Block("red", "moon", 0.3, -0.2), Block("blue", "cube", 0.4, 0.1)), symbols=(Symbol("heart", 0.5, 0.2, "blue"),)
    )
    spec = TaskSpec(
        "property_referent", "blue cube", referent="colour_of:heart", goal="block2absolute", location="top_left"
    )
    text = instructions.enumerate_instructions(spec, sc)
    assert "push the block with the same colour as the heart to the top left corner" in text
    assert instructions.plan_text(spec, sc) == "push the blue cube to the top left corner"


def test_math_phrasing():
    sc = Scene((Block("red", "moon", 0.3, -0.2),), symbols=(Symbol("3", 0.5, 0.2, "blue"),))
    spec = TaskSpec("block2symbol", "red moon", symbol="3")
    exprs = [e.text for e in instructions.math_expressions(3)]
    assert "sum of two plus one" in exprs and "result of five minus two" in exprs
    text = instructions.generate(spec, sc, np.random.default_rng(0), math=True)
    assert text.startswith(("push", "move", "slide", "put")) and "3" not in text
    with pytest.raises(ValueError, match="digit symbol"):
        instructions.generate(
            TaskSpec("block2block", "red moon", target_block="red moon"), sc, np.random.default_rng(0), math=True
        )
    for lang in LANGUAGES:
        assert instructions.generate(spec, sc, np.random.default_rng(1), language=lang, math=True)


def test_unknown_language_lists_valid():
    spec, sc = SPECS[0]
    with pytest.raises(ValueError, match="valid languages: en, es, fr"):
        instructions.generate(spec, sc, np.random.default_rng(0), language="de")
