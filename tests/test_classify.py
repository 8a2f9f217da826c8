"""The code classifier: scikit-learn conventions, multi-label decisions, codebook rules."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

from pipeline.codebook import load_codebook
from pipeline.coding.classify import CodeClassifier, CodingModel, featurize, training_set
from pipeline.coding.models import load_model_folder
from pipeline.coding.predict import code_rows
from pipeline.coding.training import drop_rare_codes
from pipeline.errors import ModelCardMismatchError
from pipeline.records import Annotation, Coding


@parametrize_with_checks(
    [CodeClassifier(n_splits=2, min_positive=1, random_state=0)],
    expected_failed_checks=lambda estimator: {
        "check_class_weight_classifiers": "class_weight takes 'balanced' or None, not a dict of weights",
    },
)
def test_classify_sklearn_estimator_checks(estimator, check) -> None:
    check(estimator)


def _multilabel(seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(240, 12))
    Y = np.column_stack([(X[:, 0] > 0.8), (X[:, 1] < -0.8), (X[:, 2] + X[:, 3] > 1.2), np.zeros(240)]).astype(int)
    Y[:2, 3] = 1  # a label with two examples: too few
    groups = np.repeat(np.arange(12), 20)
    return X, Y, groups


def test_classify_multilabel_thresholds_and_rare_labels() -> None:
    X, Y, groups = _multilabel()
    model = CodeClassifier(min_positive=3).fit(X, Y, groups=groups)
    assert model.skipped_ == [3]
    predicted = model.predict(X)
    assert predicted.shape == Y.shape and predicted[:, 3].sum() == 0
    f1 = [2 * (predicted[:, j] & Y[:, j]).sum() / (predicted[:, j].sum() + Y[:, j].sum()) for j in range(3)]
    assert min(f1) > 0.7, f1
    proba = model.predict_proba(X)
    assert ((proba >= 0) & (proba <= 1)).all() and 0.05 < model.thresholds_[:3].min()


def test_classify_unfitted_and_bad_parameters() -> None:
    with pytest.raises(NotFittedError):
        CodeClassifier().predict_proba(np.zeros((1, 3)))
    with pytest.raises(NotFittedError):
        CodingModel(["a"], "garvin2008", "x", 3).predict_proba(np.zeros((1, 3)))
    X, Y, _ = _multilabel()
    with pytest.raises(ValueError, match="'C' parameter"):
        CodeClassifier(C=0).fit(X, Y)


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
    X, _, _ = featurize(list(sentences.values()), ["", "", ""], use_encoder, context_weight=loaded.model.context_weight)
    rows = {row.id: row for row in code_rows(list(sentences), X, loaded.model, loaded.model_id, codebook)}
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
