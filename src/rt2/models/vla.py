"""``VLA``: a backbone + the action codec. Examples in, token ids with loss on the answer only, metrics out.

An action is written as D tokens ``vocab.ids_for_bins(bins)`` followed by EOS; free-text answers as their text
tokens followed by EOS; chain of thought as ``{plan} Action:`` text tokens, then the D action tokens, then EOS
(loss on plan + action). Action tokens always come from ``ActionVocab.ids_for_bins`` (never by re-tokenizing the
action text), so ``numeric`` (PaLI-X) and ``least_used`` (PaLM-E) vocabularies train identically.

Loss reduction: ``"example"`` (default) averages each example's answer tokens, then averages examples, so the
co-fine-tuning mixture's sampling ratio is the loss ratio (a 30-token caption does not outweigh a 3-token
action 10:1); ``"token"`` is the plain token mean.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import rt2
from rt2.actions import ActionParseError, ActionSpace, ActionTokenizer, ActionVocab, NormStats
from rt2.data.prompts import COT_ACTION_MARKER, Example, split_cot_target
from rt2.models.base import IGNORE_INDEX, Backbone
from rt2.models.checkpoint import CheckpointError, atomic_dir, load_weights, read_json, save_weights, write_json
from rt2.models.registry import build_backbone, load_backbone

FORMAT = "rt2.vla"
VERSION = 1


GROUNDING_FILE = "grounding_head.safetensors"  # the auxiliary grounding head (training only; decoding ignores it)


@dataclass(frozen=True)
class VLAConfig:
    """What a checkpoint needs besides weights. ``vocab``: action-token strategy; ``max_plan_tokens``: cap on a
    chain-of-thought plan at decode time; ``norm_stats_key``: the dataset whose NormStats the actions use."""

    backbone: str = "pali-tiny"
    vocab: Literal["numeric", "least_used", "added"] = "numeric"
    loss_reduction: Literal["example", "token"] = "example"
    max_plan_tokens: int = 32
    norm_stats_key: str | None = None
    # Auxiliary grounding loss (issue 9): a linear head on the hidden state at every action position regresses
    # ``Example.grounding`` (effector, pushed block, goal), weighted into the loss. 0 = off. Training only:
    # decoding never reads it; exports keep it (GROUNDING_FILE) so fine-tuning continues the same head. Measured
    # (bench learn, 12 CPU-min cofinetune): held-out action bin L1 1.84 with weight 10 vs 2.35 without.
    grounding_dim: int = 0
    grounding_weight: float = 10.0
    # Which states the head reads: -1 = the final ones (what the token head reads too), k >= 0 = the input of text
    # block k, which leaves the blocks above to turn positions into an action. Measured on pali-nano (3 blocks):
    # k = 1 / 2 gave held-out bin L1 1.83 / 1.90 vs 1.84 at -1, so -1 stays the default.
    grounding_layer: int = -1
    # "direct": the answer is the action tokens; "plan": point, then act (rt2.data.plan): the policy writes a
    # grounded plan (robot, block, goal with their grid points) and then the action, decoded slot by slot.
    action_format: Literal["direct", "plan"] = "direct"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.vocab not in ("numeric", "least_used", "added"):
            raise ValueError(f"vocab must be 'numeric', 'least_used' or 'added', got {self.vocab!r}")
        if self.loss_reduction not in ("example", "token"):
            raise ValueError(f"loss_reduction must be 'example' or 'token', got {self.loss_reduction!r}")
        if self.action_format not in ("direct", "plan"):
            raise ValueError(f"action_format must be 'direct' or 'plan', got {self.action_format!r}")
        if self.grounding_dim < 0 or not self.grounding_weight >= 0:
            raise ValueError(
                f"grounding_dim must be >= 0 and grounding_weight >= 0, got {self.grounding_dim}, "
                f"{self.grounding_weight}"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VLAConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class VLABatch:
    """Model inputs plus bookkeeping for metrics.

    inputs:      the backbone's batch dict (``labels`` int64[B, T] included)
    action_pos:  int64[B, T] the action position d (0..D-1) a label belongs to, -1 elsewhere
    action_bins: int64[B, D] the true action integers (0 for rows without an action)
    has_action:  bool[B]
    sources, kinds: per-example strings
    grounding:   float32[B, G] auxiliary grounding targets (zeros for rows without one), or None
    ground_mask: bool[B, T] where the grounding head reads the hidden state (a row's action positions; every
                 answer position of a text row, e.g. pointing), or None
    """

    inputs: dict[str, torch.Tensor]
    action_pos: torch.Tensor
    action_bins: torch.Tensor
    has_action: torch.Tensor
    sources: list[str]
    kinds: list[str]
    grounding: torch.Tensor | None = None
    ground_mask: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> VLABatch:
        return dataclasses.replace(
            self,
            inputs={k: v.to(device) for k, v in self.inputs.items()},
            action_pos=self.action_pos.to(device),
            action_bins=self.action_bins.to(device),
            has_action=self.has_action.to(device),
            grounding=None if self.grounding is None else self.grounding.to(device),
            ground_mask=None if self.ground_mask is None else self.ground_mask.to(device),
        )

    def __len__(self) -> int:
        return len(self.sources)


class VLA(nn.Module):
    """Backbone + ActionTokenizer + ActionVocab (+ NormStats inside the ActionTokenizer) + config."""

    def __init__(
        self, backbone: Backbone, action_tokenizer: ActionTokenizer, vocab: ActionVocab, config: VLAConfig
    ) -> None:
        super().__init__()
        if vocab.dim != action_tokenizer.dim:
            raise ValueError(f"action vocab has {vocab.dim} positions, the action tokenizer {action_tokenizer.dim}")
        if vocab.value_ranges != action_tokenizer.value_ranges:
            raise ValueError(
                f"action vocab value ranges {vocab.value_ranges} differ from the tokenizer's "
                f"{action_tokenizer.value_ranges}; build the vocab from this ActionTokenizer"
            )
        if vocab.min_vocab_size > backbone.vocab_size:
            raise ValueError(
                f"action ids reach {vocab.min_vocab_size - 1} but the backbone has {backbone.vocab_size} rows; "
                "call backbone.resize_token_embeddings(vocab.min_vocab_size)"
            )
        self.backbone, self.action_tokenizer, self.vocab, self.config = backbone, action_tokenizer, vocab, config
        D, V = vocab.dim, backbone.vocab_size
        allowed = torch.zeros(D, V, dtype=torch.bool)
        for d in range(D):
            allowed[d, vocab.allowed_ids(d)] = True
        self.register_buffer("allowed_mask", allowed, persistent=False)  # bool[D, V]
        self._marker = self._marker_ids()
        self.grounding_head = (
            nn.Linear(backbone.hidden_size, config.grounding_dim) if config.grounding_dim > 0 else None
        )

    # ---- construction -------------------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        backbone: str | Backbone = "pali-tiny",
        tokenizer: Any = None,
        action_space: ActionSpace | str | ActionTokenizer = "language_table",
        vocab: str = "numeric",
        corpus: Iterable[str] | None = None,
        stats: NormStats | None = None,
        norm_stats_key: str | None = None,
        n_bins: int = 256,
        loss_reduction: str = "example",
        grounding_dim: int = 0,
        grounding_weight: float = 10.0,
        grounding_layer: int = -1,
        **backbone_overrides: Any,
    ) -> VLA:
        """Fresh model. ``vocab="least_used"`` needs ``corpus`` (the training text) to count token use.

        ``action_space``: a preset name, an ActionSpace (then ``stats``/``n_bins`` build the ActionTokenizer with
        its default normalization), or a ready ActionTokenizer (for custom normalization modes).
        """
        bb = backbone if isinstance(backbone, Backbone) else build_backbone(backbone, tokenizer, **backbone_overrides)
        if isinstance(action_space, ActionTokenizer):
            atok = action_space
        else:
            atok = ActionTokenizer(action_space, stats=stats, n_bins=n_bins)
        if vocab == "numeric":
            av = ActionVocab.numeric(bb.tokenizer, atok)
        elif vocab == "least_used":
            if corpus is None:
                raise ValueError("vocab='least_used' needs corpus= (the training text) to find the rarest tokens")
            av = ActionVocab.least_used(bb.tokenizer, atok, corpus)
        elif vocab == "added":
            av = ActionVocab.added(bb.tokenizer, atok)
            # Trap: HF heads are often padded past the tokenizer (e.g. 257216 rows for 257152 tokens), so the new
            # ids may already have rows; resizing "to" a smaller count would be a shrink. Only ever grow.
            need = max(av.min_vocab_size, len(bb.tokenizer))
            if need > bb.vocab_size:
                bb.resize_token_embeddings(need)
        else:
            raise ValueError(f"vocab must be 'numeric', 'least_used' or 'added', got {vocab!r}")
        cfg = VLAConfig(
            backbone=bb.name,
            vocab=vocab,
            loss_reduction=loss_reduction,
            norm_stats_key=norm_stats_key,
            grounding_dim=grounding_dim,
            grounding_weight=grounding_weight,
            grounding_layer=grounding_layer,
        )
        return cls(bb, atok, av, cfg)

    def set_grounding(self, dim: int, weight: float = 10.0, layer: int | None = None) -> VLA:
        """Turn the auxiliary grounding loss on or off (dim 0), e.g. before fine-tuning a loaded checkpoint. A head
        of the same width is kept (the checkpoint's); otherwise a fresh one is seeded by the global torch RNG.
        Returns self."""
        same = self.grounding_head is not None and self.config.grounding_dim == dim
        layer = self.config.grounding_layer if layer is None else int(layer)
        same = same and layer == self.config.grounding_layer
        self.config = dataclasses.replace(
            self.config, grounding_dim=int(dim), grounding_weight=float(weight), grounding_layer=layer
        )
        if same:  # keep the trained head (e.g. pretrained on pointing); only the weight changes
            return self
        device = next(self.backbone.parameters()).device
        self.grounding_head = nn.Linear(self.backbone.hidden_size, dim).to(device) if dim > 0 else None
        return self

    def _marker_ids(self) -> list[int]:
        """Token ids of `` Action:`` as they appear after a plan word (context-free tokenizers: just encode)."""
        tok = self.backbone.tokenizer
        head = list(tok.encode("plan", add_special_tokens=False))
        full = list(tok.encode(f"plan {COT_ACTION_MARKER}", add_special_tokens=False))
        if full[: len(head)] != head or len(full) == len(head):
            raise ValueError(f"tokenizer does not split {COT_ACTION_MARKER!r} off the plan word; cannot mark plans")
        return full[len(head) :]

    @property
    def marker_ids(self) -> list[int]:
        return list(self._marker)

    @property
    def action_dim(self) -> int:
        return self.vocab.dim

    @property
    def eos_id(self) -> int:
        eos = self.backbone.tokenizer.eos_token_id
        if eos is None:
            raise ValueError("the backbone's tokenizer has no EOS token; answers cannot end")
        return int(eos)

    # ---- examples -> batch --------------------------------------------------------------------------------
    def target_ids(self, ex: Example) -> tuple[list[int], int]:
        """(answer ids incl. EOS, index of the first action token or -1)."""
        tok, eos = self.backbone.tokenizer, self.eos_id
        if ex.kind == "text":
            return [*tok.encode(" " + ex.target, add_special_tokens=False), eos], -1
        act = self.vocab.ids_for_bins(self.action_tokenizer.check_bins(ex.action_bins)).tolist()
        if ex.kind == "action":
            return [*act, eos], 0
        plan, _ = split_cot_target(ex.target)
        # The marker ids are appended as decoding will look for them (``marker_ids``), not re-tokenized with the
        # plan: a tokenizer that merges across the space (SentencePiece without whitespace splitting) would
        # otherwise train a marker spelling that ``Decoder.plan_and_act`` never detects.
        text = [*tok.encode(f" {plan}", add_special_tokens=False), *self._marker]
        return [*text, *act, eos], len(text)

    def encode_examples(
        self, examples: Sequence[Example], *, augment: bool = False, rng: np.random.Generator | None = None
    ) -> VLABatch:
        """Tokenize and transform a list of Examples into a :class:`VLABatch` (right-padded, labels shifted)."""
        if not examples:
            raise ValueError("encode_examples needs at least one Example")
        targets, starts = zip(*(self.target_ids(ex) for ex in examples), strict=True)
        inputs = self.backbone.prepare(
            [ex.images for ex in examples],
            [ex.prompt for ex in examples],
            list(targets),
            augment=augment,
            generator=rng,
        )
        labels = inputs["labels"]
        B, T = labels.shape
        D = self.action_dim
        action_pos = torch.full((B, T), -1, dtype=torch.long)
        action_bins = torch.zeros((B, D), dtype=torch.long)
        has_action = torch.zeros(B, dtype=torch.bool)
        for b, (ex, tgt, s) in enumerate(zip(examples, targets, starts, strict=True)):
            if s < 0:
                continue
            # Labelled positions of row b, in order, are exactly its answer tokens (the backbone's contract).
            cols = (labels[b] != IGNORE_INDEX).nonzero().flatten()
            if len(cols) != len(tgt):
                raise RuntimeError(f"backbone labels {len(cols)} tokens for a {len(tgt)}-token answer")
            action_pos[b, cols[s : s + D]] = torch.arange(D)
            action_bins[b] = torch.as_tensor(ex.action_bins)
            has_action[b] = True
        grounding = ground_mask = None
        if self.grounding_head is not None and any(ex.grounding is not None for ex in examples):
            G = self.config.grounding_dim
            grounding = torch.zeros((B, G), dtype=torch.float32)
            ground_mask = torch.zeros((B, T), dtype=torch.bool)
            for b, ex in enumerate(examples):
                if ex.grounding is None:
                    continue
                if len(ex.grounding) != G:
                    raise ValueError(
                        f"example {b}: grounding has {len(ex.grounding)} values, the model's grounding head {G}"
                    )
                grounding[b] = torch.as_tensor(np.array(ex.grounding))  # a copy: dataset rows may be read-only
                ground_mask[b] = action_pos[b] >= 0 if has_action[b] else labels[b] != IGNORE_INDEX
        return VLABatch(
            inputs,
            action_pos,
            action_bins,
            has_action,
            [e.source for e in examples],
            [e.kind for e in examples],
            grounding,
            ground_mask,
        )

    # ---- loss ---------------------------------------------------------------------------------------------
    def forward(self, batch: VLABatch) -> torch.Tensor:
        """Teacher-forced logits float32[B, T, V]."""
        return self.backbone(**batch.inputs)

    def per_example_loss(
        self, batch: VLABatch, logits: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean answer-token loss per example float32[B], answer-token count int64[B])."""
        logits = self(batch) if logits is None else logits
        labels = batch.inputs["labels"]
        tok_loss = F.cross_entropy(logits.transpose(1, 2), labels, ignore_index=IGNORE_INDEX, reduction="none")
        count = (labels != IGNORE_INDEX).sum(1)
        return tok_loss.sum(1) / count.clamp(min=1), count

    def loss(self, batch: VLABatch) -> tuple[torch.Tensor, dict[str, float]]:
        """Scalar training loss and metrics: loss, loss/<source>, action_token_acc, action_l1 (space units),
        action_bin_l1, action_exact (all D tokens right)."""
        aux = None
        if self.grounding_head is not None and batch.ground_mask is not None and bool(batch.ground_mask.any()):
            logits, hidden = self.backbone.forward_hidden(self.config.grounding_layer, **batch.inputs)
            aux = self.grounding_loss(hidden, batch)
        else:
            logits = self(batch)
        per_ex, count = self.per_example_loss(batch, logits)
        if self.config.loss_reduction == "example":
            loss = per_ex.mean()
        else:
            loss = (per_ex * count).sum() / count.sum().clamp(min=1)
        metrics = {"loss": float(loss.detach())}
        if aux is not None:
            metrics["grounding_mse"] = float(aux.detach())
            loss = loss + self.config.grounding_weight * aux
        with torch.no_grad():
            by_source: dict[str, list[float]] = defaultdict(list)
            for s, v in zip(batch.sources, per_ex.detach().tolist(), strict=True):
                by_source[s].append(v)
            for s, vals in by_source.items():
                metrics[f"loss/{s}"] = float(np.mean(vals))
            metrics.update(self.action_metrics(logits.detach(), batch))
        return loss, metrics

    def grounding_loss(self, hidden: torch.Tensor, batch: VLABatch) -> torch.Tensor:
        """Mean squared error of the grounding head over ``batch.ground_mask`` (a row's action positions, or the
        answer positions of a text row such as pointing). ``hidden``: float[B, T, H] aligned with the labels: the
        state at an action position is the one whose logits predict that action token, so the head asks the
        action's own state to know where things are."""
        assert self.grounding_head is not None and batch.grounding is not None and batch.ground_mask is not None
        rows = batch.ground_mask.nonzero()[:, 0]
        sel = batch.ground_mask
        pred = self.grounding_head(hidden[sel].float())  # [N, G]
        return F.mse_loss(pred, batch.grounding[rows])

    def action_metrics(self, logits: torch.Tensor, batch: VLABatch) -> dict[str, float]:
        """Teacher-forced action metrics from logits float32[B, T, V] (empty dict if no action rows)."""
        sel = batch.action_pos >= 0
        if not bool(sel.any()):
            return {}
        lg = logits[sel]  # [N*D, V] in row-major order: example, then position
        pos = batch.action_pos[sel]
        labels = batch.inputs["labels"][sel]
        acc = (lg.argmax(-1) == labels).float().mean()
        # Constrained argmax (what decoding can output), decoded to bins and to physical units.
        masked = lg.masked_fill(~self.allowed_mask[pos], float("-inf"))
        pred_ids = masked.argmax(-1).view(-1, self.action_dim).cpu().numpy()
        try:
            pred = self.vocab.bins_for_ids(pred_ids)
        except ActionParseError:  # pragma: no cover - the mask makes this impossible
            return {"action_token_acc": float(acc)}
        true = batch.action_bins[batch.has_action].cpu().numpy()
        pv, tv = self.action_tokenizer.decode(pred), self.action_tokenizer.decode(true)
        return {
            "action_token_acc": float(acc),
            "action_exact": float((pred == true).all(-1).mean()),
            "action_bin_l1": float(np.abs(pred - true).mean()),
            "action_l1": float(np.abs(pv - tv).mean()),
        }

    # ---- persistence --------------------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path, overwrite: bool = True) -> None:
        """Atomic checkpoint dir: vla.json, action_tokenizer.json, action_vocab.json, [norm_stats.json],
        backbone/ (backbone.json, config.json, model.safetensors, tokenizer.json for pali)."""
        with atomic_dir(directory, overwrite=overwrite) as tmp:
            write_json(
                tmp / "vla.json",
                {
                    "format": FORMAT,
                    "version": VERSION,
                    "rt2_version": rt2.__version__,
                    "config": self.config.to_dict(),
                    "action_dim": self.action_dim,
                },
            )
            write_json(tmp / "action_tokenizer.json", self.action_tokenizer.to_dict())
            write_json(tmp / "action_vocab.json", self.vocab.to_dict())
            if self.action_tokenizer.stats is not None:
                self.action_tokenizer.stats.save(tmp / "norm_stats.json", self.config.norm_stats_key or "default")
            (tmp / "backbone").mkdir()
            self.backbone.save_pretrained(tmp / "backbone")
            if self.grounding_head is not None:  # kept so fine-tuning an export continues the same head
                save_weights(self.grounding_head, tmp / GROUNDING_FILE)

    @classmethod
    def from_pretrained(cls, directory: str | Path, **backbone_kwargs: Any) -> VLA:
        d = Path(directory)
        if not d.is_dir():
            raise CheckpointError(f"checkpoint directory {d} does not exist")
        meta = read_json(d / "vla.json", "VLA config")
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise CheckpointError(f"{d / 'vla.json'} is not an rt2 VLA config (format != {FORMAT!r})")
        if meta.get("version") != VERSION:
            raise CheckpointError(f"{d}: VLA checkpoint version {meta.get('version')!r}, this rt2 reads {VERSION}")
        try:
            config = VLAConfig.from_dict(meta["config"])
            atok = ActionTokenizer.from_dict(read_json(d / "action_tokenizer.json", "action tokenizer"))
            vocab = ActionVocab.from_dict(read_json(d / "action_vocab.json", "action vocab"))
        except (KeyError, TypeError, ValueError) as e:
            if isinstance(e, CheckpointError):
                raise
            raise CheckpointError(f"{d}: invalid action config: {e}") from e
        backbone = load_backbone(d / "backbone", **backbone_kwargs)
        try:
            vocab.verify(backbone.tokenizer)
        except ValueError as e:
            raise CheckpointError(f"{d}: {e}") from e
        if meta.get("action_dim") != vocab.dim:
            raise CheckpointError(
                f"{d}: vla.json says action_dim {meta.get('action_dim')}, action_vocab.json {vocab.dim}"
            )
        try:
            vla = cls(backbone, atok, vocab, config).eval()
        except ValueError as e:
            raise CheckpointError(f"{d}: {e}") from e
        if vla.grounding_head is not None and (d / GROUNDING_FILE).is_file():
            load_weights(vla.grounding_head, d / GROUNDING_FILE)
        return vla
