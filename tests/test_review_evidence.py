"""The library side of the evidence and annotator pages (issue 21): queue filters, hand coding,
fragments per code and municipality, codebook groups and the Dutch wording. On SQLite and,
where CODEER_TEST_PG is set, PostgreSQL."""

from __future__ import annotations

import pytest

from pipeline import review
from pipeline.codebook import load_codebook
from pipeline.errors import NotFoundError, ReviewInputError, UnknownCodeError
from pipeline.records import Annotation, Coding, Prediction, ReviewItem, ReviewStatus


@pytest.fixture()
def queued(review_store):
    """Utterance 0: analyse predicted; 1: nothing predicted, tijd_evaluatie most probable; the rest confident."""
    utterances = sorted(review_store.iter_utterances(), key=lambda u: u.position)
    predictions = []
    for u in utterances:
        if u.position == 0:
            predictions += [Prediction(u.utterance_id, "m1", "analyse", 0.51, True, "+", 0.5),
                            Prediction(u.utterance_id, "m1", "tijd_evaluatie", 0.30, False)]
        elif u.position == 1:
            predictions += [Prediction(u.utterance_id, "m1", "analyse", 0.20, False),
                            Prediction(u.utterance_id, "m1", "tijd_evaluatie", 0.35, False)]
        else:
            predictions += [Prediction(u.utterance_id, "m1", "analyse", 0.01, False),
                            Prediction(u.utterance_id, "m1", "tijd_evaluatie", 0.97, True, "-", 0.95)]
    review_store.save_predictions(predictions)
    review.enqueue(review_store, predictions, {"analyse": 0.5, "tijd_evaluatie": 0.5}, model_id="m1")
    return review_store, utterances


def test_code_filter_matches_predicted_or_most_probable_code(queued) -> None:
    store, utterances = queued
    by_code = {code: {i.utterance_id for i in store.list_review_items([ReviewStatus.PENDING], code=code)}
               for code in ("analyse", "tijd_evaluatie", "experimenteren")}
    assert by_code["analyse"] == {utterances[0].utterance_id}
    assert by_code["tijd_evaluatie"] == {utterances[1].utterance_id}
    assert by_code["experimenteren"] == set()
    assert store.list_review_items([ReviewStatus.PENDING], municipality="Elders") == []
    assert len(store.list_review_items([ReviewStatus.PENDING], municipality=utterances[0].municipality,
                                       respondent=utterances[0].respondent)) == 2


def test_claim_next_keeps_to_the_filter(queued) -> None:
    store, utterances = queued
    claimed = review.claim_next(store, "anna", 5, only=review.ReviewFilter(code="tijd_evaluatie"))
    assert [i.utterance_id for i in claimed] == [utterances[1].utterance_id]
    assert review.claim_next(store, "anna", 5, only=review.ReviewFilter(municipality="Elders")) == []
    assert review.ReviewFilter(municipality=" ", code="").active is False


def test_code_fragment_goes_through_the_review_path(queued) -> None:
    store, utterances = queued
    codebook = load_codebook()
    target = utterances[3]
    decision = review.code_fragment(store, target.utterance_id, "anna", Coding("experimenteren", "+", "practice"),
                                    codebook=codebook, span=(0, 5))
    assert decision.action == "correct" and "tekens 0-5" in decision.note
    review.code_fragment(store, target.utterance_id, "anna", Coding("experimenteren", "-"), codebook=codebook)
    assert store.human_labels([target.utterance_id])[target.utterance_id] == (Coding("experimenteren", "-"),)
    assert review.claim_next(store, "bram", 50) and all(
        i.model_id == "m1" for i in store.list_review_items([ReviewStatus.CLAIMED], claimed_by="bram"))
    with pytest.raises(NotFoundError):
        review.code_fragment(store, "nope", "anna", Coding("analyse"), codebook=codebook)
    with pytest.raises(ReviewInputError, match="outside utterance"):
        review.code_fragment(store, target.utterance_id, "anna", Coding("analyse"), codebook=codebook, span=(4, 4))
    with pytest.raises(UnknownCodeError):
        review.code_fragment(store, target.utterance_id, "anna", Coding("geen_code"), codebook=codebook)
    with pytest.raises(ReviewInputError, match="not a code a fragment can carry"):
        review.code_fragment(store, target.utterance_id, "anna", Coding("leiderschap"), codebook=codebook)


def test_code_fragments_prefer_the_human_word(queued) -> None:
    store, utterances = queued
    codebook = load_codebook()
    municipality = utterances[0].municipality
    seeded = utterances[2]
    store.add_annotations([Annotation(seeded.utterance_id, "BQ.txt", "h", seeded.start, seeded.end, seeded.text,
                                      (Coding("tijd_evaluatie", "+", "provision"),), "seed-coder", "2026-01-01",
                                      "garvin2008", origin="seed")])
    found = review.code_fragments(store, codebook, "tijd_evaluatie", municipality)
    sources = {f.utterance_id: (f.source, f.who, f.direction) for f in found}
    assert sources[seeded.utterance_id] == ("mens", "seed-coder", "+")
    assert sources[utterances[3].utterance_id] == ("model", "m1", "-")
    assert utterances[1].utterance_id not in sources  # most probable but not predicted: no evidence
    # a reviewer's "no code" overrules both the seed coder and the model
    review.code_fragment(store, seeded.utterance_id, "anna", Coding("analyse"), codebook=codebook)
    review.code_fragment(store, seeded.utterance_id, "anna", Coding("analyse"), codebook=codebook, remove=True)
    assert seeded.utterance_id not in {f.utterance_id for f in review.code_fragments(store, codebook, "tijd_evaluatie",
                                                                                       municipality)}
    with pytest.raises(UnknownCodeError):
        review.code_fragments(store, codebook, "geen_code", municipality)
    view = review.transcript_view(store, utterances[0].transcript_id)
    assert view.model_id == "m1" and [line.utterance for line in view.lines] == utterances
    with pytest.raises(NotFoundError):
        review.transcript_view(store, "nope")


def test_codebook_groups_codes_by_building_block() -> None:
    codebook = load_codebook()
    assert codebook.root("analyse").id == "concrete_leerprocessen"
    assert codebook.root("cultuur").id == codebook.root("institutionele_context").id
    assert codebook.root("leiderschap").id == "leiderschap"
    groups = codebook.grouped(["belang_van_leren", "analyse", "psychologische_veiligheid", "experimenteren"])
    assert [(root.id, ids) for root, ids in groups] == [
        ("ondersteunende_leeromgeving", ("psychologische_veiligheid",)),
        ("concrete_leerprocessen", ("analyse", "experimenteren")),
        ("leiderschap", ("belang_van_leren",))]


def test_reasons_and_progress_in_plain_dutch() -> None:
    item = ReviewItem("i", "u", "m", ReviewStatus.PENDING, 0.1, ("low_top_probability", "uncertain_direction"),
                      0.5, 0.1, 0, "")
    text = review.reasons_text(item)
    assert text.startswith("Het model twijfelt") and "positief, negatief of neutraal" in text
    assert "vrij vast" in text and "_" not in text and "0.1" not in text
    assert review.reason_text("something_new") == "something new"
    assert review.progress_text(12, 40) == "12 gedaan vandaag, 40 open"
    assert review.progress_text(3, 5, budget=40) == "3 van 40 gedaan vandaag (doel voor vannacht), 5 open"
