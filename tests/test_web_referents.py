"""Issue 15: every emergent-suite referent is pointable in web data in the suites' words, and ``rt2 pointing``.

The truth of every web pointing answer is re-derived here from the scene by an independent reading of the question
(word tables inverted, geometry recomputed), not by the generator's own resolution.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from backbone_checks import tiny_vla
from rt2.cli import main
from rt2.data.web import WebCorpus, WebCorpusConfig, find_web_only
from rt2.data.web.referents import EMERGENT_TYPES, REFERENT_TYPES, WEB_TASK_TYPES, ask, sample_question
from rt2.data.web.scene import board_to_grid, parse_grid, sample_web_scene
from rt2.data.web.tasks import TASKS
from rt2.eval.pointing import EMERGENT_SUITES, episode_referents, robot_probes, web_probes
from rt2.eval.suites import get_suite, reset_episode
from rt2.sim import TabletopEnv, board, lexicon
from rt2.sim.env import EnvConfig

NEW_TASKS = tuple(WEB_TASK_TYPES)
WORDS = {w: i for i, w in enumerate(lexicon.NUMBER_WORDS["en"])}


# ---- an independent reader of the questions ----------------------------------------------------------------------
def _inverse(lang: str) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    colours = {w: c for c, pair in lexicon.COLOUR_WORDS[lang].items() for w in pair}
    shapes = {np_.text: s for s, np_ in lexicon.SHAPE_WORDS[lang].items()}
    icons = {np_.text: k for k, nps in lexicon.ICON_WORDS[lang].items() for np_ in nps}
    return colours, shapes, icons


def _strip(question: str) -> tuple[str, str]:
    """-> (language, referent phrase without its article)."""
    for lang, pat in (("en", r"^where is the (.+)\?$"), ("es", r"^¿dónde está (?:el|la) (.+)\?$")):
        m = re.match(pat, question)
        if m:
            return lang, m.group(1)
    m = re.match(r"^où est (?:le |la |l')(.+) \?$", question)
    assert m, question
    return "fr", m.group(1)


def _symbol(scene, text: str, lang: str):
    colours, shapes, icons = _inverse(lang)
    noun = lexicon.DIGIT_NOUN[lang]
    kind = re.sub(rf"^{noun} ", "", text)
    kind = icons.get(kind, kind)
    hits = [s for s in scene.symbols if s.kind == kind]
    return hits[0] if len(hits) == 1 else None


def _block(scene, text: str, lang: str):
    colours, shapes, _ = _inverse(lang)
    words = text.split()
    if lang != "en":
        words = words[::-1]  # "luna roja" -> "roja luna"
    if len(words) == 2 and words[0] in colours and (words[1] in shapes or words[1] == lexicon.BLOCK_WORD[lang].text):
        c = colours[words[0]]
        hits = [b for b in scene.blocks if b.colour == c and (words[1] not in shapes or b.shape == shapes[words[1]])]
    elif len(words) == 1 and words[0] in shapes:
        hits = [b for b in scene.blocks if b.shape == shapes[words[0]]]
    else:
        return None
    return hits[0] if len(hits) == 1 else None


def _arith(text: str) -> int | None:
    m = re.match(r"^(?:sum|result|product) of (\w+) (plus|minus|times) (\w+)$", text)
    if not m:
        return None
    a, op, b = WORDS[m.group(1)], m.group(2), WORDS[m.group(3)]
    return a + b if op == "plus" else a - b if op == "minus" else a * b


def _relation(scene, text: str):
    blocks = scene.blocks
    m = re.match(r"^block (?:with the same colour as|that matches the colour of) the (.+)$", text)
    if m:
        s = _symbol(scene, m.group(1), "en")
        return [b for b in blocks if b.colour == s.colour]
    m = re.match(r"^block (?:closest|nearest) to the (.+)$", text)
    if m and m.group(1) not in ("top", "bottom"):
        s = _symbol(scene, m.group(1), "en")
        return [min(blocks, key=lambda b: np.hypot(b.x - s.x, b.y - s.y))]
    key = {
        "smallest block": lambda b: b.radius, "tiniest block": lambda b: b.radius,
        "largest block": lambda b: -b.radius, "biggest block": lambda b: -b.radius,
        "leftmost block": lambda b: b.y, "block furthest to the left": lambda b: b.y,
        "rightmost block": lambda b: -b.y, "block furthest to the right": lambda b: -b.y,
        "topmost block": lambda b: b.x, "block closest to the top": lambda b: b.x,
        "bottommost block": lambda b: -b.x, "block closest to the bottom": lambda b: -b.x,
    }[text]  # fmt: skip
    return [min(blocks, key=key)]


def referent_of(scene, question: str):
    """The object a pointing question names, found from the words alone."""
    lang, text = _strip(question)
    value = _arith(text) if lang == "en" else None
    if value is not None:
        return _symbol(scene, str(value), "en")
    if lang == "en" and text.startswith(("block ", "smallest", "tiniest", "largest", "biggest")) or "most " in text:
        hits = _relation(scene, text)
        return hits[0] if len(hits) == 1 else None
    return _block(scene, text, lang) or _symbol(scene, text, lang)


# ---- web side ---------------------------------------------------------------------------------------------------
def _new_task_items(n: int, seed: int = 0):
    """(task, scene, prompt, target) of the new tasks, generated exactly as WebCorpus.item does."""
    cfg = WebCorpusConfig(seed=seed, task_weights=tuple((t, 1.0) for t in NEW_TASKS))
    corpus = WebCorpus(cfg)
    out = []
    for i in range(n):
        rng = corpus.rng(i)
        task = TASKS[corpus._draw_task(rng)]
        for _ in range(100):
            kind = task.scene_kinds[int(rng.integers(len(task.scene_kinds)))]
            res = task.fn(sample_web_scene(kind, rng), rng)
            if res is not None:
                break
        scene, prompt, target = res
        assert corpus.item(i).prompt == prompt and corpus.item(i).target == target  # the corpus' own item
        out.append((task.name, scene, prompt, target))
    return out


def test_web_pointing_answers_are_the_named_objects_grid_point():
    items = _new_task_items(240)
    assert {t for t, *_ in items} == set(NEW_TASKS)
    for _task, scene, prompt, target in items:
        question = prompt[len("Q: ") : -len(" A:")]
        obj = referent_of(scene, question)
        assert obj is not None, question  # the words pick out exactly one object
        assert parse_grid(target) == board_to_grid(obj.x, obj.y), question


def test_every_referent_type_is_asked_in_the_words_of_the_suites():
    """Each emergent suite episode's referent phrase (as its instruction writes it) is a question the web can ask,
    on that very scene, with that object's grid point as the answer; every emergent type occurs in the suites."""
    env = TabletopEnv(EnvConfig(two_frames=False))
    seen_types = set()
    for name in EMERGENT_SUITES:
        suite = get_suite(name)
        for task in suite.tasks:
            for index in range(2):
                obs, info, _ = reset_episode(env, suite.name, task, 0, index)
                scene = env.state.scene
                for _slot, rtype, phrase, xy, found in episode_referents(task, info["task"], scene, obs["instruction"]):
                    assert found, (obs["instruction"], phrase)
                    seen_types.add(rtype)
                    # the web generator, asked for that type on the same scene, produces this very phrase
                    asked = {}
                    for k in range(400):
                        q = ask(rtype, scene, np.random.default_rng(k))
                        if q is not None:
                            asked.setdefault(q.phrase, q)
                    assert phrase in asked, (rtype, phrase, sorted(asked)[:5])
                    q = asked[phrase]
                    assert q.cell == board_to_grid(*xy)
                    assert referent_of(q.scene, q.question) is not None
    suite_types = {t for t, spec in REFERENT_TYPES.items() if spec.suites}
    assert suite_types <= seen_types | {"largest", "leftmost", "rightmost", "topmost", "bottommost"}
    for rtype in REFERENT_TYPES:  # and every type has web items from its web task
        q = sample_question(rtype, np.random.default_rng(0))
        assert TASKS[REFERENT_TYPES[rtype].web_task].scoring == "point"
        assert referent_of(q.scene, q.question) is not None


