"""rt2.models: backbones behind one interface, the VLA wrapper, decoding and checkpoints.

::

    from rt2.models import TextTokenizer, VLA, build_backbone, list_backbones
    tok = TextTokenizer.train(corpus)                              # local BPE + integer tokens -10..255
    vla = VLA.build("pali-tiny", tok, action_space="language_table", vocab="numeric")
    batch = vla.encode_examples(examples)                          # rt2.data.prompts.Example
    loss, metrics = vla.loss(batch)
    vla.save_pretrained("ckpt"); VLA.from_pretrained("ckpt")

Modules: ``base`` (Backbone ABC, batch contract), ``registry`` (by-name construction and loading), ``pali``
(built-in backbone), ``text_tokenizer``, ``vla``, ``decoding``, ``checkpoint``; ``hf`` (optional, needs
transformers). Heavy modules are imported lazily so ``import rt2.models`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Backbone": "rt2.models.base",
    "TextTokenizerLike": "rt2.models.base",
    "build_backbone": "rt2.models.registry",
    "list_backbones": "rt2.models.registry",
    "load_backbone": "rt2.models.registry",
    "register_backbone": "rt2.models.registry",
    "PaliBackbone": "rt2.models.pali",
    "PaliConfig": "rt2.models.pali",
    "TextTokenizer": "rt2.models.text_tokenizer",
    "VLA": "rt2.models.vla",
    "VLABatch": "rt2.models.vla",
    "VLAConfig": "rt2.models.vla",
    "Decoder": "rt2.models.decoding",
    "Sampling": "rt2.models.decoding",
    "CheckpointError": "rt2.models.checkpoint",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'rt2.models' has no attribute {name!r}")
