"""rt2.sim: the tabletop world, a fast Language-Table re-implementation with emergent-skill extras.

    import rt2.sim                                   # registers gymnasium id "rt2/Tabletop-v0"
    env = rt2.sim.TabletopEnv()                      # or gymnasium.make("rt2/Tabletop-v0")
    obs, info = env.reset(seed=0, options={"family": "separate"})
    action = rt2.sim.ScriptedOracle().act(env)       # int64[2] "X Y" units
    obs, reward, terminated, truncated, info = env.step(action)

Modules: ``board`` (constants and vocabularies), ``scene`` (Scene, SceneConfig, sampler), ``render`` (renderer
usable without an env), ``physics`` (pymunk), ``tasks`` (TaskSpec and success tests), ``lexicon`` and
``instructions`` (three languages, train/held-out phrasing), ``env``, ``oracle``, ``oracle_table``.
"""

from rt2.sim.board import (
    BLOCK_SETS,
    COLOURS,
    DIRECTIONS,
    HELDOUT_COLOURS,
    HELDOUT_SHAPES,
    ICONS,
    LOCATIONS,
    SHAPES,
    SYMBOL_KINDS,
    TRAIN_COLOURS,
    TRAIN_SHAPES,
)
from rt2.sim.env import ENV_PRESETS, EnvConfig, SimState, TabletopEnv, parse_action
from rt2.sim.instructions import LANGUAGES, SPLITS, enumerate_instructions, generate, plan_text
from rt2.sim.oracle import OracleConfig, ScriptedOracle
from rt2.sim.render import Renderer, render_scene, world_to_pixel
from rt2.sim.scene import BACKGROUNDS, SCENE_PRESETS, Block, Scene, SceneConfig, Symbol, sample_scene
from rt2.sim.tasks import EMERGENT_FAMILIES, FAMILIES, LT_FAMILIES, REFERENT_KINDS, TaskSpec, evaluate, sample_task

ENV_ID = "rt2/Tabletop-v0"


def _register() -> None:
    from gymnasium.envs.registration import register, registry

    if ENV_ID not in registry:  # importing twice (or reloading) must not raise
        register(id=ENV_ID, entry_point="rt2.sim.env:TabletopEnv")


_register()

__all__ = [
    "BACKGROUNDS",
    "BLOCK_SETS",
    "COLOURS",
    "DIRECTIONS",
    "EMERGENT_FAMILIES",
    "ENV_ID",
    "ENV_PRESETS",
    "FAMILIES",
    "HELDOUT_COLOURS",
    "HELDOUT_SHAPES",
    "ICONS",
    "LANGUAGES",
    "LOCATIONS",
    "LT_FAMILIES",
    "REFERENT_KINDS",
    "SCENE_PRESETS",
    "SHAPES",
    "SPLITS",
    "SYMBOL_KINDS",
    "TRAIN_COLOURS",
    "TRAIN_SHAPES",
    "Block",
    "EnvConfig",
    "OracleConfig",
    "Renderer",
    "Scene",
    "SceneConfig",
    "ScriptedOracle",
    "SimState",
    "Symbol",
    "TabletopEnv",
    "TaskSpec",
    "enumerate_instructions",
    "evaluate",
    "generate",
    "parse_action",
    "plan_text",
    "render_scene",
    "sample_scene",
    "sample_task",
    "world_to_pixel",
]
