"""ActionVocab: which language-model token id stands for each action integer.

Three strategies from the RT-2 paper (section 3.2)::

    vocab = ActionVocab.numeric(text_tok, tok)                  # PaLI-X: every integer is already one token
    vocab = ActionVocab.least_used(text_tok, tok, corpus)       # PaLM-E: overwrite the n least used tokens
    vocab = ActionVocab.added(text_tok, tok)                    # n new tokens <act_v>; resize embeddings after

    ids = vocab.ids_for_bins(tok.encode(action))                # int64[..., D] target ids for the LM
    bins = vocab.bins_for_ids(generated_ids)                    # strict inverse; ActionParseError otherwise
    vocab.allowed_ids(0)                                        # constrained decoding at position 0

``text_tok`` is duck-typed: a ``tokenizers.Tokenizer``, a Hugging Face ``PreTrainedTokenizerBase`` or anything
with ``get_vocab()`` and ``encode(text)`` (returning ids or an object with ``.ids``); ``added`` also needs
``add_tokens(list[str])``. transformers is never imported here.

How targets become ids: always use ``ids_for_bins`` (never re-tokenize the action text), so training targets,
constrained decoding and parsing agree by construction. For ``numeric`` the mapping is also checked against
the real tokenizer *in context*: the action text follows the prompt's ``"A:"`` with a space, so value ``v``'s
id is the single id of ``encode(" " + str(v))``, and ``encode(" " + tok.to_text(b))`` must give exactly
``ids_for_bins(b)`` for covering rows ``b`` (every legal value at every position). ``least_used`` and
``added`` tokens are symbols, not digits: their text form is not the action text.

After ``added``, the caller must resize the model's embeddings to at least ``vocab.min_vocab_size`` rows.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from rt2.actions.errors import ActionParseError
from rt2.actions.tokenizer import ActionTokenizer

STRATEGIES = ("numeric", "least_used", "added")
FORMAT = "rt2.action_vocab"


# ---- duck-typed text tokenizer access --------------------------------------------------------------------
def _encode(text_tok: Any, text: str) -> list[int]:
    """Ids of ``text`` without BOS/EOS. Works for tokenizers.Tokenizer, HF tokenizers and plain encoders."""
    try:
        params = inspect.signature(text_tok.encode).parameters
        kw = "add_special_tokens" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
    except (TypeError, ValueError):  # no introspectable signature: assume the common keyword exists
        kw = True
    out = text_tok.encode(text, add_special_tokens=False) if kw else text_tok.encode(text)
    ids = getattr(out, "ids", out)
    return [int(i) for i in ids]


def _vocab(text_tok: Any) -> dict[str, int]:
    if not hasattr(text_tok, "get_vocab"):
        raise TypeError(
            f"text tokenizer {type(text_tok).__name__} has no get_vocab(); pass a tokenizers.Tokenizer "
            "or a Hugging Face tokenizer"
        )
    return {str(k): int(v) for k, v in text_tok.get_vocab().items()}


def _special_ids(text_tok: Any) -> set[int]:
    ids: set[int] = set()
    hf = getattr(text_tok, "all_special_ids", None)  # Hugging Face
    if hf is not None:
        ids.update(int(i) for i in hf)
    dec = getattr(text_tok, "get_added_tokens_decoder", None)  # tokenizers.Tokenizer
    if callable(dec):
        ids.update(int(i) for i, t in dec().items() if getattr(t, "special", False))
    own = getattr(text_tok, "special_ids", None)  # rt2's own TextTokenizer, if it exposes them
    if own is not None:
        ids.update(int(i) for i in (own() if callable(own) else own))
    return ids


class ActionVocab:
    """Bijection between action integers and token ids, plus per-position legality. Immutable after init."""

    def __init__(
        self,
        strategy: str,
        value_to_id: Mapping[int, int],
        value_ranges: Sequence[tuple[int, int]],
        names: Sequence[str],
        tokens: Mapping[int, str] | None = None,
    ) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown ActionVocab strategy {strategy!r}; choose one of {STRATEGIES}")
        if len(names) != len(value_ranges):
            raise ValueError(f"{len(names)} names for {len(value_ranges)} positions")
        self.strategy = strategy
        self.names = tuple(names)
        self.value_ranges = tuple((int(a), int(b)) for a, b in value_ranges)
        self.value_to_id = {int(v): int(i) for v, i in value_to_id.items()}
        self.tokens = {int(v): str(t) for v, t in (tokens or {}).items()}
        needed = sorted({v for a, b in self.value_ranges for v in range(a, b + 1)})
        missing = [v for v in needed if v not in self.value_to_id]
        if missing:
            raise ValueError(f"ActionVocab has no id for action value(s) {missing[:10]}")
        ids = list(self.value_to_id.values())
        if len(set(ids)) != len(ids) or min(ids) < 0:
            raise ValueError("ActionVocab ids must be distinct and non-negative (one token per action value)")
        self._vmin = needed[0]
        table = np.full(needed[-1] - needed[0] + 1, -1, np.int64)
        for v in needed:
            table[v - self._vmin] = self.value_to_id[v]
        self._table = table
        order = np.argsort(np.array(ids))
        self._sorted_ids = np.array(ids, np.int64)[order]
        self._sorted_vals = np.array(list(self.value_to_id.keys()), np.int64)[order]
        self._vlo = np.array([a for a, _ in self.value_ranges], np.int64)
        self._vhi = np.array([b for _, b in self.value_ranges], np.int64)

    # ---- strategies ----------------------------------------------------------------------------------------
    @classmethod
    def numeric(cls, text_tok: Any, action_tok: ActionTokenizer) -> ActionVocab:
        """Use the tokenizer's own integer tokens; refuse (naming the first integer) if one is not a single token."""
        values = _all_values(action_tok)
        specials = _special_ids(text_tok)
        inv = {i: s for s, i in _vocab(text_tok).items()}

        def single(v: int) -> int | None:
            ids = _encode(text_tok, f" {v}")
            # Trap: an UNK or byte-fallback token is "one id" too; the token must spell the integer itself
            # (after the tokenizer's space marker: GPT-2 'Ġ', SentencePiece '▁').
            if len(ids) == 1 and ids[0] not in specials and inv.get(ids[0], "").lstrip(" Ġ▁") == str(v):
                return ids[0]
            return None

        mapping: dict[int, int] = {}
        for v in values:
            i = single(v)
            if i is None:
                bad = [u for u in values if single(u) is None]
                ids = _encode(text_tok, f" {v}")
                raise ValueError(
                    f"numeric action vocab needs every integer to be one token spelling it, but {v} is not: "
                    f"{f' {v}'!r} encodes to {ids} = {[inv.get(x) for x in ids]} ({len(bad)} of {len(values)} "
                    "integers fail). Use ActionVocab.least_used(...) or ActionVocab.added(...) for this tokenizer."
                )
            mapping[v] = i
        if len(set(mapping.values())) != len(mapping):
            raise ValueError("numeric action vocab: two integers encode to the same token id (lossy tokenizer)")
        vocab = cls(
            "numeric", mapping, action_tok.value_ranges, action_tok.space.names, _token_strings(text_tok, mapping)
        )
        vocab._check_in_context(text_tok, action_tok)
        return vocab

    @classmethod
    def least_used(cls, text_tok: Any, action_tok: ActionTokenizer, corpus: Iterable[str]) -> ActionVocab:
        """Overwrite the n least frequent non-special tokens, counted over ``corpus`` (your training text).

        Ties (notably never-seen tokens) go to the *highest* id first: late BPE merges are the longest, rarest
        strings, so the choice stays away from bytes and frequent pieces. Chosen ids are assigned to action
        values in ascending order of both.
        """
        values = _all_values(action_tok)
        vocab = _vocab(text_tok)
        specials = _special_ids(text_tok)
        size = max(vocab.values()) + 1
        counts = np.zeros(size, np.int64)
        n_texts = 0
        for text in corpus:
            if not isinstance(text, str):
                raise TypeError(f"least_used corpus must yield str, got {type(text).__name__}")
            ids = _encode(text_tok, text)
            if ids:
                counts += np.bincount(np.asarray(ids, np.int64), minlength=size)[:size]
            n_texts += 1
        if n_texts == 0:
            raise ValueError("least_used needs a non-empty corpus (the text the model trains on) to count tokens")
        candidates = np.array(sorted(set(vocab.values()) - specials), np.int64)
        if len(candidates) < len(values):
            raise ValueError(
                f"tokenizer has only {len(candidates)} non-special tokens but {len(values)} action values are needed"
            )
        # lexsort: last key is primary -> count ascending, then id descending.
        order = np.lexsort((-candidates, counts[candidates]))
        chosen = np.sort(candidates[order[: len(values)]])
        mapping = {v: int(i) for v, i in zip(values, chosen, strict=True)}
        return cls(
            "least_used", mapping, action_tok.value_ranges, action_tok.space.names, _token_strings(text_tok, mapping)
        )

    @classmethod
    def added(cls, text_tok: Any, action_tok: ActionTokenizer, template: str = "<act_{}>") -> ActionVocab:
        """Append one new token per action value (``<act_-10>`` ... ``<act_10>``) with ``text_tok.add_tokens``.

        Idempotent: tokens already present (a tokenizer restored from a checkpoint) keep their ids. The caller
        must then resize the model's input/output embeddings to ``vocab.min_vocab_size`` rows or more.
        """
        if "{}" not in template:
            raise ValueError(f"template must contain '{{}}' for the integer, got {template!r}")
        if not callable(getattr(text_tok, "add_tokens", None)):
            raise TypeError(f"text tokenizer {type(text_tok).__name__} has no add_tokens(); cannot add action tokens")
        values = _all_values(action_tok)
        strings = [template.format(v) for v in values]
        text_tok.add_tokens(strings)
        vocab = _vocab(text_tok)
        mapping: dict[int, int] = {}
        for v, s in zip(values, strings, strict=True):
            ids = _encode(text_tok, s)
            if s not in vocab or ids != [vocab[s]]:
                raise ValueError(f"added action token {s!r} did not become a single token (encodes to {ids})")
            mapping[v] = vocab[s]
        return cls(
            "added", mapping, action_tok.value_ranges, action_tok.space.names, dict(zip(values, strings, strict=True))
        )

    # ---- lookups -------------------------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return len(self.value_ranges)

    @property
    def action_ids(self) -> list[int]:
        """Every action token id, sorted."""
        return self._sorted_ids.tolist()

    @property
    def min_vocab_size(self) -> int:
        """The embedding table must have at least this many rows (max action id + 1)."""
        return int(self._sorted_ids[-1]) + 1

    def allowed_ids(self, position: int) -> list[int]:
        """Sorted ids legal at ``position`` (rt1 position 0 -> the 2 terminate ids)."""
        if not isinstance(position, (int, np.integer)) or not 0 <= position < self.dim:
            raise IndexError(f"position must be an int in 0..{self.dim - 1}, got {position!r}")
        a, b = self.value_ranges[position]
        return sorted(int(self._table[v - self._vmin]) for v in range(a, b + 1))

    def ids_for_bins(self, bins: Any) -> np.ndarray:
        """int[..., D] action integers -> int64[..., D] token ids (ValueError on an illegal integer)."""
        b = np.asarray(bins)
        if b.dtype == np.bool_ or not np.issubdtype(b.dtype, np.integer) or b.ndim == 0 or b.shape[-1] != self.dim:
            raise ValueError(f"bins must be int[..., {self.dim}], got dtype {b.dtype} shape {b.shape}")
        bad = (b < self._vlo) | (b > self._vhi)
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            a, hi = self.value_ranges[idx[-1]]
            raise ValueError(f"bin {int(b[idx])} at {idx} is outside {self.names[idx[-1]]!r}'s range {a}..{hi}")
        return self._table[b.astype(np.int64) - self._vmin]

    def bins_for_ids(self, ids: Any) -> np.ndarray:
        """int[..., D] token ids -> int64[..., D] action integers; ActionParseError on a non-action or misplaced id."""
        x = np.asarray(ids)
        if x.dtype == np.bool_ or not np.issubdtype(x.dtype, np.integer):
            raise ActionParseError(f"token ids must be integers, got dtype {x.dtype}")
        if x.ndim == 0 or x.shape[-1] != self.dim:
            raise ActionParseError(f"expected {self.dim} action token ids per action, got shape {x.shape}")
        x = x.astype(np.int64)
        pos = np.clip(np.searchsorted(self._sorted_ids, x), 0, len(self._sorted_ids) - 1)
        found = self._sorted_ids[pos] == x
        if not found.all():
            idx = tuple(int(i) for i in np.argwhere(~found)[0])
            raise ActionParseError(
                f"token id {int(x[idx])} at {idx} (position {self.names[idx[-1]]!r}) is not an action token "
                f"({self.strategy} vocab)"
            )
        vals = self._sorted_vals[pos]
        bad = (vals < self._vlo) | (vals > self._vhi)
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            j = idx[-1]
            raise ActionParseError(
                f"token id {int(x[idx])} means value {int(vals[idx])}, which is not legal at position {j} "
                f"({self.names[j]!r}, legal {self.value_ranges[j][0]}..{self.value_ranges[j][1]})"
            )
        return vals

    # ---- checks and (de)serialization ----------------------------------------------------------------------
    def _check_in_context(self, text_tok: Any, action_tok: ActionTokenizer) -> None:
        """Rows that put every legal value at every position; " " + text must tokenize to exactly our ids."""
        longest = max(b - a + 1 for a, b in self.value_ranges)
        k = np.arange(longest)[:, None]
        rows = self._vlo + k % (self._vhi - self._vlo + 1)
        for row in rows:
            text = " " + action_tok.to_text(row)
            got, want = _encode(text_tok, text), self.ids_for_bins(row).tolist()
            if got != want:
                raise ValueError(
                    f"numeric action vocab is not consistent in context: {text!r} encodes to {got}, but the "
                    f"per-integer ids are {want}; use ActionVocab.added(...) for this tokenizer"
                )

    def verify(self, text_tok: Any) -> None:
        """Check that ``text_tok`` still maps each recorded token string to the recorded id (checkpoint load)."""
        vocab = _vocab(text_tok)
        for v, s in sorted(self.tokens.items()):
            if vocab.get(s) != self.value_to_id[v]:
                raise ValueError(
                    f"tokenizer does not match this action vocab: token {s!r} (action value {v}) has id "
                    f"{vocab.get(s)}, the checkpoint says {self.value_to_id[v]}; load the checkpoint's tokenizer"
                )

    def to_dict(self) -> dict[str, Any]:
        vals = sorted(self.value_to_id)
        return {
            "format": FORMAT,
            "version": 1,
            "strategy": self.strategy,
            "names": list(self.names),
            "value_ranges": [list(r) for r in self.value_ranges],
            "values": vals,
            "ids": [self.value_to_id[v] for v in vals],
            "tokens": [self.tokens.get(v) for v in vals],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ActionVocab:
        if d.get("format") != FORMAT:
            raise ValueError(f"not an action vocab dict (expected 'format': {FORMAT!r}); use ActionVocab.to_dict()")
        if not len(d["values"]) == len(d["ids"]) == len(d["tokens"]):
            raise ValueError("action vocab dict: 'values', 'ids' and 'tokens' must have equal lengths")
        tokens = {int(v): t for v, t in zip(d["values"], d["tokens"], strict=True) if t is not None}
        return cls(
            d["strategy"],
            dict(zip(d["values"], d["ids"], strict=True)),
            [tuple(r) for r in d["value_ranges"]],
            d["names"],
            tokens,
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ActionVocab) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ActionVocab({self.strategy!r}, {len(self.value_to_id)} values, ids {self.action_ids[0]}..{self.action_ids[-1]})"


def _all_values(action_tok: ActionTokenizer) -> list[int]:
    return sorted({v for a, b in action_tok.value_ranges for v in range(a, b + 1)})


def _token_strings(text_tok: Any, mapping: Mapping[int, int]) -> dict[int, str]:
    inv = {i: s for s, i in _vocab(text_tok).items()}
    return {v: inv[i] for v, i in mapping.items() if i in inv}
