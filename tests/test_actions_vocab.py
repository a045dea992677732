"""ActionVocab: numeric / least_used / added strategies on tiny tokenizers built here from a few sentences."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from rt2.actions import ActionParseError, ActionSpace, ActionTokenizer, ActionVocab

CORPUS = [
    "Q: what action should the robot take to push the red star to the top left? A:",
    "Q: what action should the robot take to move the blue cube next to the green circle? A:",
    "the robot pushes the yellow hexagon slightly left",
    "a photo of a table with four blocks on it",
] * 3
LT, RT1 = ActionTokenizer(ActionSpace.language_table()), ActionTokenizer(ActionSpace.rt1())


def wordlevel(extra: list[str] | None = None, split_on_punct: bool = True) -> Tokenizer:
    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace() if split_on_punct else pre_tokenizers.WhitespaceSplit()
    trainer = trainers.WordLevelTrainer(special_tokens=["[UNK]", "[PAD]", "[BOS]"])
    tok.train_from_iterator(CORPUS + (extra or []), trainer)
    return tok


def bytelevel_bpe() -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<pad>", "<eos>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CORPUS + ["the 12 blocks are 3 7"], trainer)
    return tok


def with_integers() -> Tokenizer:
    """Every integer -10..255 is one word (WhitespaceSplit keeps '-7' whole), like PaLI-X's vocabulary."""
    return wordlevel([" ".join(str(v) for v in range(-10, 256))] * 2, split_on_punct=False)


def test_numeric_refuses_and_names_the_first_integer():
    with pytest.raises(ValueError, match=r"but -10 is not") as e:
        ActionVocab.numeric(wordlevel(), LT)
    assert "least_used" in str(e.value)  # says what to do instead
    with pytest.raises(ValueError, match=r"but 0 is not"):
        ActionVocab.numeric(wordlevel(), RT1)
    with pytest.raises(ValueError, match=r"but 0 is not"):
        ActionVocab.numeric(bytelevel_bpe(), RT1)  # '3' and '7' are tokens, 0 is not; 128 would be 2 tokens


def test_numeric_works_in_context():
    text_tok = with_integers()
    for tok in (LT, RT1):
        v = ActionVocab.numeric(text_tok, tok)
        assert v.strategy == "numeric"
        b = tok.from_text("1 128 91 241 5 101 127 217" if tok is RT1 else "3 -7")
        ids = v.ids_for_bins(b)
        assert ids.tolist() == text_tok.encode(" " + tok.to_text(b), add_special_tokens=False).ids
        assert (v.bins_for_ids(ids) == b).all()
        assert [text_tok.id_to_token(i) for i in ids] == tok.to_text(b).split(" ")
    assert len(ActionVocab.numeric(text_tok, RT1).allowed_ids(0)) == 2


def test_least_used_picks_rare_tokens_deterministically():
    text_tok = wordlevel()
    v = ActionVocab.least_used(text_tok, LT, CORPUS)
    assert v.strategy == "least_used" and len(v.action_ids) == 21
    specials = {text_tok.token_to_id(s) for s in ("[UNK]", "[PAD]", "[BOS]")}
    assert not specials & set(v.action_ids)
    counts: dict[int, int] = {}
    for t in CORPUS:
        for i in text_tok.encode(t, add_special_tokens=False).ids:
            counts[i] = counts.get(i, 0) + 1
    chosen_max = max(counts.get(i, 0) for i in v.action_ids)
    unchosen = set(text_tok.get_vocab().values()) - set(v.action_ids) - specials
    assert all(counts.get(i, 0) >= chosen_max for i in unchosen)  # nothing rarer was left out
    assert ActionVocab.least_used(wordlevel(), LT, CORPUS) == v  # deterministic
    with pytest.raises(ValueError, match="only .* non-special tokens"):
        ActionVocab.least_used(text_tok, RT1, CORPUS)  # 256 values > tiny vocab
    with pytest.raises(ValueError, match="non-empty corpus"):
        ActionVocab.least_used(text_tok, LT, [])


