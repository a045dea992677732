"""The built-in text tokenizer: a subword BPE trained locally (``rt2.models.bpe``, deterministic), run by ``tokenizers``.

Layout of the vocabulary:

* ids 0..5 are the special tokens ``<pad> <bos> <eos> <unk> <image> <sep>`` (fixed, in that order);
* then the learned BPE vocabulary (words split on whitespace; a piece that continues a word starts with ``##``,
  so decoding restores spaces exactly: "robot take to push?" round-trips);
* then the integers ``-10..255`` as whole-word vocabulary entries (PaLI-X style), so ``ActionVocab.numeric``
  finds one token per action integer. BPE runs with ``ignore_merges``: a whitespace-separated word that is in
  the vocabulary is a single token, so " -7" is one token while "x3", "300" and "(2.5)" keep their usual
  pieces. An integer the BPE already learned keeps its id.

Why ``##`` continuation pieces and not SentencePiece's ``\u2581`` space marker: with word-level splitting the
WordPiece-style decoder puts a space before every word-initial token and none before ``##`` pieces, so
``decode(encode(text))`` gives back ``text`` (whitespace runs collapsed to one space) for any ASCII text.

Saved as a standard ``tokenizer.json`` (``tokenizers.Tokenizer.from_file`` reads it too).
"""

from __future__ import annotations

import json
import os
import string
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers

from rt2.models.bpe import train_bpe

SPECIAL_TOKENS: tuple[str, ...] = ("<pad>", "<bos>", "<eos>", "<unk>", "<image>", "<sep>")
INTEGER_RANGE: tuple[int, int] = (-10, 255)  # inclusive; covers Language-Table -10..10 and 256 bins 0..255
CONTINUATION = "##"


def _alphabet_lines(repeat: int) -> list[str]:
    """Every printable ASCII character as a word start and as a ``##`` piece, ``repeat`` times.

    Without this a character the corpus never shows in that role (e.g. a capital "I" starting a word) becomes
    ``<unk>`` and text no longer round-trips; non-ASCII characters still map to ``<unk>``.
    """
    chars = [c for c in string.printable if not c.isspace()]
    line = " ".join(chars) + " " + " ".join("a" + c for c in chars)
    return [line] * max(repeat, 1)


def _with_whole_words(tok: Tokenizer, words: Sequence[str]) -> Tokenizer:
    """Add ``words`` to the BPE vocabulary as word-initial tokens and turn on ``ignore_merges``.

    With ``ignore_merges`` a whitespace-separated word found in the vocabulary is one token, before any merge:
    " -7" -> ["-7"]. Trap: adding them as *added tokens* instead would also match inside punctuation ("(2.5)"
    -> "( 2 . 5 )" after decoding), because added tokens are cut out of the raw text before word splitting.
    """
    data = json.loads(tok.to_str())
    vocab = data["model"]["vocab"]
    next_id = max(vocab.values()) + 1
    for w in words:
        if w not in vocab:
            vocab[w] = next_id
            next_id += 1
    data["model"]["ignore_merges"] = True
    return Tokenizer.from_str(json.dumps(data))


