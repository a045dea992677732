"""A deterministic BPE trainer for the built-in text tokenizer (``rt2.models.text_tokenizer``).

Why not ``tokenizers.trainers.BpeTrainer``: it is not reproducible across processes. Trained on the same corpus
in three separate processes it gave three different vocabularies (different ids for the same pieces) and merge
lists (measured 2026-12-07: "push the yellow star" -> [239, 196, 244, 241] in one process, [240, 196, 245, 242] in
another), most likely because equal counts are ranked in a Rust HashMap's per-process random order. A fresh
tokenizer is trained by ``rt2 pretrain`` and ``rt2 train --regime scratch``, so the same command gave different
models. Here every tie is broken by the strings themselves.

Semantics match the WordPiece-style BPE the tokenizer uses: a word's first character is a piece, every later
character is a ``##`` continuation piece, and merging ``a`` with ``##b`` gives ``ab`` (``##ab`` if ``a`` was a
continuation). The training corpora are small (thousands of lines of a synthetic web with a few hundred distinct
words), so a plain recount per merge is fast enough (~1 s).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence


def _merge(symbols: list[str], a: str, b: str, new: str) -> list[str]:
    out, i = [], 0
    while i < len(symbols):
        if i + 1 < len(symbols) and symbols[i] == a and symbols[i + 1] == b:
            out.append(new)
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return out


def train_bpe(
    word_counts: Mapping[str, int], vocab_size: int, min_frequency: int, special: Sequence[str], prefix: str = "##"
) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Word frequencies -> (vocab {piece: id}, merges in order). Ids: ``special`` first, then the alphabet in
    sorted order, then one piece per merge. Each step merges the most frequent adjacent pair (ties: the smallest
    pair by its strings) while its count is >= ``min_frequency`` and the vocabulary is below ``vocab_size``."""
    vocab: dict[str, int] = {t: i for i, t in enumerate(special)}
    words = sorted(w for w in word_counts if w)
    splits = {w: [w[0]] + [prefix + c for c in w[1:]] for w in words}
    for piece in sorted({p for syms in splits.values() for p in syms}):
        vocab.setdefault(piece, len(vocab))
    merges: list[tuple[str, str]] = []
    while len(vocab) < vocab_size:
        pairs: Counter[tuple[str, str]] = Counter()
        for w in words:
            syms = splits[w]
            for pair in zip(syms, syms[1:], strict=False):
                pairs[pair] += word_counts[w]
        if not pairs:
            break
        (a, b), count = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
        if count < min_frequency:
            break
        new = a + b[len(prefix) :]  # b is always a continuation piece: it never starts a word
        merges.append((a, b))
        vocab.setdefault(new, len(vocab))
        for w in words:
            if len(splits[w]) > 1:
                splits[w] = _merge(splits[w], a, b, new)
    return vocab, merges
