"""The code classifier: scikit-learn conventions, multi-label decisions, codebook rules."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.exceptions import NotFittedError

from pipeline.codebook import load_codebook
from pipeline.coding.classify import CodingModel, featurize, training_set
from pipeline.coding.models import load_model_folder
from pipeline.coding.predict import code_rows
from pipeline.coding.stack import Features, StackedCoder
from pipeline.coding.training import drop_rare_codes
from pipeline.errors import ModelCardMismatchError
from pipeline.records import Annotation, Coding


def _keyword_task(seed: int = 0):
    """Texts whose code is carried by a keyword, with random stand-in embeddings."""
    rng = np.random.default_rng(seed)
    words = {0: "werkdruk", 1: "cursus", 2: "pilot"}
    texts, Y, groups = [], [], []
    for i in range(180):
        code = i % 4  # 3: no code
        filler = " ".join(rng.choice(["we", "hebben", "dat", "hier", "soms", "ook", "wel", "nou"], size=6))
        texts.append(f"{filler} {words[code]} {filler}" if code < 3 else filler)
        Y.append([int(code == j) for j in range(3)])
        groups.append(i // 15)
    F = Features(tuple(texts), rng.normal(size=(180, 8)))
    prototypes = ["werkdruk tijd", "cursus opleiding", "pilot experiment"]
    return F, np.array(Y), np.array(groups), prototypes, rng.normal(size=(3, 8))


def test_classify_stacked_coder_learns_and_calibrates() -> None:
    F, Y, groups, prototypes, vectors = _keyword_task()
    model = StackedCoder(n_splits=3).fit(F, Y, prototypes, vectors, groups=groups)
    test, Y_test, _, _, _ = _keyword_task(seed=1)
    proba = model.predict_proba(test)
    assert proba.shape == Y_test.shape and ((proba >= 0) & (proba <= 1)).all()
    coded = Y_test.any(axis=1)
    assert (proba[coded].argmax(axis=1) == Y_test[coded].argmax(axis=1)).mean() > 0.8  # two of four parts see only noise here
    assert proba[coded].max(axis=1).mean() > proba[~coded].max(axis=1).mean() + 0.3



def test_classify_stacker_reads_the_parts_and_older_coders_still_code() -> None:
    from sklearn.linear_model import LogisticRegression

    from pipeline.coding.stack import pair_features

    F, Y, groups, prototypes, vectors = _keyword_task()
    model = StackedCoder(n_splits=3).fit(F, Y, prototypes, vectors, groups=groups)
    assert model.stacker_.n_features_in_ == 8  # summed features and the four components' z-scores
    # a coder fitted before the parts were added (no stacker_parts_, a 4-feature stacker) still codes
    pairs, _ = pair_features(model.scorer_.components(F), with_parts=False)
    del model.stacker_parts_
    model.stacker_ = LogisticRegression().fit(pairs, Y.ravel())
    proba = model.predict_proba(_keyword_task(seed=1)[0])
    assert proba.shape == (180, 3) and ((proba >= 0) & (proba <= 1)).all()

def test_classify_features_index_and_join() -> None:
    F = Features(("a", "b", "c"), np.eye(3))
    assert F[[2, 0]].texts == ("c", "a") and F[np.array([True, False, True])].texts == ("a", "c")
    asked = Features(("d",), np.ones((1, 3)), ("vraag?",), np.ones((1, 3)))
    joined = F + asked
    assert joined.questions == ("", "", "", "vraag?") and joined.has_question.tolist() == [False, False, False, True]
    with pytest.raises(ValueError, match="one vector per text"):
        Features(("a",), np.eye(2))


def test_classify_unfitted() -> None:
    F = Features(("a",), np.zeros((1, 3)))
    with pytest.raises(NotFittedError):
        StackedCoder().predict_proba(F)
    with pytest.raises(NotFittedError):
        CodingModel(["a"], "garvin2008", "x", 3).predict_proba(F)


def _annotation(version: str) -> Annotation:
    return Annotation("u1", "x.txt", "h", 0, 4, "Test", (Coding("analyse", "-", "practice"),), "a", "", version)


def test_classify_refuses_other_codebook_version() -> None:
    with pytest.raises(ModelCardMismatchError, match="codebook version 'scriptie2017'; this model uses 'garvin2008'"):
        training_set([_annotation("scriptie2017")], load_codebook("garvin2008"))


def test_classify_rare_codes_are_reported_not_fatal(small_training_annotations) -> None:
    data, skipped = drop_rare_codes(training_set(small_training_annotations, load_codebook()), 8)
    assert "quotes" in skipped and "quotes" not in data.codes
    assert data.Y.shape[1] == len(data.codes)


def test_classify_trained_model_codes_unseen_sentences(trained_model_dir, use_encoder) -> None:
    codebook = load_codebook()
    loaded = load_model_folder(trained_model_dir, codebook_version="garvin2008")
    sentences = {
        "s1": "We hebben wel een opleidingsbudget, maar ik heb dit jaar geen enkele cursus gevolgd.",
        "s2": "Mijn leidinggevende vraagt elke week hoe het gaat en luistert echt naar wat ik zeg.",
        "s3": "Het regent vandaag.",
    }
    X, _, _ = featurize(list(sentences.values()), use_encoder, questions=["", None, ""])
    rows = {row.id: row for row in code_rows(list(sentences), X, loaded.model, loaded.model_id, codebook)}
    alone, _, _ = featurize(list(sentences.values()), use_encoder)
    assert np.allclose(loaded.model.predict_proba(alone), loaded.model.predict_proba(X))  # no question = no question
    assert rows["s1"].codes[0][0] in ("onderwijs_training", "concrete_leerprocessen")
    assert "onderwijs_training" in rows["s1"].predicted and "concrete_leerprocessen" in rows["s1"].predicted
    assert rows["s2"].codes[0][0] in ("actief_bevragen_luisteren", "leiderschap")
    assert dict((c, label) for c, label, _ in rows["s2"].direction).get("actief_bevragen_luisteren") == "+"
    all_codes = [c for c, _ in rows["s3"].codes]
    assert len(all_codes) == len(set(all_codes)) and set(codebook.incentives) <= set(all_codes)
    assert [p for _, p in rows["s3"].codes] == sorted((p for _, p in rows["s3"].codes), reverse=True)


def test_classify_command_writes_every_code(trained_model_dir, tmp_path) -> None:
    from pipeline.cli import cli

    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(json.dumps({"id": f"r{i}", "text": t, "bron": "test"}) for i, t in enumerate(
        ["De werkdruk is zo hoog dat evalueren er nooit van komt.", "We delen alles in het teamoverleg."])) + "\n",
        encoding="utf-8")
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(cli, ["--home", str(tmp_path), "classify", str(source), "-o", str(out), "--model",
                                      str(trained_model_dir)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["r0", "r1"] and rows[0]["bron"] == "test"
    assert {"codes", "predicted", "direction", "needs_review", "model"} <= set(rows[0])
    assert all(set(r["direction"]) <= set(r["predicted"]) for r in rows)
