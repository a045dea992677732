"""The RT-1-style baseline (RT-2's main comparison): FiLM image encoder, TokenLearner, transformer, action classes.

One concept per file: ``config`` (the frozen :class:`RT1Config`, presets by name), ``text`` (the learned
instruction encoder), ``film`` (the FiLM-conditioned ResNet), ``token_learner``, ``model`` (:class:`RT1`: batch
encoding, loss, export). Trained by ``rt2 train --regime scratch --preset rt1`` (``rt2.train.rt1``), served and
evaluated through ``rt2.policy.Policy.from_pretrained`` (``rt2.policy.rt1.RT1Policy``).
"""

from rt2.models.rt1.config import FORMAT, RT1_PRESETS, RT1Config, is_rt1_model, rt1_preset
from rt2.models.rt1.model import RT1, RT1Batch

__all__ = ["FORMAT", "RT1", "RT1Batch", "RT1Config", "RT1_PRESETS", "is_rt1_model", "rt1_preset"]
