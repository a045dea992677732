"""Text tokenizer, prompt formats, Example validation and the shared image transform."""

import numpy as np
import pytest

from backbone_checks import tiny_corpus, tiny_tokenizer
from rt2.actions import ActionTokenizer, ActionVocab
from rt2.data.prompts import (
    Example,
    action_prompt,
    cot_prompt,
    cot_target,
    normalize_instruction,
    split_cot_target,
    vqa_prompt,
)
from rt2.data.transforms import ImageTransform, TransformConfig, check_frame
from rt2.models.text_tokenizer import SPECIAL_TOKENS, TextTokenizer


def test_roundtrip_and_specials():
    tok = tiny_tokenizer()
    for i, s in enumerate(SPECIAL_TOKENS):
        assert tok.token_to_id(s) == i
    for text in [
        "Q: what action should the robot take to push the red star? A: 3 -7",
        "Instruction: Push it Plan: move xyz left Action: 1 128 91 255 0 -10",
        "zebra Quokka 300 x3 a-7 (2.5)!",
    ]:
        assert tok.decode(tok.encode(text)) == text
    ids = tok.encode("hi", add_special_tokens=True)
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id


def test_integers_are_whole_word_tokens():
    tok = tiny_tokenizer()
    for v in (-10, -1, 0, 7, 10, 99, 128, 255):
        assert tok.encode(f" {v}") == [tok.token_to_id(str(v))]
    assert len(tok.encode("300")) > 1 or tok.id_to_token(tok.encode("300")[0]) == "300"
    assert tok.token_to_id("3") not in tok.encode("x3")


def test_numeric_and_least_used_vocab_build():
    tok = tiny_tokenizer()
    for space in ("language_table", "rt1"):
        atok = ActionTokenizer(space)
        ActionVocab.numeric(tok, atok)
        ActionVocab.least_used(tok, atok, tiny_corpus())


def test_save_load_and_errors(tmp_path):
    tok = tiny_tokenizer()
    tok.save(tmp_path)
    again = TextTokenizer.load(tmp_path / "tokenizer.json")
    assert again.get_vocab() == tok.get_vocab()
    with pytest.raises(ValueError, match="empty corpus"):
        TextTokenizer.train([])
    with pytest.raises(ValueError, match="outside"):
        tok.decode([len(tok) + 5])
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a valid tokenizer"):
        TextTokenizer.load(tmp_path / "bad.json")


def test_prompts():
    assert action_prompt("  Push the red star.  ") == "Q: what action should the robot take to Push the red star? A:"
    assert cot_prompt("push it") == "Instruction: push it Plan:"
    assert vqa_prompt("what color?") == "Q: what color? A:"
    assert split_cot_target(cot_target("move left", "3 -7")) == ("move left", "3 -7")
    with pytest.raises(ValueError, match="empty"):
        normalize_instruction(" . ")
    with pytest.raises(ValueError, match="Action:"):
        cot_target("then Action: go", "1 2")


def test_example_validation():
    img = np.zeros((8, 8, 3), np.uint8)
    ex = Example.action([img], "push", [1, 2], "1 2")
    assert ex.kind == "action" and ex.action_bins.dtype == np.int64
    assert Example.cot([img], "push", "go left", [1, 2], "1 2").plan == "go left"
    with pytest.raises(ValueError, match="uint8"):
        Example.text([img.astype(np.float32)], "Caption:", "x")
    with pytest.raises(ValueError, match="needs action_bins"):
        Example((img,), "p", "t", "action")
    with pytest.raises(ValueError, match="kind"):
        Example((img,), "p", "t", "video")


def test_transform_resize_normalize_and_errors():
    tf = ImageTransform(TransformConfig(size=(24, 32)))
    white = np.full((48, 64, 3), 255, np.uint8)
    out = tf([[white]])
    assert out.shape == (1, 1, 3, 24, 32) and out.dtype.is_floating_point
    assert np.allclose(out.numpy(), 1.0)  # (1 - 0.5) / 0.5
    small = tf([[np.zeros((10, 10, 3), np.uint8)]])
    assert small.shape == (1, 1, 3, 24, 32) and np.allclose(small.numpy(), -1.0)
    for bad, msg in [
        (np.zeros((8, 8), np.uint8), "grayscale"),
        (np.zeros((8, 8, 4), np.uint8), "alpha"),
        (np.zeros((3, 8, 8), np.uint8), "channels-first"),
        (np.zeros((8, 8, 3), np.float32), "uint8"),
    ]:
        with pytest.raises(ValueError, match=msg):
            check_frame(bad)


def test_augmentation_is_explicit_and_shared_across_frames():
    tf = ImageTransform(TransformConfig(size=(24, 32)))
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    plain = tf([[img, img]])
    assert np.array_equal(plain.numpy(), tf([[img, img]]).numpy())
    aug = tf([[img, img]], augment=True, rng=np.random.default_rng(1))
    assert not np.allclose(aug.numpy(), plain.numpy())
    assert np.array_equal(aug[0, 0].numpy(), aug[0, 1].numpy()), "same crop/jitter for every frame of one observation"


def test_training_is_reproducible_across_processes(tmp_path):
    """The same corpus gives the same tokenizer.json in two fresh processes (tokenizers' own BpeTrainer did not:
    its ties follow a per-process random hash order, so `rt2 pretrain` and scratch runs were not reproducible)."""
    import subprocess
    import sys

    code = (
        "import sys; from rt2.models.text_tokenizer import TextTokenizer; "
        "c = ['push the red moon to the blue cube', 'what colour is the star? yellow', 'la estrella roja'] * 40; "
        "TextTokenizer.train(c, vocab_size=256).save(sys.argv[1])"
    )
    outs = []
    for i in range(2):
        out = tmp_path / f"tok{i}.json"
        subprocess.run([sys.executable, "-c", code, str(out)], check=True, timeout=120)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]


def test_bpe_merges_most_frequent_pair_and_breaks_ties_by_the_strings():
    from rt2.models.bpe import train_bpe

    vocab, merges = train_bpe({"ab": 3, "cd": 3, "abc": 1}, vocab_size=100, min_frequency=2, special=["<pad>"])
    assert list(vocab)[:6] == ["<pad>", "##b", "##c", "##d", "a", "c"]  # specials, then the sorted alphabet
    assert merges == [("a", "##b"), ("c", "##d")]  # "ab" (count 4) first; then "cd" (3); "ab"+"##c" has 1 < 2
    assert vocab["ab"] == 6 and vocab["cd"] == 7
