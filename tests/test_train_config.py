"""TrainConfig: presets, --set / per-field flag overrides, typo errors naming the closest valid key."""

from __future__ import annotations

import argparse

import pytest

from rt2.cli import Parser
from rt2.train.config import (
    PRESETS,
    TrainConfig,
    add_config_arguments,
    apply_overrides,
    config_from_args,
    preset,
)


def _parse(argv):
    p = Parser(prog="t")
    add_config_arguments(p, default_preset="cofinetune")
    return config_from_args(p.parse_args(argv))


def test_presets_are_valid_and_distinct():
    assert {"debug", "pretrain", "scratch", "finetune", "cofinetune"} <= set(PRESETS)
    for name, cfg in PRESETS.items():
        assert isinstance(cfg, TrainConfig), name
        assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    assert preset("cofinetune").robot_share == 0.5


def test_config_is_frozen():
    with pytest.raises(AttributeError):
        preset("debug").lr = 1.0  # type: ignore[misc]


def test_set_overrides_parse_by_type():
    cfg = apply_overrides(preset("debug"), ["lr=3e-4", "steps=7", "freeze_vision=true", "precision=bf16"])
    assert (cfg.lr, cfg.steps, cfg.freeze_vision, cfg.precision) == (3e-4, 7, True, "bf16")
    assert apply_overrides(cfg, ["freeze-vision=no"]).freeze_vision is False


def test_set_typo_names_closest_key():
    with pytest.raises(ValueError, match="did you mean 'robot_share'"):
        apply_overrides(preset("debug"), ["robot_shar=0.6"])
    with pytest.raises(ValueError, match="expects int"):
        apply_overrides(preset("debug"), ["steps=many"])
    with pytest.raises(ValueError, match="key=value"):
        apply_overrides(preset("debug"), ["steps"])


def test_unknown_preset_names_closest():
    with pytest.raises(ValueError, match="did you mean 'cofinetune'"):
        preset("cofinetun")


def test_invalid_values_fail_clearly():
    with pytest.raises(ValueError, match="robot_share"):
        apply_overrides(preset("debug"), ["robot_share=0"])
    with pytest.raises(ValueError, match="divisible by grad_accum"):
        apply_overrides(preset("debug"), ["batch_size=5", "grad_accum=2"])
    with pytest.raises(ValueError, match="num_processes x grad_accum"):
        apply_overrides(preset("debug"), ["batch_size=4"]).micro_batch(3)


def test_cli_order_preset_then_flags_then_set():
    cfg = _parse(["--lr", "0.01", "--steps", "9", "--set", "steps=11", "--no-freeze-vision", "--precision", "fp32"])
    assert cfg.lr == 0.01 and cfg.steps == 11 and cfg.precision == "fp32"
    assert cfg.robot_share == preset("cofinetune").robot_share
    assert _parse(["--preset", "debug"]).steps == preset("debug").steps


def test_cli_flag_typo_names_closest(capsys):
    with pytest.raises(SystemExit):
        _parse(["--robot-sahre", "0.6"])
    assert "did you mean --robot-share" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _parse(["--precision", "bf61"])
    assert "did you mean 'bf16'" in capsys.readouterr().err


def test_every_field_has_a_flag_and_help():
    p = argparse.ArgumentParser()
    add_config_arguments(p)
    text = p.format_help()
    for name in TrainConfig.__dataclass_fields__:
        assert "--" + name.replace("_", "-") in text
