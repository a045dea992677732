"""rt2.eval: closed-loop evaluation in the tabletop world, RT-2's suites, statistics, reports, the reproduction.

    from rt2.eval import RunConfig, get_suite, load_policy, run_suite, evaluate
    result = run_suite(load_policy("oracle"), get_suite("seen"), RunConfig(episodes=50))
    info = evaluate(["runs/model", "oracle"], [get_suite("emergent_math")], RunConfig(episodes=20), "runs/ab")

Modules: ``suites`` (Suite/TaskDef data, registry, seeded episode resets), ``runner`` (policy adapters, the
batched lockstep runner), ``stats`` (Wilson and Newcombe paired CIs, aggregation), ``report`` (eval_info.json,
videos, plots, report.md), ``cli`` (``rt2 eval``), ``reproduce`` (``rt2 reproduce``). No torch import here:
a checkpoint policy imports it when loaded.
"""

from rt2.eval.cli import evaluate
from rt2.eval.runner import (
    Decision,
    ModelAdapter,
    Observation,
    OracleAdapter,
    PolicyAdapter,
    RunConfig,
    SuiteResult,
    load_policy,
    run_suite,
)
from rt2.eval.stats import PairedDiff, paired_difference, paired_tables, result_tables, summarize, wilson
from rt2.eval.suites import (
    BUILTIN,
    Suite,
    TaskDef,
    episode_seed,
    get_suite,
    list_suites,
    register_suite,
    reset_episode,
    resolve_suites,
)

__all__ = [
    "BUILTIN",
    "Decision",
    "ModelAdapter",
    "Observation",
    "OracleAdapter",
    "PairedDiff",
    "PolicyAdapter",
    "RunConfig",
    "Suite",
    "SuiteResult",
    "TaskDef",
    "episode_seed",
    "evaluate",
    "get_suite",
    "list_suites",
    "load_policy",
    "paired_difference",
    "paired_tables",
    "register_suite",
    "reset_episode",
    "resolve_suites",
    "result_tables",
    "run_suite",
    "summarize",
    "wilson",
]
