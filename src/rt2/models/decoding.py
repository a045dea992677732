"""Hand-written KV-cache decoding over any :class:`rt2.models.base.Backbone` (no HF ``generate``).

Three modes, all batched over B left-padded prompts (``backbone.prepare(images, prompts)``):

* :meth:`Decoder.actions` -- exactly D tokens, token d restricted to ``vocab.allowed_ids(d)`` (the paper's output
  constraint). It asks the backbone for logits of the legal ids only (``logits_ids``), so it is both the
  constraint and the fast path: no full-vocabulary head, no mask, no EOS handling. The output can never be an
  illegal action, whatever the weights.
* :meth:`Decoder.text` -- free text until EOS (or a stop sequence) or ``max_new_tokens``.
* :meth:`Decoder.plan_and_act` -- chain of thought: free text until the model writes the ``Action:`` marker
  (EOS is not allowed inside a plan); if the plan reaches ``max_plan_tokens`` first, the marker is forced; then D
  constrained action tokens. Rows switch phase independently within one batch.

Selection is greedy by default; :class:`Sampling` adds temperature and top-k, drawn from a seeded
``torch.Generator`` so runs are reproducible.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from rt2.models.vla import VLA


@dataclass(frozen=True)
class Sampling:
    """``temperature`` 0 = greedy (argmax). ``top_k``: sample among the k best (None = all)."""

    temperature: float = 0.0
    top_k: int | None = None

    def __post_init__(self) -> None:
        if not self.temperature >= 0.0:
            raise ValueError(f"temperature must be >= 0 (0 = greedy), got {self.temperature}")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"top_k must be >= 1 or None, got {self.top_k}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0 or self.top_k == 1


GREEDY = Sampling()


def select(logits: torch.Tensor, sampling: Sampling = GREEDY, generator: torch.Generator | None = None) -> torch.Tensor:
    """float[B, K] (``-inf`` = forbidden) -> int64[B] chosen column per row."""
    if sampling.greedy:
        return logits.argmax(-1)
    scaled = logits.float() / sampling.temperature
    if sampling.top_k is not None and sampling.top_k < scaled.shape[-1]:
        kth = scaled.topk(sampling.top_k, dim=-1).values[:, -1:]
        scaled = scaled.masked_fill(scaled < kth, float("-inf"))
    probs = torch.softmax(scaled, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


class Decoder:
    """Decoding loops for one VLA. Construct once (precomputes the per-position id tables), call many times."""

    def __init__(self, vla: VLA) -> None:
        self.vla = vla
        self.backbone = vla.backbone
        tok = self.backbone.tokenizer
        device = self.backbone.device
        self.D = vla.action_dim
        # Per position: the legal ids (int64[K_d]) for the action-only head.
        self.allowed = [torch.tensor(vla.vocab.allowed_ids(d), dtype=torch.long, device=device) for d in range(self.D)]
        self.eos = vla.eos_id
        pad = tok.pad_token_id
        self.pad = int(pad) if pad is not None else self.eos
        # Rows of the head past the tokenizer (HF models round the vocab up) must never be generated as text.
        n_text = len(tok)
        V = self.backbone.vocab_size
        text_ok = torch.zeros(V, dtype=torch.bool, device=device)
        text_ok[:n_text] = True
        self.text_mask = text_ok  # bool[V]
        plan_ok = text_ok.clone()
        plan_ok[self.eos] = False  # a plan must end with the marker, not EOS
        if pad is not None:
            plan_ok[int(pad)] = False
        # phase table for plan_and_act: rows 0..D-1 = action position d, row D = plan text
        table = torch.zeros(self.D + 1, V, dtype=torch.bool, device=device)
        table[: self.D] = vla.allowed_mask.to(device)
        table[self.D] = plan_ok
        self.phase_table = table
        self.marker = vla.marker_ids

    # ---- actions: the fast path -----------------------------------------------------------------------------
    @torch.inference_mode()
    def actions(
        self, inputs: Mapping[str, torch.Tensor], sampling: Sampling = GREEDY, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Exactly D constrained tokens per row -> token ids int64[B, D]."""
        bb, allowed = self.backbone, self.allowed
        logits, cache = bb.prefill(inputs, max_new_tokens=self.D - 1, logits_ids=allowed[0])
        out = []
        for d in range(self.D):
            ids = allowed[d][select(logits, sampling, generator)]
            out.append(ids)
            if d + 1 < self.D:
                logits, cache = bb.step(ids, cache, logits_ids=allowed[d + 1])
        return torch.stack(out, 1)

    # ---- free text ------------------------------------------------------------------------------------------
    @torch.inference_mode()
    def text(
        self,
        inputs: Mapping[str, torch.Tensor],
        max_new_tokens: int = 32,
        sampling: Sampling = GREEDY,
        generator: torch.Generator | None = None,
        stop: Sequence[Sequence[int]] = (),
    ) -> list[list[int]]:
        """Generate until EOS (not included), a ``stop`` id sequence (included) or ``max_new_tokens``."""
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        bb = self.backbone
        logits, cache = bb.prefill(inputs, max_new_tokens=max_new_tokens - 1)
        B = logits.shape[0]
        outs: list[list[int]] = [[] for _ in range(B)]
        done = [False] * B
        stops = [list(s) for s in stop if len(s)]
        for t in range(max_new_tokens):
            ids = select(logits.masked_fill(~self.text_mask, float("-inf")), sampling, generator)
            for b, i in enumerate(ids.tolist()):
                if done[b]:
                    continue
                if i == self.eos:
                    done[b] = True
                    continue
                outs[b].append(i)
                if any(outs[b][-len(s) :] == s for s in stops):
                    done[b] = True
            if all(done) or t + 1 == max_new_tokens:
                break
            feed = torch.tensor([self.eos if d else o[-1] for d, o in zip(done, outs, strict=True)], device=ids.device)
            logits, cache = bb.step(feed, cache)
        return outs

    # ---- chain of thought -----------------------------------------------------------------------------------
    @torch.inference_mode()
    def plan_and_act(
        self,
        inputs: Mapping[str, torch.Tensor],
        max_plan_tokens: int | None = None,
        sampling: Sampling = GREEDY,
        generator: torch.Generator | None = None,
    ) -> tuple[list[list[int]], torch.Tensor]:
        """-> (plan ids per row, marker excluded; action token ids int64[B, D])."""
        max_plan = int(max_plan_tokens if max_plan_tokens is not None else self.vla.config.max_plan_tokens)
        if max_plan < 0:
            raise ValueError(f"max_plan_tokens must be >= 0, got {max_plan}")
        M, D, bb = len(self.marker), self.D, self.backbone
        total = max_plan + M + D
        logits, cache = bb.prefill(inputs, max_new_tokens=total - 1)
        B = logits.shape[0]
        plans: list[list[int]] = [[] for _ in range(B)]
        forced = [-1] * B  # >= 0: index of the next marker token being forced
        phase = [D] * B  # D = plan, 0..D-1 = action position, D+1 = done
        if max_plan == 0:
            forced = [0] * B
        actions = torch.zeros(B, D, dtype=torch.long)
        for _ in range(total):
            idx = torch.tensor([min(p, D) for p in phase], device=logits.device)
            chosen = select(logits.masked_fill(~self.phase_table[idx], float("-inf")), sampling, generator).tolist()
            feed = []
            for b in range(B):
                if phase[b] > D:  # done: feed anything, output ignored
                    feed.append(self.eos)
                elif phase[b] < D:  # action token
                    actions[b, phase[b]] = chosen[b]
                    feed.append(chosen[b])
                    phase[b] = phase[b] + 1 if phase[b] + 1 < D else D + 1
                else:  # plan text, possibly forcing the marker
                    tok = self.marker[forced[b]] if forced[b] >= 0 else chosen[b]
                    plans[b].append(tok)
                    feed.append(tok)
                    if forced[b] >= 0:
                        forced[b] += 1
                    if plans[b][-M:] == self.marker and (forced[b] < 0 or forced[b] == M):
                        phase[b] = 0
                        forced[b] = -1
                    elif forced[b] < 0 and len(plans[b]) >= max_plan:
                        forced[b] = 0
            if all(p > D for p in phase):
                break
            logits, cache = bb.step(torch.tensor(feed, device=logits.device), cache)
        return [p[:-M] for p in plans], actions
