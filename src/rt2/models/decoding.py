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

from rt2.data.plan import SLOTS as PLAN_SLOTS
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


# A grounded plan's label ("robot", "yellow pentagon", "top left") is a few tokens; capping it keeps three slots
# within max_plan_tokens (32) even for a model that has not learned to stop a label.
MAX_LABEL_TOKENS = 6


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
        self._plan_ok = plan_ok
        self._slot_table: torch.Tensor | None = None  # built on first use: only grounded-plan policies need it

    def slot_table(self) -> torch.Tensor:
        """bool[3, V]: the legal next tokens of a grounded plan (rt2.data.plan) in each slot state: 0 = label
        words (or a grid integer, which opens the point), 1 = the point's second integer, 2 = ``;`` (after the last
        slot's point the marker is forced, so every plan has exactly the SLOTS).
        Why states and not a template: the labels (block names, location words) are the model's to write; only
        the points have a fixed shape, and binding a number to the wrong slot was the prototype's failure."""
        if self._slot_table is not None:
            return self._slot_table
        from rt2.data.plan import SEPARATOR
        from rt2.data.web.scene import GRID_MAX

        tok = self.backbone.tokenizer
        head = list(tok.encode("plan", add_special_tokens=False))

        def after_word(text: str) -> list[int]:
            full = list(tok.encode(f"plan {text}", add_special_tokens=False))
            return full[len(head) :] if full[: len(head)] == head else full

        grid, sep = [], after_word(SEPARATOR)
        for n in range(-GRID_MAX, GRID_MAX + 1):
            ids = after_word(str(n))
            if len(ids) != 1:
                raise ValueError(
                    f"this tokenizer writes the grid integer {n} as {len(ids)} tokens; grounded plans need one token "
                    "per integer (train the direct action format instead)"
                )
            grid.append(ids[0])
        if len(sep) != 1:
            raise ValueError(f"this tokenizer writes {SEPARATOR!r} as {len(sep)} tokens; grounded plans need one")
        V = self._plan_ok.shape[0]
        table = torch.zeros(3, V, dtype=torch.bool, device=self._plan_ok.device)
        table[0] = self._plan_ok
        # label words never hold a digit or ';' (rt2.data.plan), so such a token can only be a grid integer
        numeric = [i for t, i in tok.get_vocab().items() if i < V and any(ch.isdigit() or ch == ";" for ch in t)]
        table[0, torch.tensor(numeric, dtype=torch.long)] = False
        table[0, grid] = True
        table[0, self.marker[0]] = False
        table[1, grid] = True
        table[2, sep[0]] = True  # every plan has all SLOTS: after the last point the marker is forced instead
        self._grid_ids, self._grid_list, self._sep_id = frozenset(grid), list(grid), sep[0]
        self._slot_table = table
        return table

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
        slots: bool = False,
        corrupt_points: float = 0.0,
    ) -> tuple[list[list[int]], torch.Tensor]:
        """-> (plan ids per row, marker excluded; action token ids int64[B, D]). ``slots``: the plan is a grounded
        plan, decoded under :meth:`slot_table`'s grammar (every point is exactly two grid integers).
        ``corrupt_points`` (slots only; an ablation, never a default): each plan coordinate the model writes is
        replaced, with this probability, by a uniformly random grid integer before the rest is decoded, so the
        action is conditioned on the corrupted point. It measures how much the action relies on the pointing."""
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
        slot_table = self.slot_table() if slots else None
        n_slots = len(PLAN_SLOTS)
        state = [0] * B  # slot grammar state per row (slots only)
        points = [0] * B  # complete points per row; after the last slot the marker is forced
        label_len = [0] * B  # tokens of the current label; past MAX_LABEL_TOKENS only a grid integer may follow
        for _ in range(total):
            idx = torch.tensor([min(p, D) for p in phase], device=logits.device)
            legal = self.phase_table[idx]
            if slot_table is not None:
                in_plan = torch.tensor([p == D and f < 0 for p, f in zip(phase, forced, strict=True)])
                rows = [1 if s == 0 and n >= MAX_LABEL_TOKENS else s for s, n in zip(state, label_len, strict=True)]
                legal = torch.where(in_plan[:, None].to(legal.device), slot_table[torch.tensor(rows)], legal)
            chosen = select(logits.masked_fill(~legal, float("-inf")), sampling, generator).tolist()
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
                    coordinate = slot_table is not None and forced[b] < 0 and (state[b] == 1 or tok in self._grid_ids)
                    if coordinate and corrupt_points > 0:
                        u = torch.rand((), generator=generator).item()
                        if u < corrupt_points:
                            k = int(torch.randint(len(self._grid_list), (), generator=generator))
                            tok = self._grid_list[k]
                    plans[b].append(tok)
                    feed.append(tok)
                    if forced[b] >= 0:
                        forced[b] += 1
                    elif slot_table is not None:
                        if state[b] == 0 and tok in self._grid_ids:
                            state[b], label_len[b] = 1, 0
                        elif state[b] == 0:
                            label_len[b] += 1
                        elif state[b] == 1:
                            state[b], points[b] = 2, points[b] + 1
                            if points[b] >= n_slots:  # every slot written: the action comes next
                                forced[b] = 0
                        elif state[b] == 2:
                            state[b] = 0
                    if plans[b][-M:] == self.marker and (forced[b] < 0 or forced[b] == M):
                        phase[b] = 0
                        forced[b] = -1
                    elif forced[b] < 0 and len(plans[b]) >= max_plan:
                        forced[b] = 0
            if all(p > D for p in phase):
                break
            logits, cache = bb.step(torch.tensor(feed, device=logits.device), cache)
        return [p[:-M] for p in plans], actions
