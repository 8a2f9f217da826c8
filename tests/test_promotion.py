"""Champion and challenger (issue 18): the promotion rule, and the nightly retrain-and-promote
flow end to end with a worse and a better challenger."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from pipeline.codebook import load_codebook
from pipeline.coding.promotion import (
    CLEARLY_WORSE,
    FREQUENT_SUPPORT,
    HeldOutScores,
    decide_promotion,
    heldout_set,
    without_heldout,
)


def _scores(primary: float, *, key: str = "k1", per_code: dict | None = None) -> HeldOutScores:
    return HeldOutScores(key, "yardstick macro-F1 (13 incentives, top-1)", primary, primary, 0.6,
                         per_code=per_code or {})


def _frequent(f1: float, support: int = FREQUENT_SUPPORT) -> dict:
    return {"holdout": {"tijd_evaluatie": {"f1": f1, "support": support}, "analyse": {"f1": 0.5, "support": 3}}}


def test_promotion_no_champion_promotes() -> None:
    decision = decide_promotion("m2", _scores(0.40), None, None)
    assert decision.promote and "no champion" in decision.reason


def test_promotion_worse_primary_keeps_the_champion() -> None:
    decision = decide_promotion("m2", _scores(0.386), "m1", _scores(0.578))
    assert not decision.promote
    assert "kept m1" in decision.reason and "0.386" in decision.reason and "0.578" in decision.reason


def test_promotion_within_tolerance_and_better_promote() -> None:
    assert decide_promotion("m2", _scores(0.575), "m1", _scores(0.578)).promote  # within 0.01
    decision = decide_promotion("m2", _scores(0.70), "m1", _scores(0.578))
    assert decision.promote and "promoted over m1" in decision.reason


def test_promotion_clearly_worse_on_a_frequent_code_keeps_the_champion() -> None:
    champion = _scores(0.60, per_code=_frequent(0.80))
    clearly = decide_promotion("m2", _scores(0.65, per_code=_frequent(0.80 - CLEARLY_WORSE - 0.05)), "m1", champion)
    assert not clearly.promote and "holdout/tijd_evaluatie" in clearly.reason
    slightly = decide_promotion("m2", _scores(0.65, per_code=_frequent(0.80 - CLEARLY_WORSE + 0.05)), "m1", champion)
    assert slightly.promote
    # a rare code may drop: one item moves its F1 by more than the margin
    rare = {"holdout": {"tijd_evaluatie": {"f1": 0.8, "support": 50}, "analyse": {"f1": 0.0, "support": 3}}}
    assert decide_promotion("m2", _scores(0.65, per_code=rare), "m1", champion).promote


def test_promotion_refuses_scores_of_different_held_out_sets() -> None:
    with pytest.raises(ValueError, match="different held-out sets"):
        decide_promotion("m2", _scores(0.9, key="k2"), "m1", _scores(0.5, key="k1"))


def test_promotion_held_out_set_is_frozen_per_codebook_version_and_never_trained_on() -> None:
    from pipeline.coding.training import holdout_annotations, seed_annotations

    book = load_codebook("garvin2008")
    holdout = holdout_annotations(book)
    heldout = heldout_set(book, holdout)
    assert heldout.key == heldout_set(book, holdout).key and len(heldout.yardstick) > 50
    assert heldout.key != heldout_set(book, holdout[1:]).key
    other = load_codebook("scriptie2017")
    assert heldout_set(other, []).key != heldout.key and not heldout_set(other, []).yardstick
    seed = seed_annotations(book)
    assert without_heldout([*seed, *holdout], heldout) == seed


# the nightly flow, end to end --------------------------------------------------------------------


@pytest.fixture()
def corrected_home(tmp_path: Path, segmenter, review_interview_file: Path) -> Path:
    """A workspace whose store holds one review correction (enough for a nightly retrain)."""
    from pipeline import review
    from pipeline.corpus.ingest import ingest_paths
    from pipeline.records import Coding, Prediction
    from pipeline.store import open_store

    home = tmp_path / "home"
    home.mkdir()
    store = open_store(f"sqlite:///{home / 'codeer.db'}")
    try:
        assert not ingest_paths([review_interview_file], store, segmenter).failed
        utterance = next(iter(store.iter_utterances()))
        review.enqueue(store, [Prediction(utterance.utterance_id, "m0", "tijd_evaluatie", 0.51, True, "-", 0.9)],
                       {"tijd_evaluatie": 0.5}, model_id="m0")
        review.add_user(store, "anna", "annotator", "geheim-wachtwoord")
        [item] = review.claim_next(store, "anna")
        review.correct(store, item.item_id, "anna", [Coding("tijd_evaluatie", "-", "practice")],
                       version=item.version, codebook=load_codebook("garvin2008"))
    finally:
        store.close()
    return home


def test_promotion_nightly_keeps_the_champion_against_a_worse_challenger_and_promotes_a_better_one(
        prefect_harness, corrected_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fitting and scoring are replaced (a real training takes 6-16 minutes); the rest of the
    path is real: the flows, the held-out key, the champion lookup, the decision, the card,
    CURRENT, the run log, the classification with the winner and the report."""
    from flows.code_transcripts import nightly
    from flows.config import RunConfig
    from pipeline.coding import training
    from pipeline.coding.models import current_model_id, resolve_model
    from pipeline.resources import packaged_models_dir
    from pipeline.store import open_store

    book = load_codebook("garvin2008")
    key = heldout_set(book, training.holdout_annotations(book)).key
    champion = resolve_model("current", [packaged_models_dir()])
    challenger_primary: list[float] = []

    def fit(annotations, codebook, **_):  # type: ignore[no-untyped-def]
        assert any(a.origin == "review" for a in annotations)  # the correction is trained on
        return training.FittedCandidate(champion.model, {"macro_f1": 0.5, "micro_f1": 0.5, "direction_accuracy": None},
                                        list(champion.model.codes), {}, len(annotations), [], "sources",
                                        champion.card["encoder"], None)

    stored = HeldOutScores.from_json(champion.card.get("heldout"))  # the packaged card carries its scores
    champion_scores = stored if stored is not None and stored.key == key else _scores(
        0.795, key=key, per_code=_frequent(0.70, support=25))

    def score(model, card):  # type: ignore[no-untyped-def]
        if card["model_id"] == champion.model_id:
            return champion_scores
        return replace(champion_scores, primary=challenger_primary[-1], yardstick_macro_f1=challenger_primary[-1])

    monkeypatch.setattr(training, "fit_candidate", fit)
    monkeypatch.setattr(training, "heldout_scorer", lambda heldout, **_: score)
    config = RunConfig(home=corrected_home, folders=[], min_new_corrections=1, fictional=True)
    models_dir = corrected_home / "models"

    assert champion_scores.primary > 0.60
    challenger_primary.append(0.60)  # worse
    worse = nightly(config)
    assert worse["retrained"]["promoted"] is False
    assert f"kept {champion.model_id}" in worse["retrained"]["reason"]
    assert current_model_id(models_dir) is None and worse["model"] == champion.model_id
    worse_card = json.loads((models_dir / worse["retrained"]["model_id"] / "card.json").read_text(encoding="utf-8"))
    assert worse_card["promotion"]["champion"]["primary"] == champion_scores.primary
    assert worse_card["heldout"]["primary"] == 0.60
    assert "not promoted" in (models_dir / worse["retrained"]["model_id"] / "card.md").read_text(encoding="utf-8")

    challenger_primary.append(champion_scores.primary + 0.02)  # better
    better = nightly(config)
    new_id = better["retrained"]["model_id"]
    assert better["retrained"]["promoted"] is True and f"promoted over {champion.model_id}" in better["retrained"]["reason"]
    assert current_model_id(models_dir) == new_id and better["model"] == new_id
    assert better["retrained"]["promotion"]["challenger"]["primary"] == champion_scores.primary + 0.02
    assert better["retrained"]["promotion"]["champion"]["primary"] == champion_scores.primary
    assert "Modelkeuze: promoted over" in (corrected_home / "reports" / "rapport.md").read_text(encoding="utf-8")

    store = open_store(f"sqlite:///{corrected_home / 'codeer.db'}")
    try:
        logged = [run["summary"] for run in store.list_runs("retrain")]
    finally:
        store.close()
    assert [entry["promoted"] for entry in logged] == [False, True]
    assert all(entry["promotion"]["champion_id"] == champion.model_id for entry in logged)
