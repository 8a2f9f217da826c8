"""The review queue: idempotent enqueue, priority, diversity, retiring, claims, conflicts, decisions."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline import review
from pipeline.cli import cli
from pipeline.codebook import load_codebook
from pipeline.errors import ReviewConflictError, UnknownCodeError
from pipeline.records import Annotation, Coding, Prediction, ReviewStatus
from pipeline.review.labelstudio import export_label_studio, import_label_studio
from pipeline.review.priority import Reason
from pipeline.store.rows import now

T0 = datetime(2026, 4, 7, 9, 0, tzinfo=UTC)
THRESHOLDS = {"tijd_evaluatie": 0.5, "onderwijs_training": 0.4, "openheid_nieuwe_ideeen": 0.5, "experimenteren": 0.5}

# utterance position -> predictions (code, probability, direction, direction probability)
UNSURE = {
    0: [("tijd_evaluatie", 0.51, "-", 0.9)],   # near threshold
    1: [("tijd_evaluatie", 0.51, "-", 0.35)],  # near threshold and unsure direction
    2: [("tijd_evaluatie", 0.51, "-", 0.9)],   # near-duplicate of 0
    3: [("onderwijs_training", 0.42, "+", 0.9)],  # weak top code (not predicted)
    4: [("onderwijs_training", 0.95, "-", 0.95)],  # confident
    5: [("openheid_nieuwe_ideeen", 0.97, "+", 0.97)],  # confident
    6: [("experimenteren", 0.49, "+", 0.8)],   # near threshold, not predicted
}


@pytest.fixture(scope="module")
def codebook():
    return load_codebook("garvin2008")


def utterances_of(store):
    return sorted(store.iter_utterances(), key=lambda u: u.position)


def predict(store, model_id: str, spec: dict[int, list[tuple[str, float, str | None, float | None]]],
            thresholds: dict[str, float] = THRESHOLDS) -> list[Prediction]:
    """Save predictions of ``model_id``: ``spec`` per utterance position, a confident 'no code' elsewhere."""
    predictions = []
    for u in utterances_of(store):
        rows = spec.get(u.position, [("analyse", 0.02, None, None)])
        for code, probability, direction, direction_p in rows:
            predictions.append(Prediction(u.utterance_id, model_id, code, probability,
                                          probability >= thresholds.get(code, 0.5), direction, direction_p,
                                          "practice" if code == "onderwijs_training" else None))
        if all(code != "analyse" for code, *_ in rows):
            predictions.append(Prediction(u.utterance_id, model_id, "analyse", 0.01, False))
    store.save_predictions(predictions)
    return predictions


def item_of(store, position: int, model_id: str = "m1"):
    utterance = utterances_of(store)[position]
    return store.review_items_by_id([review.review_item_id(utterance.utterance_id, model_id)]).get(
        review.review_item_id(utterance.utterance_id, model_id))


@pytest.mark.parametrize(("rows", "human", "reasons"), [
    ([("tijd_evaluatie", 0.49, False, None, None)], None, {Reason.NEAR_THRESHOLD}),
    ([("tijd_evaluatie", 0.44, False, None, None)], None, {Reason.LOW_TOP_PROBABILITY}),
    ([("tijd_evaluatie", 0.75, True, "-", 0.35)], None, {Reason.UNCERTAIN_DIRECTION}),
    ([("analyse", 0.40, True, "+", 0.9)], None, {Reason.LOW_TOP_PROBABILITY}),  # threshold 0.3: not near it
    ([("tijd_evaluatie", 0.15, False, None, None)], None, set()),  # under the floor: read as "no code"
    ([("tijd_evaluatie", 0.97, True, "-", 0.97)], None, set()),
    ([("tijd_evaluatie", 0.02, False, None, None)], None, set()),
    ([("tijd_evaluatie", 0.97, True, "-", 0.97)], (Coding("analyse", "-"),), {Reason.DISAGREES_WITH_HUMAN}),
    ([("tijd_evaluatie", 0.97, True, "-", 0.97)], (Coding("tijd_evaluatie", "+"),), {Reason.DISAGREES_WITH_HUMAN}),
    ([("tijd_evaluatie", 0.52, True, "-", 0.4)], (Coding("tijd_evaluatie", "-"),), set()),
])
def test_review_reasons(rows, human, reasons) -> None:
    predictions = [Prediction("u1", "m", code, p, predicted, direction, direction_p)
                   for code, p, predicted, direction, direction_p in rows]
    result = review.assess_uncertainty(predictions, {"tijd_evaluatie": 0.5, "analyse": 0.3}, human)
    assert set(result.reasons) == reasons
    assert (result.score > 0) == bool(reasons)


def test_review_enqueue_is_idempotent(review_store) -> None:
    predictions = predict(review_store, "m1", UNSURE)
    added = review.enqueue(review_store, predictions, THRESHOLDS, model_id="m1", now=T0)
    assert added == 5  # positions 0, 1, 2, 3, 6
    items = review_store.list_review_items()
    assert {i.item_id for i in items} == {review.review_item_id(i.utterance_id, "m1") for i in items}
    again = review.enqueue(review_store, predictions, THRESHOLDS, model_id="m1", now=T0 + timedelta(days=1))
    assert again == 0
    assert review_store.count_rows("review_items") == 5
    assert [i.priority for i in review_store.list_review_items()] == [i.priority for i in items]


def test_review_priority_is_uncertainty_times_impact(review_store) -> None:
    spec = {0: [("tijd_evaluatie", 0.42, "-", 0.9)], 1: [("tijd_evaluatie", 0.42, "-", 0.9)],
            3: [("onderwijs_training", 0.42, "+", 0.9)], 6: [("experimenteren", 0.42, "+", 0.9)]}
    predictions = predict(review_store, "m1", spec)
    weights = {("Testerveen", "experimenteren"): 1.0, ("Testerveen", "onderwijs_training"): 0.5,
               ("Testerveen", "tijd_evaluatie"): 0.1}
    review.enqueue(review_store, predictions, THRESHOLDS, model_id="m1", rating_impact=weights, now=T0,
                   batch_diversity=False)
    order = [review_store.utterances_by_id([i.utterance_id])[i.utterance_id].position
             for i in review_store.list_review_items()]
    assert order[:2] == [6, 3]
    first = review_store.list_review_items()[0]
    assert first.priority == pytest.approx(first.uncertainty * 1.0)


def test_review_default_impact_prefers_codes_with_little_evidence(review_store) -> None:
    # lots of one-sided human evidence for tijd_evaluatie in Testerveen: one correction cannot flip it
    utterances = utterances_of(review_store)
    review_store.add_annotations(
        Annotation(u.utterance_id, "BQ-review.txt", "", u.start, u.end, u.text, (Coding("tijd_evaluatie", "-"),),
                   f"seed{n}", now(), "garvin2008") for n, u in enumerate(utterances[5:9]) for _ in range(1))
    spec = {0: [("tijd_evaluatie", 0.42, "-", 0.9)], 3: [("onderwijs_training", 0.42, "+", 0.9)],
            **{p: [("tijd_evaluatie", 0.97, "-", 0.97)] for p in range(5, 9)}}  # agrees with the humans
    low = {**THRESHOLDS, "tijd_evaluatie": 0.4}  # both weak codes are predicted
    predictions = predict(review_store, "m1", spec, low)
    review.enqueue(review_store, predictions, low, model_id="m1", now=T0)
    first, second = review_store.list_review_items()
    assert review_store.utterances_by_id([first.utterance_id])[first.utterance_id].position == 3
    assert first.uncertainty == pytest.approx(second.uncertainty)
    # evidence counts the item's own predicted code: 1 fragment vs 4 human + 1 predicted
    assert first.impact == pytest.approx(1 / (1 + 1)) and second.impact == pytest.approx(1 / (1 + 5), abs=1e-6)


def test_review_near_duplicates_do_not_fill_a_batch(review_store) -> None:
    spec = {0: [("tijd_evaluatie", 0.50, "-", 0.9)], 2: [("tijd_evaluatie", 0.50, "-", 0.9)],
            1: [("tijd_evaluatie", 0.51, "-", 0.9)], 3: [("onderwijs_training", 0.41, "+", 0.9)]}
    predictions = predict(review_store, "m1", spec)
    review.enqueue(review_store, predictions, THRESHOLDS, model_id="m1", rating_impact=lambda m, c: 1.0, now=T0)
    duplicate = item_of(review_store, 2)
    assert Reason.NEAR_DUPLICATE in duplicate.reasons
    batch = review.claim_next(review_store, "anna", 3, now=T0)
    positions = {review_store.utterances_by_id([i.utterance_id])[i.utterance_id].position for i in batch}
    assert positions == {0, 1, 3}
    # without diversity the two identical-looking sentences lead the queue together
    review_store.release_review_claims("anna")
    other = predict(review_store, "m2", spec)
    review.enqueue(review_store, other, THRESHOLDS, model_id="m2", rating_impact=lambda m, c: 1.0, now=T0,
                   batch_diversity=False)
    batch = review.claim_next(review_store, "anna", 2, now=T0, diversity=False)
    assert {review_store.utterances_by_id([i.utterance_id])[i.utterance_id].position for i in batch} == {0, 2}


def test_review_newer_model_retires_items(review_store, codebook) -> None:
    review.enqueue(review_store, predict(review_store, "m1", UNSURE), THRESHOLDS, model_id="m1", now=T0)
    decided = item_of(review_store, 3)
    review.accept(review_store, decided.item_id, "anna", version=decided.version, codebook=codebook, now=T0)
    newer = dict(UNSURE)
    newer[0] = [("tijd_evaluatie", 0.97, "-", 0.97)]  # m2 is sure about 0
    newer[1] = [("tijd_evaluatie", 0.98, "-", 0.98)]  # and 1
    review.enqueue(review_store, predict(review_store, "m2", newer), THRESHOLDS, model_id="m2", now=T0)
    assert item_of(review_store, 0).status == ReviewStatus.RETIRED
    assert item_of(review_store, 1).status == ReviewStatus.RETIRED
    assert item_of(review_store, 2).status == ReviewStatus.RETIRED  # replaced by m2's own item
    assert item_of(review_store, 2, "m2").status == ReviewStatus.PENDING
    assert item_of(review_store, 3).status == ReviewStatus.ACCEPTED  # decisions are never retired
    assert item_of(review_store, 3, "m2") is None  # m2 agrees with anna's decision: nothing to ask
    assert review_store.count_rows("review_items") == 5 + 2  # retired, not deleted
    notes = {d.note for d in review_store.list_review_decisions() if d.action == "retire"}
    assert notes == {"model m2 is confident", "replaced by the item of model m2"}


def test_review_claims_expire(review_store, codebook) -> None:
    review.enqueue(review_store, predict(review_store, "m1", {1: UNSURE[1]}), THRESHOLDS, model_id="m1", now=T0)
    [held] = review.claim_next(review_store, "anna", 1, claim_minutes=30, now=T0)
    assert held.claimed_by == "anna"
    assert review.claim_next(review_store, "bram", 1, now=T0 + timedelta(minutes=10)) == []
    with pytest.raises(ReviewConflictError, match="claimed by anna"):
        review.skip(review_store, held.item_id, "bram", version=held.version, now=T0 + timedelta(minutes=10))
    [taken] = review.claim_next(review_store, "bram", 1, now=T0 + timedelta(minutes=31))
    assert taken.item_id == held.item_id and taken.claimed_by == "bram" and taken.version > held.version
    with pytest.raises(ReviewConflictError):
        review.accept(review_store, held.item_id, "anna", version=held.version, codebook=codebook,
                      now=T0 + timedelta(minutes=32))
    review.accept(review_store, taken.item_id, "bram", version=taken.version, codebook=codebook,
                  now=T0 + timedelta(minutes=32))


def test_review_two_annotators_one_wins(review_store, codebook) -> None:
    review.enqueue(review_store, predict(review_store, "m1", UNSURE), THRESHOLDS, model_id="m1", now=T0)
    item = item_of(review_store, 1)
    barrier = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def decide(user: str, codings: tuple[Coding, ...]) -> None:
        barrier.wait()
        try:
            outcomes[user] = review.correct(review_store, item.item_id, user, codings, version=item.version,
                                            codebook=codebook)
        except ReviewConflictError as err:
            outcomes[user] = err

    threads = [threading.Thread(target=decide, args=("anna", (Coding("tijd_evaluatie", "-"),))),
               threading.Thread(target=decide, args=("bram", (Coding("analyse", "+"),)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    conflicts = [user for user, outcome in outcomes.items() if isinstance(outcome, ReviewConflictError)]
    assert len(conflicts) == 1
    loser = conflicts[0]
    winner = "bram" if loser == "anna" else "anna"
    assert f"already corrected by {winner}" in str(outcomes[loser])
    annotators = {annotator for _, _, annotator, _ in review_store.iter_annotated(["review"])}
    assert annotators == {winner}
    decisions = [d for d in review_store.list_review_decisions() if d.item_id == item.item_id]
    assert [(d.action, d.user) for d in decisions] == [("correct", winner)]


def test_review_stale_decision_is_refused_with_a_clear_message(review_store, codebook) -> None:
    review.enqueue(review_store, predict(review_store, "m1", UNSURE), THRESHOLDS, model_id="m1", now=T0)
    item = item_of(review_store, 0)
    review.accept(review_store, item.item_id, "anna", version=item.version, codebook=codebook, now=T0)
    with pytest.raises(ReviewConflictError) as caught:
        review.correct(review_store, item.item_id, "bram", [Coding("analyse", "+")], version=item.version,
                       codebook=codebook)
    message = str(caught.value)
    assert "already accepted by anna" in message and "not saved" in message
    assert {a for _, _, a, _ in review_store.iter_annotated(["review"])} == {"anna"}


def test_review_decisions_become_annotations(review_store, codebook) -> None:
    review.enqueue(review_store, predict(review_store, "m1", UNSURE), THRESHOLDS, model_id="m1", now=T0)
    accepted, corrected, skipped, emptied = (item_of(review_store, p) for p in (3, 1, 6, 0))
    review.accept(review_store, accepted.item_id, "anna", version=accepted.version, codebook=codebook, now=T0)
    review.correct(review_store, corrected.item_id, "anna",
                   [Coding("tijd_evaluatie", "-", "practice"), Coding("analyse", "0")], version=corrected.version,
                   codebook=codebook, now=T0)
    review.skip(review_store, skipped.item_id, "anna", version=skipped.version, now=T0)
    review.correct(review_store, emptied.item_id, "anna", [], version=emptied.version, codebook=codebook, now=T0)
    stored = {u.position: (codings, annotator) for u, codings, annotator, _ in review_store.iter_annotated(["review"])}
    assert stored == {
        3: ((Coding("onderwijs_training", "+", "practice"),), "anna"),
        1: ((Coding("tijd_evaluatie", "-", "practice"), Coding("analyse", "0")), "anna"),
    }
    statuses = {p: item_of(review_store, p).status for p in (3, 1, 6, 0)}
    assert statuses == {3: ReviewStatus.ACCEPTED, 1: ReviewStatus.CORRECTED, 6: ReviewStatus.SKIPPED,
                        0: ReviewStatus.CORRECTED}
    audit = review_store.list_review_decisions()
    assert [(d.action, d.user) for d in reversed(audit)] == [
        ("accept", "anna"), ("correct", "anna"), ("skip", "anna"), ("correct", "anna")]
    assert all(d.at == "2026-04-07T09:00:00+00:00" for d in audit)
    # training sees every standing decision, the explicit "no code" included
    for_training = {a.utterance_id: a for a in review.review_annotations(review_store)}
    assert {a.origin for a in for_training.values()} == {"review"}
    assert for_training[emptied.utterance_id].codings == ()
    assert for_training[accepted.utterance_id].annotator == "anna"
    assert review.progress(review_store, "anna", now=T0).n_done == 4


def test_review_undo_restores_the_previous_state(review_store, codebook) -> None:
    review.enqueue(review_store, predict(review_store, "m1", UNSURE), THRESHOLDS, model_id="m1", now=T0)
    item = item_of(review_store, 1)
    first = review.correct(review_store, item.item_id, "anna", [Coding("analyse", "+")], version=item.version,
                           codebook=codebook)
    undone = review.undo_last(review_store, "anna")
    assert undone is not None and undone.item_id == item.item_id and undone.action == "undo"
    again = item_of(review_store, 1)
    assert again.status == ReviewStatus.CLAIMED and again.claimed_by == "anna" and again.version > first.version_after
    assert list(review_store.iter_annotated(["review"])) == []
    assert review.undo_last(review_store, "anna") is None
    review.accept(review_store, item.item_id, "anna", version=again.version, codebook=codebook)
    assert [c.code for _, codings, _, _ in review_store.iter_annotated(["review"]) for c in codings] == ["tijd_evaluatie"]


def test_review_unknown_code_writes_nothing(review_store, codebook) -> None:
    review.enqueue(review_store, predict(review_store, "m1", UNSURE), THRESHOLDS, model_id="m1", now=T0)
    item = item_of(review_store, 1)
    with pytest.raises(UnknownCodeError, match="werkplezier"):
        review.correct(review_store, item.item_id, "anna", [Coding("werkplezier", "+")], version=item.version,
                       codebook=codebook)
    assert item_of(review_store, 1).status == ReviewStatus.PENDING
    assert review_store.list_review_decisions() == []


def test_review_export_csv_and_label_studio_round_trip(sqlite_review_store, codebook, tmp_path: Path) -> None:
    store = sqlite_review_store
    review.enqueue(store, predict(store, "m1", UNSURE), THRESHOLDS, model_id="m1", now=T0)
    done = item_of(store, 3)
    review.accept(store, done.item_id, "anna", version=done.version, codebook=codebook)
    assert review.export_review_csv(store, tmp_path / "queue.csv") == 5
    import csv

    rows = {r["item_id"]: r for r in csv.DictReader(open(tmp_path / "queue.csv", encoding="utf-8"))}
    assert rows[done.item_id]["status"] == "accepted" and rows[done.item_id]["decided_by"] == "anna"
    assert rows[done.item_id]["decision"] == "onderwijs_training+/practice"

    assert export_label_studio(store, tmp_path / "tasks.json", codebook) == 4
    tasks = json.loads((tmp_path / "tasks.json").read_text(encoding="utf-8"))
    assert "<Taxonomy" in (tmp_path / "tasks.label_config.xml").read_text(encoding="utf-8")
    by_item = {t["data"]["item_id"]: t for t in tasks}
    near = item_of(store, 1)
    assert by_item[near.item_id]["predictions"][0]["result"][0]["value"] == {"taxonomy": [["tijd_evaluatie", "-"]]}
    # annotate in "Label Studio": keep one, change one, cancel one
    keep, change, cancel = item_of(store, 0), near, item_of(store, 6)
    by_item[keep.item_id]["annotations"] = [{"id": 1, "completed_by": {"email": "lisa@example.org"},
                                             "result": by_item[keep.item_id]["predictions"][0]["result"]}]
    by_item[change.item_id]["annotations"] = [{"id": 2, "completed_by": 7, "result": [
        {"from_name": "codes", "to_name": "text", "type": "taxonomy",
         "value": {"taxonomy": [["tijd_evaluatie", "+"], ["analyse"]]}}]}]
    by_item[cancel.item_id]["annotations"] = [{"id": 3, "was_cancelled": True, "result": []}]
    exported = tmp_path / "export.json"
    exported.write_text(json.dumps(list(by_item.values())), encoding="utf-8")
    report = import_label_studio(store, exported, codebook)
    assert (report.n_accepted, report.n_corrected, report.n_skipped, report.problems) == (1, 1, 1, ())
    labels = {u.position: (codings, annotator) for u, codings, annotator, _ in store.iter_annotated(["review"])}
    assert labels[0] == ((Coding("tijd_evaluatie", "-"),), "label-studio:lisa@example.org")
    assert labels[1] == ((Coding("tijd_evaluatie", "+"), Coding("analyse", "0")), "label-studio:7")
    assert item_of(store, 6).status == ReviewStatus.SKIPPED
    again = import_label_studio(store, exported, codebook)
    assert len(again.problems) == 3 and all("already" in p for p in again.problems)


def test_review_cli_users_and_terminal(sqlite_review_store, tmp_path: Path) -> None:
    store = sqlite_review_store
    review.enqueue(store, predict(store, "m1", UNSURE), THRESHOLDS, model_id="m1", now=T0)
    url = store.url
    runner = CliRunner()
    secret = tmp_path / "pw.txt"
    secret.write_text("lang-genoeg-wachtwoord\n", encoding="utf-8")

    def run(*args: str, **kwargs):
        return runner.invoke(cli, ["--db", url, *args], catch_exceptions=False, **kwargs)

    assert "user 'anna' added (annotator)" in run("users", "add", "anna", "--password-file", str(secret)).output
    duplicate = run("users", "add", "anna", "--password-file", str(secret))
    assert duplicate.exit_code == 1 and "already exists" in duplicate.output
    assert "anna" in run("users", "list").output
    unknown = run("review", "--user", "nobody")
    assert unknown.exit_code == 1 and "codeer users add nobody" in unknown.output
    # accept the first item, correct the second to "analyse -", skip the third, then quit
    result = run("review", "--user", "anna", "--batch", "3", input="a\nc\nanalyse-\ns\nq\n")
    assert result.exit_code == 0, result.output
    assert "3 decision(s) recorded" in result.output and "of 5 today" in result.output
    actions = [(d.action, d.user) for d in reversed(store.list_review_decisions())]
    assert actions == [("accept", "anna"), ("correct", "anna"), ("skip", "anna")]
    assert any(codings == (Coding("analyse", "-"),) for _, codings, _, _ in store.iter_annotated(["review"]))
    assert store.list_review_items([ReviewStatus.CLAIMED]) == []  # claims given back on quit
    exported = run("review", "export", "--format", "csv", str(tmp_path / "q.csv"))
    assert "5 review item(s)" in exported.output


def test_review_a_human_label_recheck_ranks_below_an_uncertain_prediction() -> None:
    # ratings use the human label, so the model's disagreement matters less than an open question
    confident_but_disagreeing = review.assess_uncertainty(
        [Prediction("u1", "m", "tijd_evaluatie", 0.97, True, "-", 0.97)], {"tijd_evaluatie": 0.5},
        (Coding("analyse", "-"),))
    unsure = review.assess_uncertainty([Prediction("u2", "m", "tijd_evaluatie", 0.42, False, "-", 0.9)],
                                       {"tijd_evaluatie": 0.5}, None)
    assert 0 < confident_but_disagreeing.score < unsure.score


def test_review_answer_key_round_answers_the_top_items_without_writing(review_store, codebook) -> None:
    from pipeline.coding.training import answer_key_round

    review.enqueue(review_store, predict(review_store, "m1", UNSURE), THRESHOLDS, model_id="m1", now=T0)
    top = review_store.list_review_items(["pending"], limit=3)
    known = [Annotation(u.utterance_id, "key.jsonl", "h", u.start, u.end, u.text, (Coding("analyse", "-"),), "coder",
                        "2026-01-01T00:00:00+00:00", codebook.version, origin="seed")
             for u in utterances_of(review_store) if u.utterance_id != top[0].utterance_id]
    answered, missing = answer_key_round(review_store, known, 3)
    assert missing == 1
    assert [a.utterance_id for a in answered] == [item.utterance_id for item in top[1:]]
    assert {(a.origin, a.annotator) for a in answered} == {("review", "answer-key")}
    assert review_store.list_review_items(["pending"], limit=3) == top  # nothing decided
