"""``codeer train --fine-tune`` (issue 22, item 4): the pairs, the fine-tune, the model that carries it.

One tiny fine-tune (16 pairs, two steps) inside one tiny training run is shared by the module. It
starts from the machine's converted e5 folder (``make install`` builds it; otherwise the first use
does, about half a minute).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from pipeline.codebook import load_codebook
from pipeline.coding import promotion, training
from pipeline.coding.embed import ConcatEncoder, load_encoder
from pipeline.coding.embedding_cache import EmbeddingCache
from pipeline.coding.finetune import (
    ENCODER_FOLDER,
    FineTuneConfig,
    fine_tune,
    fine_tuned_name,
    sample_pairs,
)
from pipeline.coding.jobs import classify_file_with, open_encoder
from pipeline.coding.models import load_model_folder
from pipeline.corpus.annotations import read_annotations
from pipeline.errors import ConfigError, FineTuneError, ModelCardMismatchError, ModelFileError
from pipeline.hashing import folder_hash
from pipeline.resources import holdout_dir, seed_dir

LABELS = [{"a"}, {"a", "b"}, {"b"}, {"c"}, set(), set(), {"c"}]
SENTENCES = ["Er is eigenlijk geen budget voor opleidingen.", "We evalueren nooit samen.", "ok"]


def test_sample_pairs_positives_share_a_code_and_negatives_none() -> None:
    pairs = sample_pairs(LABELS, 5, np.random.default_rng(3))
    classes = [codes or {"none"} for codes in LABELS]  # texts without codes are a class of their own
    assert all(i != j and bool(classes[i] & classes[j]) == (target == 1.0) for i, j, target in pairs)
    # per iteration and text one positive and one negative (every text here has both kinds of partner)
    assert Counter(i for i, _, t in pairs if t == 1.0) == Counter(i for i, _, t in pairs if t == 0.0) \
        == {i: 5 for i in range(len(LABELS))}
    assert sample_pairs(LABELS, 5, np.random.default_rng(3)) == pairs  # the same seed, the same pairs
    assert sample_pairs(LABELS, 5, np.random.default_rng(4)) != pairs
    lonely = sample_pairs([{"x"}, {"y"}, {"y"}], 3, np.random.default_rng(0))
    assert not [pair for pair in lonely if pair[0] == 0 and pair[2] == 1.0]  # no one else has x: no positive


def test_fine_tune_names_settings_and_missing_pieces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert fine_tuned_name("e5-int8+use") == fine_tuned_name("default") == "e5-finetuned+use"
    assert fine_tuned_name("e5-torch") == "e5-finetuned"
    with pytest.raises(ConfigError, match="no e5 part"):
        fine_tuned_name("use")
    with pytest.raises(ConfigError, match="at least 1"):
        FineTuneConfig(max_pairs=0)
    with pytest.raises(ConfigError, match="read from that model's folder"):
        load_encoder("e5-finetuned+use")
    with pytest.raises(FineTuneError, match="no text pairs"):  # one text: nobody to pair it with
        fine_tune(["een"], [{"a"}], tmp_path / "none", FineTuneConfig(iterations=1))
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # as on a machine without it
    with pytest.raises(FineTuneError, match="needs torch and sentence-transformers"):
        fine_tune(SENTENCES, [{"a"}, {"a"}, set()], tmp_path / "out")


@pytest.fixture(scope="module")
def tuned_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model trained with a tiny fine-tune (16 pairs, batch 8) on four demo documents; the held-out
    set cut to two documents and 40 yardstick sentences, no champion to beat, so that the fine-tuned
    e5 (torch fp32, slower than ONNX int8) embeds about 250 texts."""
    home = tmp_path_factory.mktemp("fine-tune")
    book = load_codebook()
    documents = ["DE-koersdocument-zelforganisatie", "DK-beleidsplan-sociaal-domein", "DR-ravenhorst-leert",
                 "DV-samenwerkingsagenda"]
    annotations = read_annotations([seed_dir() / f"{name}.jsonl" for name in documents], book)
    holdout = [a for a in read_annotations([holdout_dir()], book)
               if a.source_file in ("documents/DS-visienotitie.txt", "documents/DL-personeelsnotitie.txt")]
    config = training.TrainingConfig(encoder="e5-int8+use", knowledge=False, n_splits=2, min_examples=3,
                                     fine_tune=FineTuneConfig(max_pairs=16, batch_pairs=8))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CODEER_HASH_MEMO", str(home / "hash-memo.json"))  # not the user's memo
        patch.setattr(training, "holdout_annotations", lambda _: holdout)
        few = training.yardstick_items(book)[:40]
        patch.setattr(training, "yardstick_items", lambda _: few)
        patch.setattr(promotion, "yardstick_items", lambda _: few)
        cache = EmbeddingCache(home / "cache.sqlite")
        result = training.train_model(annotations, book, models_dir=home / "models", cache=cache, config=config,
                                      search_dirs=())
        cache.close()
    assert result.promoted
    return result.path


