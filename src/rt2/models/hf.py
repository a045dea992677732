"""Hugging Face VLMs (PaliGemma, SmolVLM/Idefics3, Qwen2-VL, LLaVA) behind rt2's backbone interface.

Models are loaded with ``AutoModelForImageTextToText.from_pretrained(local_dir, local_files_only=True)`` from a
LOCAL folder (a Hub snapshot you downloaded yourself); rt2 never contacts a model hub. ``transformers`` and
``peft`` are optional (``pip install "rt2[hf]"``) and imported lazily, so registering these names is free.

Registry names::

    build_backbone("hf", path=dir)               # family auto-detected from config.json's model_type
    build_backbone("hf-paligemma", path=dir)     # also hf-idefics3, hf-qwen2-vl, hf-llava (family checked)
    build_backbone("hf-paligemma-tiny")          # tiny random-init model + local tokenizer (tests, docs)

Design (see ``rt2.models.hf_families`` for the per-family traps):

* ``prepare`` builds token ids and pixels by hand (no HF processor: several need torchvision or add tokens).
* ``forward`` = teacher-forced full-vocabulary logits (PaliGemma gets ``token_type_ids`` -> prefix-LM mask).
* ``prefill`` runs the multimodal model once; ``step`` calls only the text decoder with the returned
  ``DynamicCache`` (tuple caches are gone in transformers 5.x) and scores only ``logits_ids`` rows of the head.
  Trap: the cache is ``cache=`` in and ``.cache`` out. Since 5.2x ``past_key_values`` is a deprecated alias
  (a warning on every predict, removed in 5.40); the ``hf`` extra pins the tested transformers.
* LoRA via peft (:meth:`HFBackbone.enable_lora`). Default scope is the language model only: the names
  ``q_proj``/``v_proj`` also match SigLIP's attention, so a bare ``["q_proj", "v_proj"]`` would adapt the
  vision tower too (``lora_scope="all"`` opts into that).
"""

from __future__ import annotations

import importlib
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rt2.data.transforms import ImageTransform, TransformConfig
from rt2.models.base import IGNORE_INDEX, Backbone, read_meta
from rt2.models.hf_families import FAMILIES, Family, Qwen2VLFamily, family_for_model_type

log = logging.getLogger(__name__)

INSTALL_HINT = 'pip install "rt2[hf]"'
ACTION_VOCAB_KINDS = ("least_used", "added", "numeric")
LORA_ADAPTER_DIR = "lora"
# Registry names per family (hyphenated, as users type them).
FAMILY_NAMES = {"paligemma": "hf-paligemma", "idefics3": "hf-idefics3", "qwen2_vl": "hf-qwen2-vl", "llava": "hf-llava"}
_VISION_ATTRS = ("vision_tower", "vision_model", "visual")