def test_new_phrases_are_web_only():
    """The exclusivity contract for the new phrase families (the robot side is in test_data_robot.py): each
    referent phrase itself, not only its question frame, contains a web-only concept, so rt2.data.robot drops any
    robot instruction that would use it."""
    for rtype in EMERGENT_TYPES:
        for k in range(60):
            phrase = sample_question(rtype, np.random.default_rng([7, k])).phrase
            assert find_web_only(phrase), (rtype, phrase)


def test_default_mixture_has_the_new_tasks_at_about_a_tenth():
    weights = dict(WebCorpusConfig().task_weights)
    share = sum(weights[t] for t in NEW_TASKS) / sum(weights.values())
    assert 0.09 < share < 0.12
    corpus = WebCorpus(WebCorpusConfig(seed=1))
    drawn = [corpus.task_of(i) for i in range(3000)]
    assert 0.08 < sum(t in NEW_TASKS for t in drawn) / len(drawn) < 0.13


def test_held_out_probes_are_deterministic_and_not_training_items():
    a = web_probes(("digit", "smallest"), 5, (24, 32), seed=0)
    b = web_probes(("digit", "smallest"), 5, (24, 32), seed=0)
    assert [(p.question, p.cell) for p in a] == [(p.question, p.cell) for p in b]
    assert all(np.array_equal(x.images[0], y.images[0]) for x, y in zip(a, b, strict=True))
    train = WebCorpus(WebCorpusConfig(seed=0, image_size=(24, 32))).items(range(200))
    pairs = {(it.prompt, it.target) for it in train}
    assert not {(f"Q: {p.question} A:", f"{p.cell[0]} {p.cell[1]}") for p in a} & pairs


