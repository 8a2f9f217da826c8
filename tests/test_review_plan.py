"""Tonight's review queue (issue 18): a budget, the items that can change a verdict first,
diverse batches, the effect in plain words, and no item of a superseded transcript."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipeline import review
from pipeline.codebook import load_codebook
from pipeline.records import Prediction, RatingEffect, ReviewItem, ReviewStatus

DOUBT = 0.51  # near the 0.5 threshold: every utterance is a review candidate


@pytest.fixture(scope="module")
def codebook():
    return load_codebook("garvin2008")


def _utterances(store):
    return sorted(store.iter_utterances(), key=lambda u: u.position)


def _queue_everything(store, model_id: str = "m1") -> list[str]:
    """Predict a doubtful tijd_evaluatie for every utterance and queue them; return the utterance ids."""
    utterances = _utterances(store)
    predictions = [Prediction(u.utterance_id, model_id, "tijd_evaluatie", DOUBT, True, "-", 0.9) for u in utterances]
    store.save_predictions(predictions)
    review.enqueue(store, predictions, {"tijd_evaluatie": 0.5}, model_id=model_id)
    return [u.utterance_id for u in utterances]


def _effects_by_position(store, by_position: dict[int, float]):
    """An effects function: the given effect per utterance position, 0.05 elsewhere."""
    position = {u.utterance_id: u.position for u in _utterances(store)}

    def effects(pairs):
        found = {}
        for utterance, codes in pairs:
            for code in codes:
                effect = by_position.get(position[utterance.utterance_id], 0.05)
                found[(utterance.utterance_id, code)] = RatingEffect(
                    utterance.utterance_id, utterance.municipality, code, "matig", 0.3, 0.05, 0.1,
                    "voldoende" if effect == 1.0 else None, effect)
        return found

    return effects


def test_review_plan_superseded_transcript_retires_its_items_in_the_same_transaction(
        sqlite_review_store, segmenter, review_interview_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.corpus.ingest import ingest_file

    store = sqlite_review_store
    old_ids = _queue_everything(store)
    review.add_user(store, "anna", "annotator", "geheim-wachtwoord")
    held = review.claim_next(store, "anna", 2)
    assert len(held) == 2

    review_interview_file.write_text(review_interview_file.read_text(encoding="utf-8").replace(
        "Koffie drinken we om tien uur.", "Koffie drinken we om half elf."), encoding="utf-8")
    assert ingest_file(review_interview_file, "BQ-review.txt", store, segmenter).status == "changed"
    old_items = [item for item in store.list_review_items() if item.utterance_id in old_ids]
    assert old_items and {item.status for item in old_items} == {ReviewStatus.RETIRED}  # claimed ones too
    notes = {d.note for d in store.list_review_decisions(limit=None) if d.action == "retire"}
    assert any("superseded" in note for note in notes)
    assert review.claim_next(store, "bob", 50) == []

    # a stale open item on an old utterance (as left by an older codeer) is never handed out either
    stale = ReviewItem(review.review_item_id(old_ids[0], "m2"), old_ids[0], "m2", ReviewStatus.PENDING, 1.0, (),
                       1.0, 1.0, 0, "2026-04-07T09:00:00+00:00")
    store.upsert_review_items([stale])
    assert review.claim_next(store, "bob", 50) == []
    assert review.claim_one(store, stale.item_id, "bob") is None
    assert all(item.item_id != stale.item_id for item, _ in store.open_review_items())

    # superseding and retiring are one transaction: when retiring fails, nothing is superseded
    active_before = store.active_version("BQ-review.txt")

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(store, "retire_transcript_review_items", broken)
    review_interview_file.write_text(review_interview_file.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    review_interview_file.write_text(review_interview_file.read_text(encoding="utf-8").replace(
        "om half elf", "om elf uur"), encoding="utf-8")
    with pytest.raises(RuntimeError):
        ingest_file(review_interview_file, "BQ-review.txt", store, segmenter)
    assert store.active_version("BQ-review.txt") == active_before


def test_review_plan_budget_effect_first_and_diverse_batches(sqlite_review_store) -> None:
    store = sqlite_review_store
    _queue_everything(store)
    # positions 0 and 2 are near-duplicates ("De werkdruk is heel erg hoog ..."); 0, 2, 4 can change a verdict
    plan = review.plan_review_queue(store, _effects_by_position(store, {0: 1.0, 2: 1.0, 4: 1.0, 3: 0.5}),
                                    budget=4, batch_size=2)
    assert plan.budget == 4 and plan.n_planned == 4 and plan.n_waiting == len(_utterances(store)) - 4
    items = {item.utterance_id: item for item in store.list_review_items()}
    position = {u.utterance_id: u.position for u in _utterances(store)}
    batch_of = {position[uid]: item.batch for uid, item in items.items() if item.status == ReviewStatus.PENDING}
    assert len(batch_of) == 4 and set(batch_of.values()) == {1, 2}
    assert {0, 2, 4} <= set(batch_of)  # every item that can change a verdict is handed out tonight
    assert batch_of[0] == 1 and batch_of[0] != batch_of[2]  # near-duplicates never share a batch
    waiting = [item for item in items.values() if item.status == ReviewStatus.WAITING]
    assert waiting and all(item.batch is None for item in waiting)
    assert plan.batches[0].n_verdicts_at_stake == 1 and "tijd_evaluatie in" in plan.batches[0].effect
    assert all(items[uid].effect for uid in items)  # every item says what it could do, in words
    assert items[_utterances(store)[0].utterance_id].effect.startswith("kan het oordeel over tijd_evaluatie")

    review.add_user(store, "anna", "annotator", "geheim-wachtwoord")
    claimed = review.claim_next(store, "anna", 10)
    assert len(claimed) == 4 and [item.batch for item in claimed] == [1, 1, 2, 2]  # waiting items are not handed out
    assert "kunnen een oordeel veranderen" in review.batch_effect(claimed[:2])

    # the next night: claimed items count against the budget
    again = review.plan_review_queue(store, _effects_by_position(store, {}), budget=5, batch_size=2)
    assert again.n_claimed == 4 and again.n_planned == 5
    assert review.progress(store, "anna").n_open == 5


def test_review_plan_default_budget_is_a_tenth_of_the_utterances() -> None:
    assert review.review_budget(1234) == 123 and review.review_budget(5) == 1 and review.review_budget(0) == 0
    assert review.review_budget(1234, 40) == 40


def test_review_plan_correction_effects_follow_the_cut_offs(codebook) -> None:
    from pipeline.rating import coded_fragments, correction_effects, load_rating_rules
    from pipeline.records import Role, Speaker, Utterance

    rules = load_rating_rules()

    def row(uid: str, respondent: str, role: str, direction: str, municipality: str) -> dict:
        return {"utterance_id": uid, "transcript_id": respondent, "municipality": municipality, "respondent": respondent,
                "role": role, "code": "analyse", "direction": direction, "facet": "practice", "weight": 1.0,
                "source": "human"}

    rows = [row("a1", "BA", "beleidsmedewerker", "+", "Aalten"), row("a2", "MA", "manager", "0", "Aalten")]
    rows += [row(f"w{k}", f"B{k}", "beleidsmedewerker", "+", "Winterswijk") for k in range(6)]
    fragments = coded_fragments(pd.DataFrame(rows), codebook, rules)

    def utterance(uid: str, respondent: str, role: Role, municipality: str) -> Utterance:
        return Utterance(uid, respondent, 1, 0, Speaker.RESPONDENT, 0, 8, "Een zin.", municipality, respondent, role)

    effects = correction_effects(fragments, [
        (utterance("a3", "MA", Role.MANAGER, "Aalten"), ["analyse", "cultuur"]),
        (utterance("w9", "B0", Role.BELEIDSMEDEWERKER, "Winterswijk"), ["analyse"])], codebook, rules)
    close, settled = effects[("a3", "analyse")], effects[("w9", "analyse")]
    assert ("a3", "cultuur") not in effects  # context codes are not rated on this scale
    assert close.effect == 1.0 and close.could_become is not None and close.rating != close.could_become
    assert settled.rating == "voldoende" and settled.could_become is None and settled.effect < 0.5
    assert "Aalten" in close.words() and "veranderen" in close.words()


def test_review_plan_demo_night_is_within_budget_and_starts_with_the_largest_effects(
        prefect_harness, small_demo_corpus: Path, tmp_path: Path) -> None:
    """Three demo interviews coded by the packaged model through the flow: tonight's queue is at
    most a tenth of the utterances, and its first batch holds the largest expected effects."""
    from flows.code_transcripts import code_transcripts
    from flows.config import RunConfig
    from pipeline.store import open_store

    config = RunConfig(folders=[small_demo_corpus], home=tmp_path / "home", fictional=True)
    summary = code_transcripts(config)
    queue = summary["review_queue"]
    store = open_store(config.url)
    try:
        n_utterances = store.count_active_utterances()
        items = store.list_review_items()
    finally:
        store.close()
    budget = n_utterances // 10
    open_now = [item for item in items if item.status in (ReviewStatus.PENDING, ReviewStatus.CLAIMED)]
    waiting = [item for item in items if item.status == ReviewStatus.WAITING]
    assert queue["budget"] == budget and queue["handed_out"] == len(open_now) <= budget
    assert len(waiting) > 0  # without the budget these would have been handed out too
    batches: dict[int, list[ReviewItem]] = {}
    for item in open_now:
        batches.setdefault(item.batch, []).append(item)
    first = batches[1]
    assert max(item.priority for item in items if item.status != ReviewStatus.RETIRED) == max(i.priority for i in first)
    mean = {number: sum(i.priority for i in batch) / len(batch) for number, batch in batches.items()}
    assert all(mean[1] >= value for value in mean.values())
    assert min(i.priority for i in first) >= max(i.priority for i in waiting)
    assert all(item.effect for item in open_now) and queue["first_batch"]


def test_review_plan_migration_0007_retires_items_left_on_superseded_transcripts(
        sqlite_review_store, segmenter, review_interview_file: Path) -> None:
    """Databases of an older codeer kept open items on superseded transcripts: the migration
    retires them (and adds the batch and effect columns)."""
    import sqlalchemy as sa
    from alembic import command
    from alembic.config import Config

    from pipeline.corpus.ingest import ingest_file
    from pipeline.store.database import MIGRATIONS

    store = sqlite_review_store
    old_ids = _queue_everything(store)
    review_interview_file.write_text(review_interview_file.read_text(encoding="utf-8") + "\nRespondent: Nog iets.\n",
                                     encoding="utf-8")
    assert ingest_file(review_interview_file, "BQ-review.txt", store, segmenter).status == "changed"
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0004")
        # as an older codeer left them: open although their transcript is superseded
        connection.execute(sa.text("UPDATE review_items SET status = 'pending'"))
        command.upgrade(config, "head")
    statuses = {item.utterance_id: item.status for item in store.list_review_items()}
    assert {statuses[uid] for uid in old_ids} == {ReviewStatus.RETIRED}
    assert all(item.batch is None and item.effect == "" for item in store.list_review_items())
