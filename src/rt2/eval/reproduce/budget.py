"""What ``rt2 reproduce`` runs: the regimes, the suites and the named compute budgets.

Every number a stage depends on is a :class:`Budget` field, so a stage's marker records exactly what produced its
output (``Stage.keys``) and a changed field re-runs only the stages it feeds.
"""

from __future__ import annotations

from dataclasses import dataclass

from rt2.eval.report import FIG7A_SUITES, UNSEEN_SUITES

REGIMES = ("scratch", "finetune", "cofinetune")
# `rt2 bench rt1`: the RT-1-style baseline trains 2.64x the samples per CPU-second of pali-nano (rt2.train.rt1), so
# equal compute is 2.64x the steps (the rt1 preset's 48,000 = 18,000 x 2.64).
RT1_SAMPLES_PER_NANO_SAMPLE = 2.64
# Every suite, in the report's order: trained tasks, the three unseen axes, paraphrases, RT-2's emergent
# categories (Fig. 7a) and chain of thought.
ALL_SUITES = ("seen", *UNSEEN_SUITES, "paraphrase", *FIG7A_SUITES, "cot")


@dataclass(frozen=True)
class Budget:
    """One reproduction's compute: data, steps, sizes, suites and episodes (see the module table)."""

    name: str
    collect_episodes: int
    pretrain_steps: int
    train_steps: int
    batch_size: int
    sizes: tuple[str, ...]  # every regime (scratch, finetune, cofinetune) at each of these sizes
    suites: tuple[str, ...]
    eval_episodes: int  # per task; ``suite_episodes`` lifts small suites to a per-suite floor
    max_steps: int = 200
    num_envs: int = 64  # more episodes per batched decode: a 1-thread eval is bound by per-call overhead
    videos: int = 1
    tokenizer_corpus: int = 5000  # web items the fresh text tokenizer is trained on (``rt2 pretrain``, scratch)
    collect_noise: str = "0,1,2,3"  # DART sigmas (X Y units), cycled over episodes: recovery data for closed loop
    # Every regime trains with this `rt2 train` preset; steps / batch / lr / grounding below override it. The
    # `control` preset is the recipe that learns control (issue 14): grounding loss, in-domain pointing, lr 1.5e-3.
    train_preset: str = "control"
    grounding_weight: float = 10.0  # the auxiliary grounding loss of every robot regime (0 = plain RT-2 loss)
    train_lr: float = 0.0  # peak lr of every regime (0 = the preset's)
    action_format: str = "direct"  # "direct" (shipped) or "plan" (point, then act) for every VLA regime
    # Pinned rather than "the preset's", so that a preset change never silently changes what a budget runs.
    pretrain_lr: float = 1e-3
    suite_episodes: int = 0  # at least this many episodes per suite (RunConfig.suite_episodes; 100 = +-5 points)
    vqa_items: int = 4600  # held-out web questions per model (~200 per task type; rt2 vqa --items)
    # Per-referent pointing of each VLM (rt2 pointing): held-out web questions per referent type and initial
    # frames per emergent-suite task. It traces a failed emergent suite to finding the referent or to control.
    pointing_items: int = 100
    pointing_episodes: int = 20
    # Existing `rt2 pretrain` outputs to start finetune/cofinetune from instead of pre-training here ("" =
    # pre-train here): "DIR" for the first size, or "SIZE=DIR,SIZE=DIR" (rt2 reproduce --pretrained).
    pretrained: str = ""
    # The size axis (RT-2's 5B vs 55B): co-fine-tune only, at these extra sizes, compared with the first size.
    size_axis: tuple[str, ...] = ()
    # The RT-1-style baseline trained on the same robot data and CPU time ("" = none): the `rt2 train` preset that
    # builds it. It runs RT1_SAMPLES_PER_NANO_SAMPLE x train_steps steps: the same CPU-minutes as a pali-nano regime.
    baseline: str = "rt1"

    @property
    def all_sizes(self) -> tuple[str, ...]:
        return self.sizes + tuple(s for s in self.size_axis if s not in self.sizes)

    def pretrained_dirs(self) -> dict[str, str]:
        """``pretrained`` as {size: dir}; a bare DIR is the first size's."""
        if not self.pretrained:
            return {}
        out: dict[str, str] = {}
        for part in self.pretrained.split(","):
            size, sep, path = part.partition("=")
            if not sep:
                size, path = self.sizes[0], part
            if size not in self.all_sizes:
                raise ValueError(f"--pretrained {part!r}: this budget trains {', '.join(self.all_sizes)}, not {size!r}")
            out[size] = path
        return out


BUDGETS: dict[str, Budget] = {
    # The wiring, in minutes: numbers are meaningless (4 steps, 5-step episodes).
    "quick": Budget(
        "quick",
        10,
        4,
        4,
        4,
        ("pali-nano",),
        ("seen", "emergent_math"),
        1,
        max_steps=5,
        num_envs=32,
        tokenizer_corpus=300,
        vqa_items=16,
        pointing_items=2,
        pointing_episodes=1,
    ),
    # The paper's experiment on the controlling recipe: 4,000 demonstrations, three regimes at the `control`
    # preset's 18,000 steps (the learning curve of docs/results/control/curve_direct: block2block 29 % at 8k,
    # 61 % at 10k, 93 % at 14k; a regime stopped before its transition proves nothing), every suite at >= 100
    # episodes. Pre-training (the `pretrain` preset, 20,000 steps) is part of it unless --pretrained names one.
    "default": Budget(
        "default",
        4000,
        20000,
        18000,
        32,
        ("pali-nano",),
        ALL_SUITES,
        1,
        suite_episodes=100,
    ),
    # + the size axis: co-fine-tune at pali-tiny (~6x pali-nano's cost per sample), which needs its own
    # pre-trained VLM (--pretrained pali-tiny=DIR, or ~10 h of pre-training here).
    "full": Budget(
        "full",
        4000,
        20000,
        18000,
        32,
        ("pali-nano",),
        ALL_SUITES,
        1,
        suite_episodes=100,
        size_axis=("pali-tiny",),
    ),
}
