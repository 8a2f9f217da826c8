"""The store on SQLite and PostgreSQL: idempotent ingest, superseding versions, annotations."""

from __future__ import annotations

from pathlib import Path

from pipeline.corpus.ingest import ingest_paths
from pipeline.records import Annotation, Coding
from pipeline.store.rows import now


def annotate_all(store, annotator: str = "tester") -> int:
    utterances = list(store.iter_utterances())
    added, _ = store.add_annotations(
        Annotation(u.utterance_id, "BQ.txt", "", u.start, u.end, u.text,
                   (Coding("tijd_evaluatie", "-", "practice"),), annotator, now(), "garvin2008")
        for u in utterances)
    return added


def test_store_reingest_is_idempotent(any_store, segmenter, interview_file: Path) -> None:
    first = ingest_paths([interview_file], any_store, segmenter)
    counts = {t: any_store.count_rows(t) for t in ("transcripts", "utterances")}
    second = ingest_paths([interview_file], any_store, segmenter)
    assert [r.status for r in first.results] == ["new"]
    assert [r.status for r in second.results] == ["unchanged"]
    assert {t: any_store.count_rows(t) for t in ("transcripts", "utterances")} == counts
    assert annotate_all(any_store) == counts["utterances"]
    assert annotate_all(any_store) == 0  # importing the same annotations again adds nothing


def test_store_changed_file_supersedes_and_keeps_annotations(any_store, segmenter, interview_file: Path) -> None:
    ingest_paths([interview_file], any_store, segmenter)
    n_before = annotate_all(any_store)
    old_texts = {u.text for u in any_store.iter_utterances()}
    interview_file.write_text(interview_file.read_text(encoding="utf-8").replace(
        "Die worden wel gewaardeerd.", "Die worden niet echt gewaardeerd."), encoding="utf-8")
    report = ingest_paths([interview_file], any_store, segmenter)
    assert [r.status for r in report.results] == ["changed"]
    active = any_store.list_transcripts()
    assert len(active) == 1 and len(any_store.list_transcripts(include_superseded=True)) == 2
    kept = {u.text for u, _, _, _ in any_store.iter_annotated()}
    new_texts = {u.text for u in any_store.iter_utterances()}
    assert kept == old_texts & new_texts
    assert len(kept) == n_before - 1
    # reverting the file reactivates the first version without duplicating it
    interview_file.write_text(interview_file.read_text(encoding="utf-8").replace("niet echt", "wel"), encoding="utf-8")
    assert [r.status for r in ingest_paths([interview_file], any_store, segmenter).results] == ["changed"]
    assert len(any_store.list_transcripts(include_superseded=True)) == 2


def test_store_failed_file_leaves_nothing_half_written(any_store, segmenter, interview_file: Path, tmp_path: Path) -> None:
    bad = tmp_path / "leeg.txt"
    bad.write_text("", encoding="utf-8")
    report = ingest_paths([interview_file, bad], any_store, segmenter)
    assert [r.status for r in report.results] == ["new", "failed"]
    assert any_store.count_rows("transcripts") == 1
