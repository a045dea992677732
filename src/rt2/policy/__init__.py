"""rt2.policy: the inference API (``Policy.from_pretrained(dir)``) used by rollouts, the evaluator and the server."""

from rt2.policy.policy import Policy

__all__ = ["Policy"]
