"""``RT1``: the RT-1-style baseline. Frames + instruction -> one classification per action dimension.

::

    model = RT1.build("rt1", tokenizer, ActionTokenizer(ActionSpace.language_table()), n_frames=1)
    batch = model.encode_examples(examples)             # rt2.data.prompts.Example (kind "action")
    loss, metrics = model.loss(batch)                   # what rt2.train.Trainer calls
    bins = model.predict_bins(pixels, ids, mask)        # int64[B, D], the same integers the VLA writes as text
    model.save_pretrained("out"); RT1.from_pretrained("out")

Data flow (shapes for B observations of F frames, K tokens per frame, D action dimensions):

1. instruction ids int64[B, L] -> :class:`InstructionEncoder` -> e float[B, E];
2. frames float[B, F, 3, H, W] (``rt2.data.transforms``, the shared transform) -> :class:`FiLMImageEncoder`,
   each frame FiLM-conditioned on e -> float[B*F, C, h, w];
3. :class:`TokenLearner` -> float[B*F, K, C] -> linear -> float[B, F*K, d];
4. + D learned readout tokens, learned positions (frame, token), a transformer over the F*K + D tokens;
5. readout d -> logits over dimension d's action integers: float[B, D, V] (V = the widest dimension's count;
   a narrower dimension's missing classes are masked to -inf, so argmax is always a legal integer).

The classes are ``rt2.actions.ActionTokenizer``'s integers (Language-Table: ``X Y`` in -10..10; RT-1's own
space: 256 bins per dimension) minus each dimension's lowest value, and they decode through the same
``ActionTokenizer.decode``, so an RT-1 action means exactly what the VLA's text ``"3 -7"`` means.

Attention is bidirectional over the whole window. RT-1 uses a causal mask so its one pass predicts the action of
every frame in the history; we only ever predict the action of the last frame, for which causal and full
attention see the same inputs.

Auxiliary grounding (``grounding_dim`` > 0): a training-only linear head on the mean readout state regresses
``observation.environment_state`` (effector, pushed block and goal), weighted ``grounding_weight`` into the loss.
RT-1 had no such loss. We add it because the VLA recipe this baseline is compared with (``rt2 train --preset
control``) gets exactly this signal from the same robot data, and without it pixel behaviour cloning at this
scale stays at chance for hundreds of thousands of samples (reference/bc-feasibility.md): with it, the
comparison isolates what web data and the VLM add, not who got the grounding targets.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import rt2
from rt2.actions import ActionTokenizer
from rt2.data.prompts import Example
from rt2.data.transforms import ImageTransform, TransformConfig
from rt2.models.checkpoint import CheckpointError, atomic_dir, load_weights, read_json, save_weights, write_json
from rt2.models.rt1.config import CONFIG_FILE, FORMAT, VERSION, RT1Config, rt1_preset
from rt2.models.rt1.film import FiLMImageEncoder
from rt2.models.rt1.text import InstructionEncoder, instruction_from_prompt, tokenize_instructions
from rt2.models.rt1.token_learner import TokenLearner

WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer.json"
ACTION_TOKENIZER_FILE = "action_tokenizer.json"


@dataclass
class RT1Batch:
    """pixels float32[B, F, 3, H, W]; text_ids int64[B, L]; text_mask bool[B, L]; classes int64[B, D] (action
    integer minus the dimension's lowest); grounding float32[B, G] (zeros where a row has none) and ground_mask
    bool[B], or None; sources: per-row mixture source names."""

    pixels: torch.Tensor
    text_ids: torch.Tensor
    text_mask: torch.Tensor
    classes: torch.Tensor
    sources: list[str]
    grounding: torch.Tensor | None = None
    ground_mask: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> RT1Batch:
        move = {
            k: getattr(self, k).to(device)
            for k in ("pixels", "text_ids", "text_mask", "classes", "grounding", "ground_mask")
            if getattr(self, k) is not None
        }
        return dataclasses.replace(self, **move)

    def __len__(self) -> int:
        return len(self.sources)


class RT1(nn.Module):
    """The RT-1-style policy network (module docstring). ``tokenizer``: a ``rt2.models.TextTokenizer``;
    ``action_tokenizer``: the ``ActionTokenizer`` whose integers are the classes (its NormStats, if any, travel
    with the export)."""

    def __init__(self, config: RT1Config, tokenizer: Any, action_tokenizer: ActionTokenizer) -> None:
        super().__init__()
        if len(tokenizer) > config.vocab_size:
            raise ValueError(f"tokenizer has {len(tokenizer)} tokens, the model's embedding {config.vocab_size} rows")
        self.config, self.tokenizer, self.action_tokenizer = config, tokenizer, action_tokenizer
        self.transform = ImageTransform(TransformConfig(config.image_size, config.image_mean, config.image_std))
        ranges = action_tokenizer.value_ranges
        self.register_buffer("class_offset", torch.tensor([lo for lo, _ in ranges]), persistent=False)  # [D]
        width = max(hi - lo + 1 for lo, hi in ranges)
        legal = torch.zeros(len(ranges), width, dtype=torch.bool)
        for d, (lo, hi) in enumerate(ranges):
            legal[d, : hi - lo + 1] = True
        self.register_buffer("legal", legal, persistent=False)  # bool[D, V]
        c = config
        self.text = InstructionEncoder(c.vocab_size, c.text_dim, c.max_text_len, c.text_layers, c.dropout)
        self.encoder = FiLMImageEncoder(c.stem_channels, c.channels, c.n_downsample, c.text_dim)
        self.token_learner = TokenLearner(self.encoder.out_channels, c.n_tokens)
        self.token_proj = nn.Linear(self.encoder.out_channels, c.d_model)
        D = len(ranges)
        self.pos = nn.Parameter(torch.randn(c.n_frames * c.n_tokens + D, c.d_model) * 0.02)
        self.readout = nn.Parameter(torch.randn(D, c.d_model) * 0.02)
        layer = nn.TransformerEncoderLayer(
            c.d_model, c.heads, c.ff_mult * c.d_model, c.dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.transformer = nn.TransformerEncoder(layer, c.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(c.d_model)
        self.head = nn.Linear(c.d_model, width)
        self.grounding_head = nn.Linear(c.d_model, c.grounding_dim) if c.grounding_dim > 0 else None

    # ---- construction -------------------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        name: str | RT1Config,
        tokenizer: Any,
        action_tokenizer: ActionTokenizer,
        **overrides: Any,
    ) -> RT1:
        """A fresh model from a preset name (``rt1``, ``rt1-tiny``) or a config, with ``overrides`` (e.g.
        ``n_frames=2``, ``grounding_dim=6``). The embedding gets exactly ``len(tokenizer)`` rows."""
        overrides.setdefault("vocab_size", len(tokenizer))
        if isinstance(name, RT1Config):
            cfg = dataclasses.replace(name, **overrides)
        else:
            cfg = rt1_preset(name, **overrides)
        return cls(cfg, tokenizer, action_tokenizer)

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def n_frames(self) -> int:
        return self.config.n_frames

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.config.image_size)

    @property
    def action_dim(self) -> int:
        return int(self.legal.shape[0])

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @property
    def device(self) -> torch.device:
        return self.pos.device

    def set_image_norm(self, mean: Sequence[float], std: Sequence[float]) -> None:
        """Normalize pixels with these per-channel statistics (a fresh model: its training data's, measured by
        ``rt2.train.sources.pixel_stats``); kept in the config, so the export serves with the same transform."""
        self.config = dataclasses.replace(self.config, image_mean=tuple(mean), image_std=tuple(std))
        c = self.config
        self.transform = ImageTransform(TransformConfig(c.image_size, c.image_mean, c.image_std))

    # ---- inputs -------------------------------------------------------------------------------------------
    def tokenize(self, instructions: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """B instructions -> (ids int64[B, L], mask bool[B, L]); ValueError if one exceeds ``max_text_len``."""
        return tokenize_instructions(self.tokenizer, instructions, self.config.max_text_len, self.config.vocab_size)

    def encode_examples(
        self, examples: Sequence[Example], *, augment: bool = False, rng: np.random.Generator | None = None
    ) -> RT1Batch:
        """Action Examples (``rt2.data.robot.RobotActions``) -> :class:`RT1Batch`. Other kinds raise ValueError:
        the baseline has no text output to train."""
        if not examples:
            raise ValueError("encode_examples needs at least one Example")
        for i, ex in enumerate(examples):
            if ex.kind != "action" or ex.action_bins is None:
                raise ValueError(
                    f"example {i} ({ex.source}) is a {ex.kind!r} example; the RT-1 baseline trains on robot action "
                    "examples only (regime scratch, direct action format)"
                )
            if len(ex.images) != self.n_frames:
                raise ValueError(f"example {i} has {len(ex.images)} frames, this model takes {self.n_frames}")
        pixels = self.transform([ex.images for ex in examples], augment=augment, rng=rng)
        ids, mask = self.tokenize([instruction_from_prompt(ex.prompt) for ex in examples])
        bins = np.stack([self.action_tokenizer.check_bins(ex.action_bins) for ex in examples])
        classes = torch.as_tensor(bins, dtype=torch.long) - self.class_offset.cpu()
        grounding = ground_mask = None
        if self.grounding_head is not None and any(ex.grounding is not None for ex in examples):
            G = self.config.grounding_dim
            grounding = torch.zeros((len(examples), G), dtype=torch.float32)
            ground_mask = torch.zeros(len(examples), dtype=torch.bool)
            for b, ex in enumerate(examples):
                if ex.grounding is None:
                    continue
                if len(ex.grounding) != G:
                    raise ValueError(f"example {b}: grounding has {len(ex.grounding)} values, the head {G}")
                grounding[b] = torch.as_tensor(np.array(ex.grounding, dtype=np.float32))
                ground_mask[b] = True
        return RT1Batch(pixels, ids, mask, classes, [ex.source for ex in examples], grounding, ground_mask)

    # ---- network ------------------------------------------------------------------------------------------
    def features(self, pixels: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The readout states float[B, D, d] (after the final norm)."""
        B, Fr = pixels.shape[:2]
        if Fr != self.n_frames:
            raise ValueError(f"got {Fr} frames per observation, this model takes {self.n_frames}")
        text = self.text(ids, mask)  # [B, E]
        cond = text.repeat_interleave(Fr, dim=0)  # [B*F, E]: every frame sees its observation's instruction
        fmap = self.encoder(pixels.flatten(0, 1), cond)  # [B*F, C, h, w]
        tokens, _ = self.token_learner(fmap)  # [B*F, K, C]
        tokens = self.token_proj(tokens).reshape(B, Fr * self.config.n_tokens, -1)  # [B, F*K, d]
        x = torch.cat([tokens, self.readout.unsqueeze(0).expand(B, -1, -1).to(tokens.dtype)], dim=1) + self.pos
        x = self.transformer(x)
        return self.norm(x[:, -self.action_dim :])

    def forward(self, pixels: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Masked logits float32[B, D, V] (illegal classes of a dimension are -inf)."""
        logits = self.head(self.features(pixels, ids, mask)).float()
        return logits.masked_fill(~self.legal, float("-inf"))

    @torch.no_grad()
    def predict_bins(self, pixels: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Greedy action integers int64[B, D] (always legal: illegal classes are masked)."""
        return self(pixels, ids, mask).argmax(-1) + self.class_offset

    # ---- loss ---------------------------------------------------------------------------------------------
    def loss(self, batch: RT1Batch) -> tuple[torch.Tensor, dict[str, float]]:
        """Mean cross-entropy over the D action dimensions (+ ``grounding_weight`` x grounding MSE) and metrics:
        loss, loss/<source>, action_token_acc, action_exact, action_bin_l1, action_l1 (space units), and
        grounding_mse; the names the VLA logs, so runs of both compare in one plot."""
        states = self.features(batch.pixels, batch.text_ids, batch.text_mask)
        logits = self.head(states).float().masked_fill(~self.legal, float("-inf"))
        B, D, V = logits.shape
        per_dim = F.cross_entropy(logits.reshape(B * D, V), batch.classes.reshape(-1), reduction="none")
        per_ex = per_dim.view(B, D).mean(1)
        loss = per_ex.mean()
        metrics = {"loss": float(loss.detach())}
        if self.grounding_head is not None and batch.ground_mask is not None and bool(batch.ground_mask.any()):
            pred = self.grounding_head(states.mean(1).float())
            sel = batch.ground_mask
            aux = F.mse_loss(pred[sel], batch.grounding[sel])
            metrics["grounding_mse"] = float(aux.detach())
            loss = loss + self.config.grounding_weight * aux
        with torch.no_grad():
            by_source: dict[str, list[float]] = defaultdict(list)
            for s, v in zip(batch.sources, per_ex.detach().tolist(), strict=True):
                by_source[s].append(v)
            metrics.update({f"loss/{s}": float(np.mean(v)) for s, v in by_source.items()})
            pred = logits.argmax(-1)
            offset = self.class_offset.cpu().numpy()
            pb, tb = pred.cpu().numpy() + offset, batch.classes.cpu().numpy() + offset
            metrics.update(
                action_token_acc=float((pred == batch.classes).float().mean()),
                action_exact=float((pb == tb).all(-1).mean()),
                action_bin_l1=float(np.abs(pb - tb).mean()),
                action_l1=float(np.abs(self.action_tokenizer.decode(pb) - self.action_tokenizer.decode(tb)).mean()),
            )
        return loss, metrics

    # ---- persistence --------------------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path, overwrite: bool = True) -> None:
        """Atomic export folder: ``rt1.json`` (format, version, config, action_dim), ``action_tokenizer.json``
        (space, bins, NormStats), ``tokenizer.json`` (the instruction tokenizer), ``model.safetensors``."""
        with atomic_dir(directory, overwrite=overwrite) as tmp:
            meta = {"format": FORMAT, "version": VERSION, "rt2_version": rt2.__version__}
            write_json(tmp / CONFIG_FILE, {**meta, "config": self.config.to_dict(), "action_dim": self.action_dim})
            write_json(tmp / ACTION_TOKENIZER_FILE, self.action_tokenizer.to_dict())
            self.tokenizer.save(tmp / TOKENIZER_FILE)
            save_weights(self, tmp / WEIGHTS_FILE)

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> RT1:
        """Load an export written by :meth:`save_pretrained` (safetensors + JSON; no pickle). Every problem is a
        :class:`CheckpointError` (a ValueError) naming the file."""
        from rt2.models.text_tokenizer import TextTokenizer

        d = Path(directory)
        if not d.is_dir():
            raise CheckpointError(f"checkpoint directory {d} does not exist")
        meta = read_json(d / CONFIG_FILE, "RT-1 config")
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise CheckpointError(f"{d / CONFIG_FILE} is not an rt2 RT-1 config (format != {FORMAT!r})")
        if meta.get("version") != VERSION:
            raise CheckpointError(f"{d}: RT-1 export version {meta.get('version')!r}, this rt2 reads {VERSION}")
        try:
            config = RT1Config.from_dict(meta["config"])
            atok = ActionTokenizer.from_dict(read_json(d / ACTION_TOKENIZER_FILE, "action tokenizer"))
            tok = TextTokenizer.load(d / TOKENIZER_FILE)
            model = cls(config, tok, atok)
        except CheckpointError:
            raise
        except (KeyError, TypeError, ValueError, FileNotFoundError) as e:
            raise CheckpointError(f"{d}: invalid RT-1 export: {e}") from e
        if meta.get("action_dim") != model.action_dim:
            raise CheckpointError(f"{d}: rt1.json says action_dim {meta.get('action_dim')}, the action tokenizer "
                                  f"{model.action_dim}")  # fmt: skip
        load_weights(model, d / WEIGHTS_FILE)
        return model.eval()
