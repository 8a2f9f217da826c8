"""The benchmark (issue 8): the load corpus, the incremental and streaming paths it relies on,
and a smoke run at a tiny size. No timing is asserted anywhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.make_load import make_corpus, municipality_names, question_variant, respondent_suffix, sentence_variant
from pipeline.corpus.ingest import ingest_paths
from pipeline.corpus.segment import Segmenter
from pipeline.records import Prediction
from pipeline.resources import seed_dir

DEMO_NAMES = {"Eschveld", "Hulsterlo", "Kerkeloo", "Lemmerbroek", "Ravenhorst", "Sonnevelde", "Vennebroek", "Zandeloo"}


def _files(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): p.read_text(encoding="utf-8") for p in sorted(folder.rglob("*")) if p.is_file()}


def test_make_load_is_deterministic_by_seed(tmp_path: Path, segmenter: Segmenter) -> None:
    first = make_corpus(2, tmp_path / "a", seed=3, segmenter=segmenter, utterances_per_interview=15)
    make_corpus(2, tmp_path / "b", seed=3, segmenter=segmenter, utterances_per_interview=15)
    make_corpus(2, tmp_path / "c", seed=4, segmenter=segmenter, utterances_per_interview=15)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    assert _files(tmp_path / "a") != _files(tmp_path / "c")
    assert first.n_interviews == 4 and first.n_sentences == 60
    assert len(set(first.municipalities)) == 2 and not set(first.municipalities) & DEMO_NAMES


def test_make_load_writes_ingestable_transcripts_with_metadata(tmp_path: Path, segmenter: Segmenter,
                                                               any_store) -> None:  # type: ignore[no-untyped-def]
    corpus = make_corpus(2, tmp_path / "load", seed=1, segmenter=segmenter, utterances_per_interview=12)
    report = ingest_paths([corpus.out_dir], any_store, segmenter, metadata_file=corpus.metadata_file)
    assert not report.failed and report.count("new") == 4
    stored = {(t.municipality, t.respondent, t.role) for t in any_store.list_transcripts()}
    assert stored == {(corpus.municipalities[0], "BAA", "beleidsmedewerker"), (corpus.municipalities[0], "MAA", "manager"),
                      (corpus.municipalities[1], "BAB", "beleidsmedewerker"), (corpus.municipalities[1], "MAB", "manager")}
    utterances = list(any_store.iter_utterances())
    assert len(utterances) >= 4 * 12 - 4  # noise like "(lacht)" may fold into a neighbour
    assert all(u.question for u in utterances)
    text = "\n".join(_files(corpus.out_dir).values())
    assert "fictief" in text and not any(name in text for name in DEMO_NAMES)


def test_make_load_refuses_a_folder_with_other_files(tmp_path: Path, segmenter: Segmenter) -> None:
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(FileExistsError, match="not empty"):
        make_corpus(1, tmp_path, segmenter=segmenter, utterances_per_interview=5)


@pytest.mark.parametrize("variant", [sentence_variant, question_variant])
def test_variants_stay_distinct_far_past_50x(variant) -> None:  # type: ignore[no-untyped-def]
    texts = [variant("Wij evalueren elk project na afloop.", k) for k in range(400)]
    assert len(set(texts)) == 400
    assert texts[0] == "Wij evalueren elk project na afloop."


def test_names_and_codes_are_unique_at_the_scale_of_the_netherlands() -> None:
    names = municipality_names(1000)
    assert len(set(names)) == 1000
    codes = [respondent_suffix(i) for i in range(1000)]
    assert len(set(codes)) == 1000 and codes[:2] == ["AA", "AB"]


def test_ingest_skips_segmenting_unchanged_files(tmp_path: Path, segmenter: Segmenter, any_store,  # type: ignore[no-untyped-def]
                                                 interview_file: Path) -> None:
    calls = []

    class CountingNlp:
        def pipe(self, texts):  # type: ignore[no-untyped-def]
            calls.append(1)
            return segmenter.nlp.pipe(texts)  # type: ignore[attr-defined]

    counting = Segmenter(CountingNlp(), segmenter.name, segmenter.window)
    first = ingest_paths([interview_file], any_store, counting)
    second = ingest_paths([interview_file], any_store, counting)
    assert [r.status for r in first.results] == ["new"] and [r.status for r in second.results] == ["unchanged"]
    assert len(calls) == 1
    assert second.results[0].n_utterances == first.results[0].n_utterances > 0
    assert second.results[0].transcript_id == first.results[0].transcript_id


def test_unpredicted_utterances_are_streamed_in_order_without_the_done_ones(tmp_path: Path, segmenter: Segmenter,
                                                                           any_store, interview_file: Path) -> None:  # type: ignore[no-untyped-def]
    ingest_paths([interview_file], any_store, segmenter)
    everything = list(any_store.iter_utterances())
    any_store.save_predictions([Prediction(everything[0].utterance_id, "m1", "analyse", 0.9, True, "+", 0.8, None)])
    pending = list(any_store.iter_pending_utterances("m1"))
    assert [u.utterance_id for u in pending] == [u.utterance_id for u in everything[1:]]
    assert [u.utterance_id for u in any_store.iter_pending_utterances("other")] == [u.utterance_id for u in everything]
    # a new version of the file supersedes the old one: only its utterances are pending
    interview_file.write_text(interview_file.read_text(encoding="utf-8") + "\nRespondent: Nog één ding.\n", encoding="utf-8")
    ingest_paths([interview_file], any_store, segmenter)
    active = {u.utterance_id for u in any_store.iter_utterances()}
    assert {u.utterance_id for u in any_store.iter_pending_utterances("m1")} <= active


def test_save_predictions_replaces_an_utterance_s_predictions_of_one_model(tmp_path: Path, segmenter: Segmenter,
                                                                          any_store, interview_file: Path) -> None:  # type: ignore[no-untyped-def]
    ingest_paths([interview_file], any_store, segmenter)
    first, second = list(any_store.iter_utterances())[:2]
    any_store.save_predictions([Prediction(first.utterance_id, "m1", code, 0.2, False, None, None, None)
                                  for code in ("analyse", "experimenteren")]
                                 + [Prediction(second.utterance_id, "m2", "analyse", 0.7, True, "-", 0.6, None)])
    any_store.save_predictions([Prediction(first.utterance_id, "m1", "analyse", 0.9, True, "+", 0.8, None)])
    stored = any_store.predictions_by_utterance("m1", [first.utterance_id])[first.utterance_id]
    assert [(p.code, p.probability) for p in stored] == [("analyse", 0.9)]
    assert any_store.predictions_by_utterance("m2", [second.utterance_id])[second.utterance_id][0].probability == 0.7


def test_bench_smoke_run_prints_the_table_and_writes_the_json(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from bench.run import main

    seed = seed_dir()
    out = tmp_path / "results" / "latest.json"
    assert main(["--municipalities", "1", "--utterances-per-interview", "8", "--encoder", "use", "--train-splits", "2",
                 "--annotations", *(str(seed / f"{name}.jsonl") for name in ("BE", "MK", "RL")),
                 "--no-train-cache", "--out", str(out)]) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    for key in ("n_utterances", "raw_encode_s", "pipeline_cold_s", "pipeline_warm_s", "overhead_ratio", "warm_ratio",
                "stages", "peak_rss_mb", "utterances_per_s", "machine", "git_commit"):
        assert key in report, key
    assert {"cpu_count", "torch_threads", "device"} <= set(report["machine"])
    assert {"ingest", "segment", "embed", "classify", "rate"} <= set(report["stages"])
    scale = report["scales"][0]
    assert report["n_utterances"] == scale["n_utterances"] >= 12
    assert scale["counts"]["utterances_classified"] == report["n_utterances"]
    # the warm re-run finds every file unchanged and nothing left to classify or encode
    assert scale["warm_counts"]["transcripts_unchanged"] == 2 and scale["warm_counts"]["transcripts_new"] == 0
    assert scale["warm_counts"]["utterances_classified"] == 0 and scale["warm_counts"]["texts_encoded"] == 0
    # the floor encodes what the pipeline encoded: its unique texts and questions
    assert scale["n_texts_encoded_raw"] == scale["n_texts_encoded_pipeline"] > report["n_utterances"]
    assert scale["counts"]["texts_encoded"] == scale["n_texts_encoded_pipeline"]
    printed = capsys.readouterr().out
    assert "overhead" in printed and "warm/cold" in printed and str(out) in printed


def test_bench_separate_floor_encodes_the_same_texts_as_the_pipeline(tmp_path: Path) -> None:
    from bench.run import main

    seed = seed_dir()
    out = tmp_path / "latest.json"
    assert main(["--municipalities", "1", "--utterances-per-interview", "6", "--encoder", "hash", "--floor", "separate",
                 "--annotations", *(str(seed / f"{name}.jsonl") for name in ("BE", "MK", "RL")),
                 "--no-train-cache", "--out", str(out)]) == 0
    scale = json.loads(out.read_text(encoding="utf-8"))["scales"][0]
    assert scale["floor_method"] == "separate" and scale["encoder_id"].startswith("bench-hash")
    assert scale["n_texts_encoded_raw"] == scale["n_texts_encoded_pipeline"] == scale["counts"]["texts_encoded"]
    assert scale["n_texts_encoded_pipeline"] > scale["n_utterances"]


def test_evidence_counts_of_some_municipalities_are_those_of_all_restricted(tmp_path: Path, segmenter: Segmenter,
                                                                           any_store) -> None:  # type: ignore[no-untyped-def]
    from pipeline.records import Annotation, Coding
    from pipeline.store.rows import now

    corpus = make_corpus(3, tmp_path / "load", seed=2, segmenter=segmenter, utterances_per_interview=6)
    ingest_paths([corpus.out_dir], any_store, segmenter, metadata_file=corpus.metadata_file)
    utterances = list(any_store.iter_utterances())
    any_store.add_annotations(
        Annotation(u.utterance_id, u.transcript_id, "", u.start, u.end, u.text,
                   (Coding("tijd_evaluatie", "+-"[i % 2], "practice"),), "tester", now(), "garvin2008")
        for i, u in enumerate(utterances))
    everything = any_store.evidence_counts()
    assert {m for m, _ in everything} == set(corpus.municipalities)
    some = corpus.municipalities[:2]
    assert any_store.evidence_counts(some) == {key: n for key, n in everything.items() if key[0] in some}
    assert any_store.evidence_counts([]) == {}


class _Counting:
    """The benchmark's hash encoder, counting the texts it is asked to encode."""

    supports_cuda = False

    def __init__(self, dim: int) -> None:
        from bench.run import HashEncoder

        self.inner = HashEncoder(dim)
        self.encoder_id, self.dim, self.n_texts = self.inner.encoder_id, dim, 0

    def encode(self, texts):  # type: ignore[no-untyped-def]
        self.n_texts += len(texts)
        return self.inner.encode(texts)


