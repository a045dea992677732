"""``rt2 pointing``: held-out pointing accuracy per emergent referent type, on web images and on the suites' frames.

    rt2 pointing --policy runs/control/final --out runs/pointing                      # 100 per type: ~1 min
    rt2 pointing --items 300 --robot-episodes 100 --out runs/pointing_shipped         # the shipped policy, ~5 min
    rt2 pointing --policy RUN/final --types digit,math,colour_of --robot-episodes 0   # web items only

Why: an emergent suite can fail because the policy did not *find* its referent ("the sum of two plus one", "la
luna roja", "the smallest block") or because it found it and did not push there. This command measures the first
half, per referent type (``rt2.data.web.referents.REFERENT_TYPES``), two ways:

- **web**: ``--items`` held-out questions per type, "where is <referent>?" in the suites' own words on web images
  (``sample_question``), rendered at the policy's image size. Held out: item ``i`` of type number ``k`` is drawn
  from the generator seeded ``(seed, 1, 1000 + k, i)``: the held-out split's id (1) and an entropy length that no
  training stream uses (training items are ``(seed, 0, i)``, ``rt2 vqa``'s ``(seed, 1, i)``), so no training item
  is repeated here.
- **robot frames**: the initial frame of episodes ``0..--robot-episodes-1`` of every task of the emergent suites
  (``emergent_symbols``, ``emergent_math``, ``emergent_multilingual``, ``emergent_reasoning``, ``emergent_people``,
  ``cot``), reset exactly as ``rt2 eval`` resets them (``rt2.eval.suites.reset_episode``, same base seed), so these
  are the very episodes the suite's success rate was measured on. Each episode asks for the pushed block and, when
  it is an object, the goal (a symbol, a digit named by arithmetic, a target block), each with the phrase the
  episode's instruction used; the truth is that object's position in the reset state.

Per type and source: n, exact-cell and within-one-cell (|dx|, |dy| <= 1, ``score_answer``'s rule) accuracy with
Wilson 95 % CIs; ``chance`` = the best constant answer on the same items (the 20 most frequent targets plus "0 0",
as ``rt2 vqa``); ``random_object`` = the expected accuracy of pointing at a uniformly random object of the
referent's class in that scene (any block for block referents, any symbol on the board for symbols): a
model that finds *a* block but not *the* block scores about this. Greedy decoding, ``Q: where is ...? A:``.

Writes to ``--out``: ``pointing_info.json`` (every row, every item's question, target and prediction, the command),
``pointing_report.md`` (the table) and ``pointing.png`` (bars with CIs). Runtime (2 busy CPU cores, one thread,
``pali-nano``): ~20 ms per question, ~1.5 ms to draw and render a web item, ~25-250 ms per suite reset (the
reasoning suite rejects many layouts).

The code: :mod:`~rt2.eval.pointing.probes` (what is asked), :mod:`~rt2.eval.pointing.scoring` (how it is scored),
:mod:`~rt2.eval.pointing.report` (the table and the plot) and :mod:`~rt2.eval.pointing.cli` (the command).
"""

from rt2.eval.pointing.cli import add_arguments, run
from rt2.eval.pointing.probes import (
    EMERGENT_SUITES,
    REPORT_STREAM,
    Probe,
    episode_referents,
    parse_types,
    robot_probes,
    web_probes,
)
from rt2.eval.pointing.report import markdown, plot
from rt2.eval.pointing.scoring import (
    CHANCE_METHOD,
    evaluate_pointing,
    per_type_rows,
    robot_task_rows,
    summarize,
)

__all__ = [
    "CHANCE_METHOD",
    "EMERGENT_SUITES",
    "REPORT_STREAM",
    "Probe",
    "add_arguments",
    "episode_referents",
    "evaluate_pointing",
    "markdown",
    "parse_types",
    "per_type_rows",
    "plot",
    "robot_probes",
    "robot_task_rows",
    "run",
    "summarize",
    "web_probes",
]
