"""ActionSpace + ActionTokenizer: binning round trips, strict text, clip counting, checkpoints."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rt2.actions import ActionParseError, ActionSpace, ActionTokenizer, Dim, NormStats

SPACES = {"rt1": ActionSpace.rt1(), "language_table": ActionSpace.language_table()}
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _stats(space: ActionSpace, seed: int = 0) -> NormStats:
    """Realistic data stats: continuous dims fill a random sub-range of the bounds."""
    rng = np.random.default_rng(seed)
    lo, hi = space.low, space.high
    centre = lo + (hi - lo) * rng.uniform(0.3, 0.7, space.dim)
    scale = (hi - lo) * rng.uniform(0.05, 0.2, space.dim)
    a = rng.normal(centre, scale, size=(500, space.dim))
    for j, d in enumerate(space.dims):
        if d.discrete:
            a[:, j] = rng.integers(0, d.n, 500)
    return NormStats.from_actions(a, names=space.names)


def _tokenizers():
    out = []
    for name, space in SPACES.items():
        out.append((name, "none", ActionTokenizer(space)))
        for mode in ("min_max", "q01_q99"):
            out.append((name, mode, ActionTokenizer(space, stats=_stats(space), mode=mode)))
    return out


TOKS = _tokenizers()
IDS = [f"{n}-{m}" for n, m, _ in TOKS]


def test_presets_match_the_paper():
    rt1 = ActionSpace.rt1()
    assert rt1.names == ("terminate", "x", "y", "z", "roll", "pitch", "yaw", "gripper") and rt1.dim == 8
    lt = ActionSpace.language_table()
    assert lt.names == ("x", "y") and lt.dim == 2
    np.testing.assert_allclose(lt.low, [-0.1, -0.1])
    tok = ActionTokenizer(rt1)
    assert tok.values(0) == [0, 1] and tok.values(1) == list(range(256))
    assert ActionTokenizer(lt).values(1) == list(range(-10, 11))


def test_paper_example_parses_exactly():
    tok = ActionTokenizer(ActionSpace.rt1())
    b = tok.from_text("1 128 91 241 5 101 127 217")
    assert b.dtype == np.int64 and b.tolist() == [1, 128, 91, 241, 5, 101, 127, 217]
    assert tok.to_text(b) == "1 128 91 241 5 101 127 217"
    assert tok.encode(tok.decode(b)).tolist() == b.tolist()


def test_language_table_units_are_centimetres():
    tok = ActionTokenizer(ActionSpace.language_table())
    assert tok.encode([0.03, -0.07]).tolist() == [3, -7]
    assert tok.to_text(tok.encode([0.03, -0.07])) == "3 -7"
    assert tok.to_text([-3, 7]) == "-3 7"
    np.testing.assert_allclose(tok.decode([10, -10]), [0.1, -0.1], atol=1e-7)
    assert tok.decode([3, -7]).dtype == np.float32


@pytest.mark.parametrize("name,mode,tok", TOKS, ids=IDS)
@FAST
@given(data=st.data())
def test_round_trip_within_half_a_bin(name, mode, tok, data):
    lo, hi = tok.domain
    u = np.array(data.draw(st.lists(st.floats(0, 1), min_size=tok.dim, max_size=tok.dim)))
    a = lo + u * (hi - lo)
    for j, d in enumerate(tok.space.dims):
        if d.discrete:
            a[j] = data.draw(st.integers(0, d.n - 1))
    before = tok.clip_stats.clipped
    err = np.abs(tok.decode(tok.encode(a)).astype(np.float64) - a)
    # float32 output adds ~1e-7 relative on top of the half-bin bound.
    assert (err <= tok.bin_width / 2 + 1e-6 * np.maximum(1, np.abs(a))).all(), (a, err, tok.bin_width)
    assert tok.clip_stats.clipped == before  # in-domain values never count as clipped


@pytest.mark.parametrize("name,mode,tok", TOKS, ids=IDS)
@FAST
@given(seed=st.integers(0, 2**32 - 1))
def test_encode_decode_bins_and_text_round_trip(name, mode, tok, seed):
    rng = np.random.default_rng(seed)
    b = np.stack([rng.integers(lo, hi + 1, size=16) for lo, hi in tok.value_ranges], axis=-1)
    assert (tok.encode(tok.decode(b)) == b).all()
    texts = tok.to_text(b)
    assert texts == [tok.to_text(row) for row in b]
    assert (tok.from_text_batch(texts) == b).all()
    assert all((tok.from_text(t) == row).all() for t, row in zip(texts, b, strict=True))


@pytest.mark.parametrize("name", SPACES)
@settings(max_examples=300, deadline=None)
@given(
    text=st.one_of(
        st.text(max_size=40),
        st.text(alphabet="-+0123456789 \t\n", max_size=30),
        # near-valid: right-ish counts and ranges, so the accepting branch is exercised too
        st.lists(st.integers(-12, 260), min_size=1, max_size=9).map(lambda xs: " ".join(map(str, xs))),
    )
)
def test_random_text_parses_legally_or_raises(name, text):
    tok = ActionTokenizer(SPACES[name])
    try:
        b = tok.from_text(text)
    except ActionParseError as e:
        assert str(e)  # always a reason
        with pytest.raises(ActionParseError):
            tok.from_text_batch(["0 " * (tok.dim - 1) + "0", text])
        return
    assert b.shape == (tok.dim,) and b.dtype == np.int64
    assert tok.to_text(b) == text.strip()  # accepted text is canonical
    assert (tok.from_text_batch([text]) == b).all()


@pytest.mark.parametrize(
    "text,reason",
    [
        ("3 -7 1", "extra"),
        ("3", "missing"),
        ("", "empty"),
        ("3  -7", "double space"),
        ("3\t-7", "whitespace"),
        ("3 x", "not an integer"),
        ("3.0 -7", "not an integer"),
        ("+3 -7", "canonical"),
        ("03 -7", "canonical"),
        ("-0 1", "canonical"),
        ("3 -11", "outside"),
        ("\u0663 1", "not an integer"),  # Arabic-Indic 3: int() would accept it
        ("1_0 1", "not an integer"),  # int() would accept it too
    ],
)
def test_malformed_language_table_text(text, reason):
    tok = ActionTokenizer(ActionSpace.language_table())
    with pytest.raises(ActionParseError, match=reason):
        tok.from_text(text)
    assert issubclass(ActionParseError, ValueError)


def test_whitespace_policy_and_batch_errors_name_the_row():
    tok = ActionTokenizer(ActionSpace.language_table())
    assert tok.from_text("  3 -7\n").tolist() == [3, -7]
    assert tok.from_text_batch([" 3 -7", "0 10\n"]).tolist() == [[3, -7], [0, 10]]
    with pytest.raises(ActionParseError, match="#2"):
        tok.from_text_batch(["1 1", "2 2", "3 -7 1", "4 4"])
    with pytest.raises(ActionParseError, match="#0"):
        tok.from_text_batch(["3 -7\n1 2"])  # a newline inside one text must not become two rows
    with pytest.raises(ActionParseError, match="str"):
        tok.from_text(None)  # type: ignore[arg-type]


def test_rt1_position_legality():
    tok = ActionTokenizer(ActionSpace.rt1())
    with pytest.raises(ActionParseError, match="terminate"):
        tok.from_text("2 128 91 241 5 101 127 217")
    with pytest.raises(ActionParseError, match="0..255"):
        tok.from_text("1 128 91 241 5 101 127 256")


def test_clipping_is_counted_not_silent():
    tok = ActionTokenizer(ActionSpace.language_table())
    b = tok.encode([[0.5, 0.0], [-0.2, 0.05], [0.01, 0.02]])
    assert b.tolist() == [[10, 0], [-10, 5], [1, 2]]
    cs = tok.clip_stats
    assert (cs.seen, cs.above, cs.below, cs.clipped) == (3, (1, 0), (1, 0), 2)
    assert cs.rate == pytest.approx(2 / 6) and cs.per_dim() == {"x": pytest.approx(2 / 3), "y": 0.0}
    tok.reset_clip_stats()
    assert tok.clip_stats.clipped == 0 and tok.clip_stats.seen == 0


def test_q01_q99_clips_about_two_percent():
    space = ActionSpace.language_table()
    a = np.random.default_rng(1).normal(0, 0.02, size=(20_000, 2))
    tok = ActionTokenizer(space, stats=NormStats.from_actions(a, names=space.names), mode="q01_q99")
    tok.encode(a)
    assert tok.clip_stats.rate == pytest.approx(0.02, abs=0.002)


@pytest.mark.parametrize(
    "bad,match",
    [
        ([0.1, np.nan], "non-finite"),
        ([0.1, np.inf], "non-finite"),
        ([0.1, 0.2, 0.3], r"shape \[\.\.\., 2\]"),
        (["a", "b"], "numeric"),
        ([[0.1, 0.2], [0.3]], "numeric"),
    ],
)
def test_validate_errors(bad, match):
    tok = ActionTokenizer(ActionSpace.language_table())
    with pytest.raises(ValueError, match=match):
        tok.encode(bad)


def test_discrete_values_are_never_clipped_or_normalized():
    space = ActionSpace.rt1()
    tok = ActionTokenizer(space)
    with pytest.raises(ValueError, match="terminate"):
        tok.encode([0.5, 0, 0, 0, 0, 0, 0, 0.5])
    with pytest.raises(ValueError, match="terminate"):
        tok.encode([2, 0, 0, 0, 0, 0, 0, 0.5])
    with pytest.raises(ValueError, match="never normalized"):
        ActionTokenizer(space, stats=_stats(space), mode={"terminate": "min_max"})
    assert ActionTokenizer(space, stats=_stats(space), mode="min_max").modes[0] == "none"


def test_decode_rejects_illegal_bins():
    tok = ActionTokenizer(ActionSpace.language_table())
    with pytest.raises(ValueError, match="legal range -10..10"):
        tok.decode([11, 0])
    with pytest.raises(ValueError, match="integers"):
        tok.decode([1.5, 0.0])


def test_bad_configuration_errors():
    lt = ActionSpace.language_table()
    with pytest.raises(ValueError, match="need NormStats"):
        ActionTokenizer(lt, mode="q01_q99")
    with pytest.raises(ValueError, match="do not match"):
        ActionTokenizer(lt, stats=_stats(ActionSpace.rt1()))
    with pytest.raises(ValueError, match="unique"):
        ActionSpace(dims=(Dim("x"), Dim("x")))
    with pytest.raises(ValueError, match="low < high"):
        Dim("x", low=1.0, high=0.0)


def test_constant_dimension_falls_back_to_space_bounds_loudly():
    space = ActionSpace.language_table()
    a = np.c_[np.random.default_rng(0).normal(0, 0.02, 100), np.zeros(100)]
    with pytest.warns(UserWarning, match="near"):
        tok = ActionTokenizer(space, stats=NormStats.from_actions(a, names=space.names), mode="min_max")
    assert tok.fallback_dims == ("y",)
    np.testing.assert_allclose(tok.domain[0][1], -0.1)


@pytest.mark.parametrize("name,mode,tok", TOKS, ids=IDS)
def test_checkpoint_dict_reproduces_the_tokenizer(name, mode, tok):
    d = json.loads(json.dumps(tok.to_dict()))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tok2 = ActionTokenizer.from_dict(d)
    a = np.random.default_rng(3).uniform(tok.space.low, tok.space.high, size=(64, tok.dim))
    a[:, tok.space.discrete_mask] = 0
    assert (tok2.encode(a) == tok.encode(a)).all()
    assert tok2.modes == tok.modes and tok2.n_bins == tok.n_bins
    assert ActionSpace.from_dict(tok.space.to_dict()) == tok.space


def test_encode_is_vectorised_over_leading_axes():
    tok = ActionTokenizer(ActionSpace.rt1())
    a = np.zeros((3, 4, 8))
    assert tok.encode(a).shape == (3, 4, 8) and tok.decode(tok.encode(a)).shape == (3, 4, 8)