@pytest.mark.parametrize("concat", [False, True])
def test_featurize_counts_the_texts_actually_encoded(tmp_path: Path, concat: bool) -> None:
    from pipeline.coding.classify import featurize
    from pipeline.coding.embed import ConcatEncoder
    from pipeline.coding.embedding_cache import EmbeddingCache

    texts = ["Wij leren van elkaar.", "De werkdruk is hoog.", "Wij leren van elkaar.", "Wij leren van elkaar."]
    questions = ["Hoe leert u?", "Hoe leert u?", "Hoe leert u?", "De werkdruk is hoog."]
    parts = (_Counting(8), _Counting(16)) if concat else (_Counting(8),)
    encoder = ConcatEncoder(parts) if concat else parts[0]
    cache = EmbeddingCache(tmp_path / "cache.sqlite")
    _, n_encoded, n_hits = featurize(texts, encoder, questions=questions, cache=cache)
    # two distinct texts, then one new question (the other question is a cached text)
    assert n_encoded == 3 == parts[0].n_texts and n_hits == 1
    assert all(part.n_texts == 3 for part in parts)
    _, n_encoded, n_hits = featurize(texts, encoder, questions=questions, cache=cache)
    assert n_encoded == 0 and n_hits == 8
    # without a cache a question equal to a text is encoded again: it counts again
    _, n_encoded, _ = featurize(texts, _Counting(8), questions=questions)
    assert n_encoded == 4


