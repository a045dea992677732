"""``rt2 reproduce``: RT-2's experiment end to end on the controlling recipe, resumable, two stages at a time.

    rt2 pretrain --out runs/pt                                               # once: ~95 min on one core
    rt2 reproduce --out runs/repro --pretrained runs/pt --jobs 2             # the default budget (see below)
    rt2 reproduce --out runs/repro --budget full --pretrained runs/pt,pali-tiny=runs/pt_tiny --jobs 2
    rt2 reproduce --out /tmp/repro --quick                                   # wiring check: minutes, numbers meaningless
    rt2 reproduce --out runs/repro --pretrained runs/pt --report             # seconds: report what has finished

Stages (:func:`rt2.eval.reproduce.stages.plan`; each an ``rt2`` command or a small in-process step):

1. ``collect``: scripted-oracle demonstrations (LeRobot v3.0, DART noise 0-3) -> ``data/robot``
2. ``pretrain-<size>``: the VLM on the web corpus -> ``models/pretrain-<size>`` (or a check of ``--pretrained``)
3. ``train-<regime>-<size>``, each followed by ``eval-<regime>-<size>``: co-fine-tune (pretrained, robot + web),
   fine-tune (pretrained, robot only) and scratch (random init, robot only), all with the ``control`` preset
   (grounding loss, in-domain pointing from the robot data, lr 1.5e-3; the web share is what the regimes differ
   in, ``rt2.train.sources``); the ``full`` budget adds co-fine-tune at a larger size (the size axis)
4. ``train-rt1`` / ``eval-rt1``: the RT-1-style baseline on the same robot data (when the budget names one)
5. ``eval-oracle`` (upper bound), ``vqa-<model>``: held-out web VQA of each VLM (what each regime keeps of the web),
   ``pointing-<model>``: each VLM's pointing per emergent referent type, on web images and on the emergent suites'
   own frames (``rt2 pointing``: was a failed emergent suite's referent not found, or found and not pushed to?)
6. ``report``: ``results.json``, ``report.md`` (RT-2's claims checked as targets, success per suite with unseen /
   emergent averages, paired differences against co-fine-tune with Newcombe CIs, web knowledge, pointing),
   ``fig7b_unseen.png``, ``fig7a_emergent.png`` and ``curves.png`` (each model's training curve,
   :mod:`rt2.eval.reproduce.curves`). ``--report`` writes it early from the stages that have finished.

Resuming and parallel runs: :mod:`rt2.eval.reproduce.schedule`. Budgets (:mod:`rt2.eval.reproduce.budget`; CPU
minutes on this 2-core machine, one thread per job; the training rate is ~110 samples/s for pali-nano):

| stage | quick | default |
|---|---|---|
| collect | 10 episodes, ~1 s | 4,000 episodes (DART 0-3), ~1 min |
| pretrain (per size) | 4 steps x 4 | 20,000 x 32 at lr 1e-3, ~95 min (skipped with --pretrained) |
| train x 3 regimes | 4 steps x 4 each | 18,000 x 32 each (the `control` preset), ~88 min each |
| train RT-1-style baseline | 11 steps x 4 | 47,520 x 32 (2.64x the steps: the same CPU time), ~88 min |
| eval x 4 models + oracle | seen + emergent_math, 1 ep/task, 5-step cap | 11 suites, >= 100 episodes each, ~10-15 min each |
| vqa x 4 models | 16 items | 4,600 held-out items, ~1 min each |
| pointing x 4 models | 2 items per type, 1 frame per task | 100 per type + 20 frames per emergent task, ~2.5 min each |

With ``--pretrained`` and ``--jobs 2`` the default budget is ~3.5 h of wall time (6.8 CPU-h; the estimate
``rt2 reproduce`` prints first, from the measured per-sample costs in ``stages.COST_MIN``): four 88-minute trainings
(three regimes and the RT-1-style baseline at equal CPU time) on two lanes, then the evaluations. The step count is
the one the controlling recipe is measured to need (docs/results/control/curve_direct: block2block 29 % at 8k
steps, 61 % at 10k, 93 % at 14k of the 18k schedule). ``--train-steps 14000`` fits 3 h (~2.8 h) but a 14k cosine
schedule has not been shown to pass the transition yet.
``--quick`` lowers the step cap to 5 (not the protocol): it checks the wiring only.
"""

from rt2.eval.reproduce.budget import ALL_SUITES, BUDGETS, REGIMES, Budget
from rt2.eval.reproduce.cli import OVERRIDE_FLAGS, add_arguments, overrides_from_args, run
from rt2.eval.reproduce.schedule import reproduce
from rt2.eval.reproduce.stages import Stage, find_model, model_dir, plan
from rt2.eval.reproduce.summary import targets, web_knowledge_lines, write_summary

__all__ = [
    "ALL_SUITES",
    "BUDGETS",
    "OVERRIDE_FLAGS",
    "REGIMES",
    "Budget",
    "Stage",
    "add_arguments",
    "find_model",
    "model_dir",
    "overrides_from_args",
    "plan",
    "reproduce",
    "run",
    "targets",
    "web_knowledge_lines",
    "write_summary",
]