@pytest.fixture(autouse=True)
def _hash_memo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEER_HASH_MEMO", str(tmp_path / "hash-memo.json"))


def test_fine_tuned_model_carries_its_encoder_with_the_hash_on_its_card(tuned_model: Path) -> None:
    card = json.loads((tuned_model / "card.json").read_text(encoding="utf-8"))
    encoder = tuned_model / ENCODER_FOLDER
    assert (encoder / "model.safetensors").is_file() and not (encoder / "README.md").exists()
    tuned = card["fine_tune"]
    assert tuned["encoder_sha256"] == folder_hash(encoder)
    assert tuned["n_pairs"] == 16 and tuned["batch_pairs"] == 8 and tuned["iterations"] == 20
    assert card["encoder"] == "e5-finetuned+use" and card["config"]["encoder"] == "e5-int8+use"
    assert card["encoder_space"].startswith(f"e5ft-{tuned['encoder_sha256'][:12]}+")
    assert card["encoder_id"].startswith(f"e5ft-{tuned['encoder_sha256'][:12]}-fp32+usem3")
    assert "encoder fine-tuned" in (tuned_model / "card.md").read_text(encoding="utf-8")
    assert not list(tuned_model.parent.glob(".fine-tune-*"))  # the staging folder is gone


def test_fine_tuned_model_codes_with_its_own_encoder(tuned_model: Path, tmp_path: Path) -> None:
    book = load_codebook()
    rows = tmp_path / "zinnen.jsonl"
    rows.write_text("".join(json.dumps({"id": f"z{i}", "text": text}) + "\n" for i, text in enumerate(SENTENCES)),
                    encoding="utf-8")
    result, loaded = classify_file_with(tuned_model, rows, tmp_path / "uit.jsonl", book)
    coded = [json.loads(line) for line in (tmp_path / "uit.jsonl").read_text(encoding="utf-8").splitlines()]
    assert result.n_rows == len(coded) == 3 and {row["model"] for row in coded} == {loaded.model_id}
    encoder = open_encoder(load_model_folder(tuned_model, codebook_version=book.version))
    assert isinstance(encoder, ConcatEncoder) and encoder.encoder_id == loaded.card["encoder_id"]
    tuned = encoder.parts[0].encode(SENTENCES)
    base = load_encoder("e5-torch").encode(SENTENCES)
    np.testing.assert_allclose(np.linalg.norm(tuned, axis=1), 1.0, atol=1e-5)
    cosines = np.sum(tuned * base, axis=1)
    assert cosines.max() < 1 - 1e-6 and cosines.min() > 0.9  # the weights moved, a little (two steps)


def test_flows_load_a_fine_tuned_model_s_own_encoder(tuned_model: Path, tmp_path: Path) -> None:
    from flows.config import RunConfig, run_context

    context = run_context(RunConfig(home=tmp_path, model=str(tuned_model), device="cpu"))
    loaded = context.model(str(tuned_model))
    assert context.encoder(loaded).encoder_id == loaded.card["encoder_id"]


def test_a_changed_or_missing_fine_tuned_encoder_is_refused(tuned_model: Path, tmp_path: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(tuned_model, copy, copy_function=os.link)  # hard links: no copy of 490 MB
    edited = copy / ENCODER_FOLDER / "1_Pooling" / "config.json"
    text = edited.read_text(encoding="utf-8")
    edited.unlink()  # a new file, so that the model's own stays as it was
    edited.write_text(text + "\n", encoding="utf-8")
    loaded = load_model_folder(copy)
    with pytest.raises(ModelCardMismatchError, match="does not match its card; copy the model folder again or retrain"):
        open_encoder(loaded)
    shutil.rmtree(copy / ENCODER_FOLDER)
    with pytest.raises(ModelFileError, match="Copy the whole model folder again"):
        open_encoder(loaded)


def test_cli_train_offers_fine_tuning_and_refuses_misuse(tmp_path: Path) -> None:
    from pipeline.cli import cli

    shown = CliRunner().invoke(cli, ["train", "--help"])
    assert shown.exit_code == 0 and "--fine-tune" in shown.output and "--fine-tune-pairs" in shown.output
    assert "bench/gpu/results.md" in shown.output
    home = ["--home", str(tmp_path / "ws")]
    alone = CliRunner().invoke(cli, [*home, "train", "--fine-tune-pairs", "5"])
    assert alone.exit_code == 2 and "goes with --fine-tune" in alone.output
    use = CliRunner().invoke(cli, [*home, "train", "--fine-tune", "--encoder", "use"])
    assert use.exit_code == 1 and "no e5 part" in use.output and "Traceback" not in use.output
    assert not (tmp_path / "ws").exists()  # refused before anything was created