def test_pending_utterances_come_in_short_reads_that_let_the_wal_checkpoint(segmenter: Segmenter, fresh_store,  # type: ignore[no-untyped-def]
                                                                           tmp_path: Path) -> None:
    import sqlite3

    corpus = make_corpus(2, tmp_path / "load", seed=5, segmenter=segmenter, utterances_per_interview=5)
    ingest_paths([corpus.out_dir], fresh_store, segmenter, metadata_file=corpus.metadata_file)
    everything = [u.utterance_id for u in fresh_store.iter_pending_utterances("m1")]
    assert len(everything) == fresh_store.count_rows("utterances") > 12
    assert [u.utterance_id for u in fresh_store.iter_pending_utterances("m1", page_size=3)] == everything
    # store predictions while streaming, as classify does: nothing is skipped or repeated,
    # and between pages no read holds the WAL (a full checkpoint succeeds)
    database = fresh_store.engine.url.database
    seen = []
    for utterance in fresh_store.iter_pending_utterances("m1", page_size=3):
        seen.append(utterance.utterance_id)
        fresh_store.save_predictions([Prediction(utterance.utterance_id, "m1", "analyse", 0.1, False)])
        if len(seen) % 3 == 0:
            with sqlite3.connect(database, timeout=0) as connection:
                busy, _, _ = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            assert busy == 0
    assert seen == everything
    assert list(fresh_store.iter_pending_utterances("m1", page_size=3)) == []


