"""Backbones by name: ``build_backbone("pali-tiny", tokenizer)``, ``list_backbones()``, ``load_backbone(dir)``.

Modules register their presets at import time with :func:`register_backbone`. The built-in ``pali`` presets live
in ``rt2.models.pali``; the Hugging Face families live in ``rt2.models.hf``, which needs the optional
``transformers`` extra. Both are imported lazily on the first lookup, so ``import rt2.models`` stays cheap and a
missing ``transformers`` only matters when an HF backbone is asked for (the error then says so).

A factory is called as ``factory(tokenizer, **overrides)``; ``tokenizer`` may be None for families that load
their own (HF folders). Loading a saved backbone goes through the family recorded in ``backbone.json``.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rt2.models.base import Backbone, TextTokenizerLike, read_meta

BackboneFactory = Callable[..., Backbone]


@dataclass(frozen=True)
class BackboneEntry:
    name: str
    factory: BackboneFactory
    cls: type[Backbone]
    description: str = ""


_REGISTRY: dict[str, BackboneEntry] = {}
_FAMILIES: dict[str, type[Backbone]] = {}
# Modules that register backbones when imported; an ImportError of an optional dependency is remembered and
# reported when someone asks for a name that is not registered.
_PROVIDERS = ("rt2.models.pali", "rt2.models.hf")
_provider_errors: dict[str, str] = {}
_loaded = False


def register_backbone(
    name: str, factory: BackboneFactory, *, cls: type[Backbone], description: str = "", overwrite: bool = False
) -> None:
    """Register ``factory`` under ``name``; ``cls`` (whose ``family`` is recorded in checkpoints) loads saves."""
    if not isinstance(name, str) or not name or any(c.isspace() for c in name):
        raise ValueError(f"backbone name must be a non-empty string without spaces, got {name!r}")
    if not (isinstance(cls, type) and issubclass(cls, Backbone)):
        raise TypeError(f"cls for {name!r} must be a subclass of rt2.models.base.Backbone, got {cls!r}")
    if name in _REGISTRY and not overwrite and _REGISTRY[name].factory is not factory:
        raise ValueError(f"backbone {name!r} is already registered; pass overwrite=True to replace it")
    _REGISTRY[name] = BackboneEntry(name, factory, cls, description)
    _FAMILIES[cls.family] = cls


def _ensure_providers() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for mod in _PROVIDERS:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:
            # Only swallow a missing module (the hf provider itself or its optional transformers dependency);
            # a bug inside a provider must surface.
            if e.name and (e.name == mod or not e.name.startswith("rt2")):
                _provider_errors[mod] = f"{type(e).__name__}: {e}"
            else:
                raise


def list_backbones() -> list[str]:
    """Registered backbone names, sorted."""
    _ensure_providers()
    return sorted(_REGISTRY)


def get_entry(name: str) -> BackboneEntry:
    _ensure_providers()
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        extra = "".join(f"\n  ({mod} not available: {err})" for mod, err in _provider_errors.items())
        raise ValueError(f"unknown backbone {name!r}; registered: {sorted(_REGISTRY)}.{hint}{extra}")
    return _REGISTRY[name]


def build_backbone(name_or_config: Any, tokenizer: TextTokenizerLike | None = None, **overrides: Any) -> Backbone:
    """Build a freshly initialized backbone.

    ``name_or_config``: a registered name (``"pali-tiny"``) or a config object with a ``name`` attribute naming
    a registered entry (the config is then passed to the factory as ``config=``).
    """
    if isinstance(name_or_config, str):
        return get_entry(name_or_config).factory(tokenizer, **overrides)
    name = getattr(name_or_config, "name", None)
    if not isinstance(name, str):
        raise TypeError(
            f"build_backbone takes a registered name or a config with a .name, got {type(name_or_config).__name__}"
        )
    return get_entry(name).factory(tokenizer, config=name_or_config, **overrides)


def backbone_class(family: str) -> type[Backbone]:
    _ensure_providers()
    if family not in _FAMILIES:
        extra = "".join(f"; {mod} not available: {err}" for mod, err in _provider_errors.items())
        raise ValueError(f"checkpoint backbone family {family!r} is not available (known: {sorted(_FAMILIES)}){extra}")
    return _FAMILIES[family]


def load_backbone(directory: str | Path, **kwargs: Any) -> Backbone:
    """Load a backbone written by ``save_pretrained`` (family read from ``backbone.json``)."""
    meta = read_meta(directory)
    return backbone_class(meta["family"]).from_pretrained(directory, **kwargs)