# ---- rt2 pointing ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("pointing") / "ckpt"
    tiny_vla("language_table", seed=3).save_pretrained(d)
    return d


def test_pointing_cli_writes_every_referent_type(tiny_dir, tmp_path, capsys):
    out = tmp_path / "pt"
    argv = ["pointing", "--policy", str(tiny_dir), "--items", "3", "--robot-episodes", "1", "--out", str(out)]
    assert main([*argv, "--quiet"]) == 0
    printed = capsys.readouterr().out
    info = json.loads((out / "pointing_info.json").read_text())
    assert set(info["web"]["per_type"]) == set(REFERENT_TYPES)
    for row in info["web"]["per_type"].values():
        assert row["n"] == 3 and set(row) >= {"exact", "within1", "random_object", "unparsed"}
        assert row["exact"]["correct"] <= row["within1"]["correct"]
        assert 0.0 <= row["within1"]["chance"] <= 1.0 and row["exact"]["ci95"][0] <= row["exact"]["accuracy"]
    robot = info["robot_frames"]["per_type"]
    assert {"digit", "icon", "face", "face_glasses", "math", "block_es", "block_fr", "colour_of"} <= set(robot)
    assert {r["suite"] for r in info["robot_frames"]["per_task"]} == set(EMERGENT_SUITES)
    # verdicts are the decoded text against the truth
    for r in info["items"]["web"] + info["items"]["robot"]:
        try:
            p = parse_grid(r["prediction"])
        except ValueError:
            p = None
        t = parse_grid(r["target"])
        assert r["exact"] == (p == t)
        assert r["within1"] == (p is not None and abs(p[0] - t[0]) <= 1 and abs(p[1] - t[1]) <= 1)
    assert (out / "pointing_report.md").read_text().count("| digit |") >= 1 and (out / "pointing.png").stat().st_size
    assert "| referent |" in printed


def test_robot_probes_match_the_eval_episodes():
    probes = robot_probes(1, suites=("emergent_math", "emergent_multilingual"))
    env = TabletopEnv(EnvConfig(two_frames=False))
    p = next(p for p in probes if p.rtype == "math")
    obs, info, _ = reset_episode(env, "emergent_math", get_suite("emergent_math").tasks[0], 0, 0)
    assert p.meta["instruction"] == obs["instruction"] and np.array_equal(p.images[0], obs["image"])
    sym = env.state.scene.symbol(info["task"].symbol)
    assert p.cell == board_to_grid(sym.x, sym.y) and p.question.removeprefix("where is ")[:-1] in obs["instruction"]
    langs = {q.question.split()[0] for q in probes if q.rtype in ("block_es", "block_fr")}
    assert langs == {"¿dónde", "où"}
    assert all(int(s) in range(10) for s in board.DIGITS)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--policy", "/nonexistent/ckpt"], "not a checkpoint directory"),
        (["--types", "digit,unicorn"], "unknown referent type 'unicorn'"),
        (["--items", "0"], "--items must be a positive int"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tiny_dir, extra, message, capsys):
    argv = ["pointing", "--policy", str(tiny_dir), "--items", "2", "--robot-episodes", "0", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err