def require(module: str = "transformers") -> Any:
    """Import an optional dependency of the HF backbones or raise ImportError with the install hint."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"Hugging Face backbones need the optional '{module}' package: {INSTALL_HINT}") from e


@dataclass
class HFBackboneConfig:
    """Options of an HF backbone (JSON-able; saved in ``backbone.json``).

    ``path``: local folder with config.json + weights + tokenizer (never a hub id).
    ``family``: None = from config.json ``model_type``; else checked against it.
    ``image_size``: Qwen2-VL only (square side, multiple of patch*merge; default 224); the others use the
    vision config's fixed size.
    ``action_vocab``: how the VLA maps action bins to token ids: "least_used" (PaLM-E style, overwrite the 256
    least-used tokens; default), "added" (new tokens + resized embeddings) or "numeric" (integers that are
    single tokens in this tokenizer).
    ``lora_*``: LoRA through peft, applied at load when ``lora_rank > 0``; ``lora_scope`` "language" restricts
    ``lora_target_modules`` to the language model, "all" also adapts the vision tower.
    """

    path: str = ""
    family: str | None = None
    name: str = "hf"
    n_frames: int = 1
    image_size: int | None = None
    dtype: str = "float32"
    attn_implementation: str = "sdpa"
    trust_remote_code: bool = False
    action_vocab: str = "least_used"
    freeze_vision: bool = False
    lora_rank: int = 0
    lora_alpha: float | None = None
    lora_dropout: float = 0.0
    lora_target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    lora_scope: str = "language"

    def __post_init__(self) -> None:
        if self.action_vocab not in ACTION_VOCAB_KINDS:
            raise ValueError(f"action_vocab must be one of {ACTION_VOCAB_KINDS}, got {self.action_vocab!r}")
        if self.family is not None and self.family not in FAMILIES:
            raise ValueError(f"family must be one of {sorted(FAMILIES)} or None, got {self.family!r}")
        if self.dtype not in ("float32", "bfloat16", "float16"):
            raise ValueError(f"dtype must be float32, bfloat16 or float16, got {self.dtype!r}")
        if self.lora_scope not in ("language", "all"):
            raise ValueError(f"lora_scope must be 'language' or 'all', got {self.lora_scope!r}")
        if self.n_frames < 1 or self.lora_rank < 0:
            raise ValueError("n_frames must be >= 1 and lora_rank >= 0")
        self.lora_target_modules = list(self.lora_target_modules)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> HFBackboneConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown HF backbone option(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**d)


@dataclass
class HFCache:
    """Decode state: the HF ``DynamicCache`` plus what a one-token step needs."""

    kv: Any
    attention_mask: torch.Tensor  # int64[B, L + steps]
    next_pos: torch.Tensor  # int64[B]
    padded: bool  # any left padding? (no -> the step passes no mask at all)
    remaining: int


def _check_local_dir(path: str | Path) -> Path:
    p = Path(path).expanduser()
    if not p.is_dir() or not (p / "config.json").is_file():
        raise FileNotFoundError(
            f"{str(path)!r} is not a local model folder with a config.json. rt2 never downloads from a model hub: "
            "fetch the checkpoint yourself (e.g. `hf download google/paligemma2-3b-pt-224 --local-dir DIR`) "
            "and pass path=DIR"
        )
    return p


class HFBackbone(Backbone):
    """A transformers ``*ForConditionalGeneration`` VLM adapted to :class:`rt2.models.base.Backbone`."""

    family = "hf"

    def __init__(self, model: Any, tokenizer: Any, config: HFBackboneConfig, fam: Family) -> None:
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.config = config
        self.fam = fam
        self.name = config.name
        self.n_frames = int(config.n_frames)
        self.image_size = fam.image_hw()
        mean, std = fam.normalization()
        self.transform = ImageTransform(TransformConfig(size=self.image_size, mean=mean, std=std))
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.pad_token_id = int(pad if pad is not None else 0)
        if len(tokenizer) > self.vocab_size:
            raise ValueError(
                f"tokenizer has {len(tokenizer)} tokens but the model head only {self.vocab_size} rows; "
                "call resize_token_embeddings(len(tokenizer)) or use a matching tokenizer"
            )
        if config.freeze_vision:
            self.freeze_vision()
        if config.lora_rank > 0 and not self.is_lora:
            self.enable_lora()

    # ---- loading ----------------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path, **options: Any) -> HFBackbone:
        """Load an HF checkpoint from a local folder (``options``: :class:`HFBackboneConfig` fields)."""
        transformers = require("transformers")
        cfg = HFBackboneConfig.from_dict({**options, "path": str(path)})
        root = _check_local_dir(path)
        hf_config = transformers.AutoConfig.from_pretrained(
            root, local_files_only=True, trust_remote_code=cfg.trust_remote_code
        )
        fam_cls = family_for_model_type(hf_config.model_type)
        if cfg.family is not None and cfg.family != fam_cls.name:
            raise ValueError(
                f"{root} holds a {fam_cls.name} model (model_type {hf_config.model_type!r}), not {cfg.family}"
            )
        cfg.family = fam_cls.name
        tokenizer = transformers.AutoTokenizer.from_pretrained(
            root, local_files_only=True, trust_remote_code=cfg.trust_remote_code
        )
        model = transformers.AutoModelForImageTextToText.from_pretrained(
            root,
            local_files_only=True,
            trust_remote_code=cfg.trust_remote_code,
            dtype=getattr(torch, cfg.dtype),  # trap: torch_dtype= is deprecated in 5.x
            attn_implementation=cfg.attn_implementation,
        )
        preproc_path = root / "preprocessor_config.json"
        preproc = json.loads(preproc_path.read_text()) if preproc_path.is_file() else {}
        fam = fam_cls(model.config, tokenizer, preproc)
        if isinstance(fam, Qwen2VLFamily):
            fam.set_side(cfg.image_size or fam.preferred_side())
        elif cfg.image_size is not None and cfg.image_size != fam.image_hw()[0]:
            raise ValueError(f"{fam.name} has a fixed image size {fam.image_hw()[0]}; image_size applies to Qwen2-VL")
        lora_dir = root / LORA_ADAPTER_DIR
        lora_rank = cfg.lora_rank
        if lora_dir.is_dir():
            cfg.lora_rank = 0  # attached below from the saved adapter, not re-initialized
        backbone = cls(model, tokenizer, cfg, fam)
        if lora_dir.is_dir():
            peft = require("peft")
            backbone.model = peft.PeftModel.from_pretrained(model, lora_dir, is_trainable=True)
            backbone.config.lora_rank = lora_rank
        backbone.model.eval()
        return backbone

    @classmethod
    def from_pretrained(cls, directory: str | Path, **kwargs: Any) -> HFBackbone:
        """Load a directory written by :meth:`save_pretrained` (options from ``backbone.json``).

        ``trust_remote_code`` comes only from the caller (``kwargs``), never from the folder: a downloaded
        checkpoint whose ``backbone.json`` asks for it could otherwise run the Python code it ships. Such a folder
        is refused unless the caller passes ``trust_remote_code=True`` (``--trust-remote-code`` on the CLI)."""
        meta = read_meta(directory)
        if meta.get("family") != cls.family:
            raise ValueError(f"{directory} holds a {meta.get('family')!r} backbone, not an HF one")
        saved = dict(meta.get("hf", {}))
        trust = bool(kwargs.pop("trust_remote_code", False))
        if saved.pop("trust_remote_code", False) and not trust:
            raise ValueError(
                f"{directory} asks for trust_remote_code, which would run Python code shipped in that folder; rt2 "
                "never turns it on from a checkpoint. If you trust the folder's code, pass --trust-remote-code "
                "(or from_pretrained(..., trust_remote_code=True))"
            )
        options = {**saved, **kwargs, "trust_remote_code": trust}
        options.pop("path", None)
        return cls.load(directory, **options)

    def save_pretrained(self, directory: str | Path) -> None:
        """Write an HF-loadable folder (config.json, model.safetensors, tokenizer, preprocessor_config.json)
        plus ``backbone.json``; with LoRA, the base weights stay unmerged and the adapter goes to ``lora/``."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        base = self.hf_model
        if self.is_lora:
            # LoRA wraps modules in place: strip the wrapper names so the base folder is a plain HF checkpoint.
            sd = {}
            for k, v in base.state_dict().items():
                if "lora_" in k:
                    continue
                sd[k.replace(".base_layer.", ".")] = v
            base.save_pretrained(d, state_dict=sd)
            self.model.save_pretrained(d / LORA_ADAPTER_DIR)
        else:
            base.save_pretrained(d)
        self.tokenizer.save_pretrained(d)
        tc = self.transform.config
        preproc = {**self.fam.preprocessor, "image_mean": list(tc.mean), "image_std": list(tc.std)}
        (d / "preprocessor_config.json").write_text(json.dumps(preproc, indent=2) + "\n")
        opts = self.config.to_dict()
        opts.pop("path")
        self.write_meta(d, hf=opts, model_type=base.config.model_type)

    # ---- structure ----------------------------------------------------------------------------------------
    @property
    def hf_model(self) -> Any:
        """The transformers model (under a peft wrapper if LoRA is on; LoRA layers are injected in place)."""
        return self.model.get_base_model() if self.is_lora else self.model

    @property
    def prefix_lm(self) -> bool:
        """True when image + prompt attend bidirectionally (PaliGemma); False for the decoder-only families,
        which stay causal over the prompt as they were pre-trained (``tests/backbone_checks.py`` checks both)."""
        return bool(self.fam.prefix_lm)

    @property
    def is_lora(self) -> bool:
        return hasattr(self.model, "peft_config")

    @property
    def vocab_size(self) -> int:
        return int(self.hf_model.get_output_embeddings().weight.shape[0])

    def resize_token_embeddings(self, n: int) -> None:
        if n < self.vocab_size:
            raise ValueError(f"cannot shrink the vocabulary from {self.vocab_size} to {n}")
        if n > self.vocab_size:
            self.hf_model.resize_token_embeddings(n, mean_resizing=True)

    def vision_module(self) -> torch.nn.Module:
        inner = self.hf_model.model
        for attr in _VISION_ATTRS:
            mod = getattr(inner, attr, None)
            if isinstance(mod, torch.nn.Module):
                return mod
        raise ValueError(f"no vision tower found on {type(inner).__name__} (looked for {_VISION_ATTRS})")

    def freeze_vision(self) -> None:
        """Freeze the vision encoder (the projector stays trainable)."""
        for p in self.vision_module().parameters():
            p.requires_grad_(False)
        self.config.freeze_vision = True

    def enable_lora(self) -> None:
        """Wrap the model with peft LoRA (rank, alpha, targets and scope from the config); only adapters train."""
        cfg = self.config
        if cfg.lora_rank <= 0:
            raise ValueError("set config.lora_rank > 0 before enable_lora()")
        if self.is_lora:
            raise ValueError("LoRA is already enabled")
        peft = require("peft")
        names = "|".join(re.escape(m) for m in cfg.lora_target_modules)
        if cfg.lora_scope == "language":
            # Trap: q_proj/v_proj also name SigLIP's attention projections; restrict to the text decoder.
            target: Any = rf".*\.(language_model|text_model)\..*\.({names})"
        else:
            target = list(cfg.lora_target_modules)
        lcfg = peft.LoraConfig(
            r=cfg.lora_rank,
            lora_alpha=cfg.lora_alpha if cfg.lora_alpha is not None else 2 * cfg.lora_rank,
            lora_dropout=cfg.lora_dropout,
            target_modules=target,
        )
        self.model = peft.get_peft_model(self.model, lcfg)

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    # ---- inputs -------------------------------------------------------------------------------------------
    def prepare(
        self,
        images: Sequence[Sequence[np.ndarray]],
        prompts: Sequence[str],
        targets: Sequence[Sequence[int]] | None = None,
        *,
        augment: bool = False,
        generator: np.random.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        """Batch dict (``rt2.models.base``) plus the family's pixel keys (e.g. ``image_grid_thw``).

        Layout per family: ``rt2.models.hf_families``. Pixels: ``rt2.data.transforms.ImageTransform`` (the
        same code path as every other backbone; ``augment`` = its random crop + colour jitter from ``generator``).
        """
        self.check_batch(images, prompts)
        if targets is not None and len(targets) != len(prompts):
            raise ValueError(f"got {len(prompts)} prompts but {len(targets)} targets")
        pixels = self.transform(images, augment=augment, rng=generator)
        pix = self.fam.pixel_inputs(pixels)
        rows = [
            self.fam.prefix(list(self.tokenizer.encode(p, add_special_tokens=False)), self.n_frames) for p in prompts
        ]
        out: dict[str, torch.Tensor] = {}
        if targets is None:
            width = max(len(r) for r in rows)
            ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for b, r in enumerate(rows):  # left padding: the last column is every row's last prompt token
                ids[b, width - len(r) :] = torch.tensor(r)
                mask[b, width - len(r) :] = 1
            out.update(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids))
        else:
            tgts = [self._check_target(b, t) for b, t in enumerate(targets)]
            width = max(len(r) + len(t) for r, t in zip(rows, tgts, strict=True))
            ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
            mask = torch.zeros_like(ids)
            tt = torch.zeros_like(ids)
            labels = torch.full_like(ids, IGNORE_INDEX)
            for b, (r, t) in enumerate(zip(rows, tgts, strict=True)):  # right padding: [prompt][answer][pad]
                n, m = len(r), len(t)
                ids[b, : n + m] = torch.tensor(r + t)
                mask[b, : n + m] = 1
                tt[b, n : n + m] = 1
                labels[b, n - 1 : n + m - 1] = torch.tensor(t)  # logits at column c predict token c + 1
            out.update(input_ids=ids, attention_mask=mask, token_type_ids=tt, labels=labels)
        out.update(pix)
        return out

    def _check_target(self, b: int, t: Sequence[int]) -> list[int]:
        ids = [int(i) for i in t]
        if not ids:
            raise ValueError(f"target {b} is empty; pass at least one answer token id")
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise ValueError(f"target {b} has ids outside the vocabulary [0, {self.vocab_size}): {bad[:5]}")
        return ids

    # ---- networks -----------------------------------------------------------------------------------------
    def forward(self, **inputs: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits float32[B, L, V], aligned with ``inputs["labels"]``."""
        kw = self.fam.model_kwargs(self.hf_model, inputs, prefill=False)
        out = self.hf_model(**kw, use_cache=False)
        return out.logits.float()

    def _head(self, hidden: torch.Tensor, logits_ids: torch.Tensor | None) -> torch.Tensor:
        """hidden float[B, H] -> float32[B, V] or [B, K] (only the ``logits_ids`` rows of the output head)."""
        w = self.hf_model.get_output_embeddings().weight
        if logits_ids is not None:
            w = w.index_select(0, logits_ids.to(w.device))
        logits = (hidden.to(w.dtype) @ w.T).float()
        cap = getattr(self.hf_model.config.get_text_config(), "final_logit_softcapping", None)
        if cap:  # Gemma 2 (PaliGemma 2) caps logits
            logits = torch.tanh(logits / cap) * cap
        return logits

    @torch.no_grad()
    def prefill(
        self, inputs: Mapping[str, torch.Tensor], *, max_new_tokens: int, logits_ids: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, HFCache]:
        """Run the left-padded prompt once -> (float32[B, V|K] last-column logits, :class:`HFCache`)."""
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        if "labels" in inputs:
            raise ValueError("prefill takes a generation batch (prepare(...) without targets)")
        kw = self.fam.model_kwargs(self.hf_model, inputs, prefill=True)
        out = self.hf_model.model(**kw, use_cache=True)
        logits = self._head(out.last_hidden_state[:, -1], logits_ids)
        mask = inputs["attention_mask"]
        cache = HFCache(
            kv=out.cache,
            attention_mask=mask,
            next_pos=self.fam.next_positions(kw["position_ids"]),
            padded=bool((mask == 0).any()),
            remaining=int(max_new_tokens),
        )
        return logits, cache

    @torch.no_grad()
    def step(
        self, token_ids: torch.Tensor, cache: HFCache, *, logits_ids: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, HFCache]:
        """Append ``token_ids`` int64[B] -> (float32[B, V|K] next logits, cache). Text decoder only."""
        if cache.remaining <= 0:
            raise RuntimeError("decode cache is full: more steps than prefill(max_new_tokens=...) allowed")
        b = cache.attention_mask.shape[0]
        if token_ids.shape != (b,):
            raise ValueError(f"step takes int64[{b}] token ids (one per row), got shape {tuple(token_ids.shape)}")
        mask = torch.cat([cache.attention_mask, cache.attention_mask.new_ones(b, 1)], dim=1)
        decoder = self.hf_model.model.get_decoder()
        out = decoder(
            input_ids=token_ids[:, None],
            # No padding -> no mask: a single query attends to the whole cache (skips mask building per step).
            attention_mask=mask if cache.padded else None,
            position_ids=self.fam.step_position_ids(cache.next_pos),
            cache=cache.kv,
            use_cache=True,
        )
        logits = self._head(out.last_hidden_state[:, -1], logits_ids)
        new = HFCache(out.cache, mask, cache.next_pos + 1, cache.padded, cache.remaining - 1)
        return logits, new

    # ---- action vocabulary ----------------------------------------------------------------------------------
    def make_action_vocab(self, action_tokenizer: Any, corpus: Sequence[str] | None = None) -> Any:
        """Build the ``rt2.actions.ActionVocab`` chosen by ``config.action_vocab`` for this tokenizer
        (``added`` also grows the embeddings)."""
        from rt2.actions import ActionVocab

        kind = self.config.action_vocab
        if kind == "numeric":
            return ActionVocab.numeric(self.tokenizer, action_tokenizer)
        if kind == "added":
            vocab = ActionVocab.added(self.tokenizer, action_tokenizer)
            self.resize_token_embeddings(max(self.vocab_size, len(self.tokenizer)))
            return vocab
        return ActionVocab.least_used(self.tokenizer, action_tokenizer, corpus)


# ---- registry ---------------------------------------------------------------------------------------------
def _factory(family: str | None, tiny: bool = False):
    def build(tokenizer: Any = None, config: HFBackboneConfig | None = None, **overrides: Any) -> HFBackbone:
        if tokenizer is not None:
            raise ValueError("HF backbones load their own tokenizer from the model folder; pass tokenizer=None")
        opts = config.to_dict() if config is not None else {}
        opts.update(overrides)
        if family is not None:
            opts["family"] = family
        if tiny:
            import tempfile

            from rt2.models.hf_tiny import write_tiny_checkpoint

            fam = family or "paligemma"
            seed = int(opts.pop("seed", 0))
            tmp = tempfile.mkdtemp(prefix=f"rt2-{fam}-tiny-")
            write_tiny_checkpoint(tmp, fam, seed=seed)
            opts["path"] = tmp
            opts.setdefault("name", f"{FAMILY_NAMES[fam]}-tiny")
        path = opts.pop("path", None)
        if not path:
            hint = f" (or use {FAMILY_NAMES[family]}-tiny for a random tiny model)" if family else ""
            raise ValueError(f"HF backbones need path=LOCAL_DIR, a folder with config.json and weights{hint}")
        if family is not None and not tiny:
            opts.setdefault("name", FAMILY_NAMES[family])
        return HFBackbone.load(path, **opts)

    return build


def _register() -> None:
    from rt2.models.registry import register_backbone

    register_backbone("hf", _factory(None), cls=HFBackbone, description="HF VLM from a local folder (auto family)")
    for fam, name in FAMILY_NAMES.items():
        register_backbone(name, _factory(fam), cls=HFBackbone, description=f"HF {fam} from a local folder")
        register_backbone(
            f"{name}-tiny", _factory(fam, tiny=True), cls=HFBackbone, description=f"tiny random {fam} (tests)"
        )


_register()


def tiny_config(family: str, tokenizer: Any = None) -> Any:
    """A tiny random-init transformers config of ``family`` (see ``rt2.models.hf_tiny``)."""
    from rt2.models.hf_tiny import tiny_config as _tiny

    return _tiny(family, tokenizer)


def build_tiny_tokenizer() -> Any:
    """The local byte-level BPE tokenizer used by the tiny configs (see ``rt2.models.hf_tiny``)."""
    from rt2.models.hf_tiny import build_tiny_tokenizer as _build

    return _build()
