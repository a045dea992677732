"""``rt2 bench quantize --quick``: fp32 vs int8 latency, action agreement and paired success in one table."""

from __future__ import annotations

import json

from rt2.cli import main

CORPUS = ["Q: what action should the robot take to push the red moon to the blue cube? A: 3 -7"] * 20


def test_quantize_bench_quick(tmp_path, capsys):
    from rt2.models.text_tokenizer import TextTokenizer
    from rt2.models.vla import VLA

    d = tmp_path / "ckpt"
    VLA.build("pali-tiny", TextTokenizer.train(CORPUS, vocab_size=256)).save_pretrained(d)
    out = tmp_path / "q.json"
    assert main(["bench", "quantize", "--policy", str(d), "--quick", "--json", str(out)]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "fp32 vs dynamic int8" in printed and "calibration" in printed
    r = json.loads(out.read_text())
    lat = r["latency"]["B1"]
    assert len(lat["fp32_ms"]) == len(lat["int8_ms"]) == 3 and 0.1 < lat["speedup"] < 20
    assert r["observations"] == 16 and 0.0 <= r["action_agreement"] <= r["token_agreement"] <= 1.0
    assert 0.0 < r["linear_share"] < 1.0
    seen = r["success"]["seen"]
    assert seen["fp32"]["n"] == seen["int8"]["n"] == seen["paired_int8_minus_fp32"]["n"] == 5
    assert seen["fp32"]["mean_steps"] == 5.0  # an untrained model does not solve a task in 5 steps
