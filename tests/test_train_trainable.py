"""freeze_vision and LoRA (peft, HF backbones): what the optimizer sees, what changes after training, clear
errors where an option does not apply."""

from __future__ import annotations

import pytest
import torch

from rt2.train.config import apply_overrides, preset
from rt2.train.optim import build_optimizer, configure_trainable


def _pali():
    from rt2.models import TextTokenizer
    from rt2.train.sources import build_fresh_model, tokenizer_corpus

    tok = TextTokenizer.train(tokenizer_corpus(n_web=50, n_scenes=2), vocab_size=512)
    torch.manual_seed(0)
    return build_fresh_model("pali-tiny", tok, n_frames=1)


def test_freeze_vision_on_pali_excludes_the_tower_from_the_optimizer():
    vla = _pali()
    cfg = apply_overrides(preset("debug"), {"freeze_vision": True})
    configure_trainable(vla, cfg)
    vision = {id(p) for p in vla.backbone.vision.parameters()}
    assert vision and all(not p.requires_grad for p in vla.backbone.vision.parameters())
    opt = build_optimizer(vla, cfg)
    in_opt = {id(p) for g in opt.param_groups for p in g["params"]}
    assert not in_opt & vision
    assert in_opt  # the language model and projector still train
    with pytest.raises(ValueError, match="LoRA is available for Hugging Face backbones"):
        configure_trainable(vla, apply_overrides(preset("debug"), {"lora_rank": 4}))


@pytest.mark.slow
def test_lora_on_hf_paligemma_trains_only_adapters(tmp_path):
    pytest.importorskip("peft")
    from rt2.data.mixture import MixtureSampler
    from rt2.data.web import WebCorpus, WebCorpusConfig
    from rt2.policy.policy import Policy
    from rt2.train.batches import ExampleBatches
    from rt2.train.sources import build_fresh_model
    from rt2.train.trainer import Trainer

    torch.manual_seed(0)
    vla = build_fresh_model("hf-paligemma-tiny", None, n_frames=1)
    cfg = apply_overrides(
        preset("lora"), {"steps": 2, "batch_size": 4, "warmup_steps": 1, "precision": "fp32", "ckpt_every": 2}
    )
    web = WebCorpus(WebCorpusConfig(image_size=tuple(vla.backbone.image_size)))

    def batches(m: int, r: int, w: int) -> ExampleBatches:
        return ExampleBatches(
            MixtureSampler({"web": web}, {"web": 1.0}, batch_size=m * w), vla.encode_examples, m, r, w
        )

    tr = Trainer(vla, cfg, batches, tmp_path, progress=False)
    trainable = {n for n, p in vla.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    before = {n: p.detach().clone() for n, p in vla.named_parameters()}
    res = tr.fit()
    after = dict(vla.named_parameters())
    changed = {n for n in before if not torch.equal(before[n], after[n].detach())}
    assert changed and changed <= trainable  # only adapters moved (lora_B starts at 0, so A or B moved)
    policy = Policy.from_pretrained(res.export_dir)
    assert policy.vla.backbone.is_lora