class TextTokenizer:
    """Wrapper around a ``tokenizers.Tokenizer`` with the surface rt2 uses (``rt2.models.base.TextTokenizerLike``).

    Build with :meth:`train`, persist with :meth:`save` / :meth:`load` (a ``tokenizer.json``).
    """

    def __init__(self, tokenizer: Tokenizer) -> None:
        if not isinstance(tokenizer, Tokenizer):
            raise TypeError(f"TextTokenizer wraps a tokenizers.Tokenizer, got {type(tokenizer).__name__}")
        self._tok = tokenizer
        for i, tok in enumerate(SPECIAL_TOKENS):
            if tokenizer.token_to_id(tok) != i:
                raise ValueError(
                    f"tokenizer is not an rt2 TextTokenizer: special token {tok!r} must have id {i}, "
                    f"has {tokenizer.token_to_id(tok)!r}; build it with TextTokenizer.train"
                )

    # ---- construction --------------------------------------------------------------------------------------
    @classmethod
    def train(
        cls,
        corpus: Iterable[str],
        vocab_size: int = 2048,
        min_frequency: int = 2,
        integers: tuple[int, int] | None = INTEGER_RANGE,
    ) -> TextTokenizer:
        """Train a BPE on ``corpus`` (any iterable of strings, e.g. the web corpus + instruction templates).

        ``vocab_size`` caps the learned part (a small corpus saturates earlier: expect fewer). ``integers``
        adds every integer in the inclusive range as a whole-word token (None: none).
        """
        if vocab_size < len(SPECIAL_TOKENS) + 64:
            raise ValueError(f"vocab_size {vocab_size} is too small; use at least {len(SPECIAL_TOKENS) + 64}")
        normalizer, pre_tokenizer = normalizers.NFKC(), pre_tokenizers.WhitespaceSplit()
        n = 0
        words: Counter[str] = Counter()
        for line in corpus:
            if not isinstance(line, str):
                raise ValueError(f"corpus item {n} is {type(line).__name__}, expected str")
            n += 1
            words.update(w for w, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(line)))
        for line in _alphabet_lines(min_frequency):
            words.update(line.split())
        # Not tokenizers' BpeTrainer: it gives different vocabularies in different processes (rt2.models.bpe).
        vocab, merges = train_bpe(words, vocab_size, min_frequency, SPECIAL_TOKENS, CONTINUATION)
        tok = Tokenizer(
            models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", continuing_subword_prefix=CONTINUATION)
        )
        tok.normalizer, tok.pre_tokenizer = normalizer, pre_tokenizer
        tok.decoder = decoders.WordPiece(prefix=CONTINUATION, cleanup=False)
        tok.add_special_tokens([AddedToken(t, special=True) for t in SPECIAL_TOKENS])
        if n == 0:
            raise ValueError("cannot train a tokenizer on an empty corpus; pass an iterable of strings")
        if integers is not None:
            lo, hi = integers
            tok = _with_whole_words(tok, [str(i) for i in range(lo, hi + 1)])
        return cls(tok)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TextTokenizer:
        """Load a ``tokenizer.json`` (a directory holding one is accepted too)."""
        p = Path(path)
        if p.is_dir():
            p = p / "tokenizer.json"
        if not p.is_file():
            raise FileNotFoundError(f"tokenizer file {p} not found")
        try:
            tok = Tokenizer.from_file(str(p))
        except Exception as e:  # tokenizers raises a bare Exception on malformed JSON
            raise ValueError(f"{p} is not a valid tokenizer.json: {e}") from e
        return cls(tok)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write ``tokenizer.json`` atomically (``path`` may be a directory)."""
        p = Path(path)
        if p.is_dir():
            p = p / "tokenizer.json"
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=".tokenizer.", suffix=".tmp")
        os.close(fd)
        try:
            self._tok.save(tmp)
            os.replace(tmp, p)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    # ---- the TextTokenizerLike surface ---------------------------------------------------------------------
    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        """Token ids of ``text``. ``add_special_tokens=True`` wraps them in BOS ... EOS."""
        if not isinstance(text, str):
            raise ValueError(f"encode takes a str, got {type(text).__name__}")
        ids = self._tok.encode(text, add_special_tokens=False).ids
        return [self.bos_token_id, *ids, self.eos_token_id] if add_special_tokens else ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self._tok.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        """Text of ``ids``; out-of-range ids raise ValueError (a model with a larger head can emit them)."""
        ids = [int(i) for i in ids]
        n = len(self)
        bad = [i for i in ids if not 0 <= i < n]
        if bad:
            raise ValueError(f"token ids {bad[:5]} are outside the tokenizer's vocabulary 0..{n - 1}")
        return self._tok.decode(ids, skip_special_tokens=skip_special_tokens)

    def get_vocab(self) -> dict[str, int]:
        return self._tok.get_vocab(with_added_tokens=True)

    def token_to_id(self, token: str) -> int | None:
        return self._tok.token_to_id(token)

    def id_to_token(self, i: int) -> str | None:
        return self._tok.id_to_token(int(i))

    def add_tokens(self, tokens: Sequence[str]) -> int:
        """Add whole-word tokens (matched only at word boundaries, never split). Returns how many are new."""
        if isinstance(tokens, str):
            tokens = [tokens]
        before = len(self)
        self._tok.add_tokens([AddedToken(t, single_word=True, normalized=False) for t in tokens])
        return len(self) - before

    def __len__(self) -> int:
        return self._tok.get_vocab_size(with_added_tokens=True)

    @property
    def pad_token_id(self) -> int:
        return 0

    @property
    def bos_token_id(self) -> int:
        return 1

    @property
    def eos_token_id(self) -> int:
        return 2

    @property
    def unk_token_id(self) -> int:
        return 3

    @property
    def image_token_id(self) -> int:
        return 4

    @property
    def sep_token_id(self) -> int:
        return 5

    @property
    def special_ids(self) -> tuple[int, ...]:
        return tuple(range(len(SPECIAL_TOKENS)))

    @property
    def backend(self) -> Tokenizer:
        """The wrapped ``tokenizers.Tokenizer``."""
        return self._tok

    def to_str(self) -> str:
        return self._tok.to_str()

    def __repr__(self) -> str:
        return f"TextTokenizer(vocab={len(self)})"
