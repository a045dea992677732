"""rt2.actions: robot actions as text tokens (RT-2 section 3.2).

::

    from rt2.actions import ActionSpace, ActionTokenizer, ActionVocab
    tok = ActionTokenizer(ActionSpace.language_table())
    tok.to_text(tok.encode([0.03, -0.07]))          # '3 -7'
    tok.decode(tok.from_text("3 -7"))               # float32 [0.03, -0.07]

Modules: ``space`` (Dim, ActionSpace), ``stats`` (NormStats, streaming accumulator, JSON), ``tokenizer``
(ActionTokenizer, ClipStats), ``vocab`` (ActionVocab: action integers <-> language-model token ids),
``errors`` (ActionParseError). numpy only; no torch, no transformers at import time.
"""

from rt2.actions.errors import ActionParseError
from rt2.actions.space import ActionSpace, Dim
from rt2.actions.stats import NormStats, NormStatsAccumulator
from rt2.actions.tokenizer import MODES, ActionTokenizer, ClipStats
from rt2.actions.vocab import ActionVocab

__all__ = [
    "MODES",
    "ActionParseError",
    "ActionSpace",
    "ActionTokenizer",
    "ActionVocab",
    "ClipStats",
    "Dim",
    "NormStats",
    "NormStatsAccumulator",
]