def test_least_used_on_bpe_for_rt1():
    v = ActionVocab.least_used(bytelevel_bpe(), RT1, CORPUS)
    assert len(v.action_ids) == 256 and len(v.allowed_ids(0)) == 2
    assert v.allowed_ids(0) == sorted(v.ids_for_bins(np.array([[0] + [0] * 7, [1] + [0] * 7]))[:, 0].tolist())


def test_added_tokens_and_idempotence():
    text_tok = wordlevel()
    n0 = text_tok.get_vocab_size()
    v = ActionVocab.added(text_tok, LT)
    assert text_tok.get_vocab_size() == n0 + 21 and v.min_vocab_size == n0 + 21
    assert text_tok.token_to_id("<act_-7>") == v.ids_for_bins(np.array([0, -7]))[1]
    assert ActionVocab.added(text_tok, LT) == v  # already present: same ids, nothing re-added
    assert text_tok.get_vocab_size() == n0 + 21
    v.verify(text_tok)
    with pytest.raises(ValueError, match="does not match"):
        v.verify(wordlevel())


@pytest.mark.parametrize("strategy", ["numeric", "least_used", "added"])
def test_to_dict_reproduces_mapping(strategy):
    text_tok = with_integers() if strategy == "numeric" else wordlevel()
    make = {
        "numeric": lambda: ActionVocab.numeric(text_tok, LT),
        "least_used": lambda: ActionVocab.least_used(text_tok, LT, CORPUS),
        "added": lambda: ActionVocab.added(text_tok, LT),
    }[strategy]
    v = make()
    v2 = ActionVocab.from_dict(json.loads(json.dumps(v.to_dict())))
    assert v2 == v and v2.strategy == strategy and v2.value_to_id == v.value_to_id
    assert [v2.allowed_ids(p) for p in range(2)] == [v.allowed_ids(p) for p in range(2)]
    v2.verify(text_tok)


def test_bins_for_ids_is_strict():
    v = ActionVocab.added(wordlevel(), RT1)
    terminate_ids = v.allowed_ids(0)
    assert terminate_ids == sorted(terminate_ids) and len(terminate_ids) == 2
    good = v.ids_for_bins(np.array([1, 128, 91, 241, 5, 101, 127, 217]))
    with pytest.raises(ActionParseError, match="not an action token"):
        v.bins_for_ids(np.r_[good[:-1], 0])
    bad = good.copy()
    bad[0] = v.ids_for_bins(np.array([0, 5, 0, 0, 0, 0, 0, 0]))[1]  # value 5 at the terminate position
    with pytest.raises(ActionParseError, match="not legal at position 0"):
        v.bins_for_ids(bad)
    with pytest.raises(ActionParseError, match="8 action token ids"):
        v.bins_for_ids(good[:7])


RT1_ADDED = ActionVocab.added(wordlevel(), RT1)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31))
def test_ids_bins_round_trip(seed):
    v = RT1_ADDED
    rng = np.random.default_rng(seed)
    b = np.stack([rng.integers(lo, hi + 1, size=(3, 5)) for lo, hi in RT1.value_ranges], axis=-1)
    ids = v.ids_for_bins(b)
    assert ids.shape == b.shape and (v.bins_for_ids(ids) == b).all()
    assert all(set(ids[..., p].ravel().tolist()) <= set(v.allowed_ids(p)) for p in range(8))


def test_hugging_face_tokenizer_is_duck_typed():
    transformers = pytest.importorskip("transformers")
    hf = transformers.PreTrainedTokenizerFast(tokenizer_object=with_integers(), unk_token="[UNK]", pad_token="[PAD]")
    v = ActionVocab.numeric(hf, LT)
    assert v.ids_for_bins(np.array([3, -7])).tolist() == hf.encode(" 3 -7", add_special_tokens=False)
    hf2 = transformers.PreTrainedTokenizerFast(tokenizer_object=wordlevel(), unk_token="[UNK]", pad_token="[PAD]")
    lu = ActionVocab.least_used(hf2, LT, CORPUS)
    assert not set(hf2.all_special_ids) & set(lu.action_ids)
    added = ActionVocab.added(hf2, LT)
    assert len(hf2) >= added.min_vocab_size