def test_rating_the_store_a_few_municipalities_at_a_time_gives_the_ratings_of_the_whole_table(
        tmp_path: Path, segmenter: Segmenter, fresh_store) -> None:  # type: ignore[no-untyped-def]
    import random

    from pipeline.codebook import load_codebook
    from pipeline.rating.rules import load_rating_rules
    from pipeline.records import Annotation, Coding
    from pipeline.report.jobs import rate_codings, rate_store
    from pipeline.store.rows import now

    codebook = load_codebook("garvin2008")
    corpus = make_corpus(3, tmp_path / "load", seed=7, segmenter=segmenter, utterances_per_interview=12)
    ingest_paths([corpus.out_dir], fresh_store, segmenter, metadata_file=corpus.metadata_file)
    utterances = list(fresh_store.iter_utterances())
    rng = random.Random(0)
    codes = [*codebook.incentives, *load_rating_rules().context.codes]
    predictions = []
    for u in utterances:
        for code in rng.sample(codes, 3):
            p = rng.random()
            predictions.append(Prediction(u.utterance_id, "m1", code, p, p >= 0.4, rng.choice("+-0"), rng.random(),
                                          rng.choice(["practice", "provision", None])))
    fresh_store.save_predictions(predictions)
    # human codings override the predictions of a few utterances; one says "no code"
    fresh_store.add_annotations(
        Annotation(u.utterance_id, u.transcript_id, "", u.start, u.end, u.text,
                   (Coding(codes[i % len(codes)], "+", "practice"),) if i else (), "tester", now(), "garvin2008")
        for i, u in enumerate(utterances[::5]))
    dated = "2026-12-04T15:00:00+00:00"  # the same date on both reports (default: now)
    whole = rate_codings(fresh_store.codings_frame("m1"), codebook, tmp_path / "whole", model_id="m1", fictional=True,
                         created_at=dated)
    streamed = rate_store(fresh_store, codebook, tmp_path / "streamed", model_id="m1", fictional=True,
                          municipalities_per_frame=1, created_at=dated)
    assert any(r.rating != "onvoldoende_bewijs" for r in whole.ratings)
    assert streamed.ratings == whole.ratings and streamed.context == whole.context
    assert streamed.n_codings == len(fresh_store.codings_frame("m1"))
    for name in ("ratings.json", "ratings.csv", "rapport.md", "rapport.html"):
        if (tmp_path / "whole" / name).is_file():
            assert (tmp_path / "streamed" / name).read_text(encoding="utf-8") == \
                (tmp_path / "whole" / name).read_text(encoding="utf-8"), name
    assert sorted(p.name for p in (tmp_path / "whole").iterdir()) == sorted(p.name for p in (tmp_path / "streamed").iterdir())


def test_country_projection_spreads_all_but_the_rating_over_machines() -> None:
    from bench.run import COUNTRY_UTTERANCES, country_projection

    # 10,000 utterances in 100 s, 10 s of it rating and report
    result = {"label": "4x", "n_utterances": 10_000, "pipeline_cold_s": 100.0, "stages": {"rate": 10.0}}
    projection = country_projection(result, machines=(1, 3))
    one = COUNTRY_UTTERANCES * 0.01 / 3600
    assert projection["hours_by_machines"]["1"] == round(one, 2)
    assert projection["hours_by_machines"]["3"] == round(COUNTRY_UTTERANCES * (0.009 / 3 + 0.001) / 3600, 2)
    assert projection["from_scale"] == "4x" and projection["utterances"] == COUNTRY_UTTERANCES
