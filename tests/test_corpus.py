"""The fictional demo corpus: it ingests cleanly, its seed annotations attach, its coverage
reaches the minimum, it says it is fictional, and no two respondent sentences repeat."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import yaml

from pipeline.codebook import load_codebook
from pipeline.corpus.annotations import (
    MIN_PER_CONTEXT,
    MIN_PER_INCENTIVE,
    annotation_stats,
    import_annotations,
    read_annotations,
)
from pipeline.corpus.ingest import ingest_paths
from pipeline.corpus.folders import find_sources
from pipeline.corpus.transcripts import load_transcript
from pipeline.resources import holdout_dir, seed_dir

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "demo"
SEED = seed_dir()
REAL_MUNICIPALITIES = ("Aalten", "Berkelland", "Bronckhorst", "Doetinchem", "Montferland", "Oost Gelre",
                       "Oude IJsselstreek", "Winterswijk", "Achterhoek")


def test_corpus_ingests_and_seed_attaches(fresh_store, segmenter) -> None:
    report = ingest_paths([DEMO], fresh_store, segmenter)
    assert not report.failed, [r.error for r in report.failed]
    assert report.count("new") == 28
    result = import_annotations(read_annotations([SEED], load_codebook()), fresh_store)
    assert result.problems == ()
    assert result.n_codings_added > 1000


def test_corpus_is_fictional_everywhere() -> None:
    for path, _ in find_sources([DEMO]):
        transcript = load_transcript(path)
        assert "fictief" in dict(transcript.header).get("note", ""), path
        for name in REAL_MUNICIPALITIES:
            assert name not in transcript.text, (path, name)
    assert "fictional" in (DEMO / "README.md").read_text(encoding="utf-8").lower()


def test_corpus_coverage_reaches_minimum() -> None:
    book = load_codebook()
    table = annotation_stats(read_annotations([SEED], book), book).set_index("code")
    assert len(list(SEED.glob("[BMR]*.jsonl"))) >= 10
    for code in book.incentives:
        assert table.loc[code, "total"] >= MIN_PER_INCENTIVE, code
        assert table.loc[code, "+"] >= 10 and table.loc[code, "-"] >= 5, code
    for code in book.context_codes:
        assert table.loc[code, "total"] >= MIN_PER_CONTEXT, code
    share_uncoded = table.loc["(none)", "total"] / sum(1 for f in SEED.glob("*.jsonl") for _ in open(f, encoding="utf-8"))
    assert 0.15 <= share_uncoded <= 0.5


def _respondent_sentences() -> list[tuple[str, str]]:
    rows = []
    for folder in (SEED, holdout_dir()):
        for path in sorted(folder.glob("*.jsonl")):
            for line in open(path, encoding="utf-8"):
                record = json.loads(line)
                rows.append((record["respondent"], record["text"]))
    return rows


def test_corpus_has_no_repeated_or_near_duplicate_sentences() -> None:
    rows = _respondent_sentences()
    assert len(rows) > 2000
    words = [re.findall(r"\w+", text.lower()) for _, text in rows]
    seen: dict[str, int] = {}
    for index, tokens in enumerate(words):
        if len(tokens) >= 5:
            key = " ".join(tokens)
            assert key not in seen, f"repeated sentence: {rows[index]} and {rows[seen[key]]}"
            seen[key] = index
    shingles = [set(zip(t, t[1:], t[2:])) if len(t) >= 8 else set() for t in words]
    by_shingle: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for index, grams in enumerate(shingles):
        for gram in grams:
            by_shingle[gram].append(index)
    for index, grams in enumerate(shingles):
        shared: dict[int, int] = defaultdict(int)
        for gram in grams:
            for other in by_shingle[gram]:
                if other > index:
                    shared[other] += 1
        for other, n in shared.items():
            jaccard = n / len(grams | shingles[other])
            assert jaccard < 0.5, f"near-duplicate sentences: {rows[index]} and {rows[other]}"


def test_corpus_answer_key_covers_every_municipality_and_incentive() -> None:
    key = yaml.safe_load((DEMO / "intended_picture.yaml").read_text(encoding="utf-8"))
    book = load_codebook()
    assert len(key["municipalities"]) == 8
    for municipality in key["municipalities"].values():
        assert set(municipality["incentives"]) == set(book.incentives)
        assert set(municipality["incentives"].values()) <= {"voldoende", "matig", "onvoldoende", "niet_besproken"}
