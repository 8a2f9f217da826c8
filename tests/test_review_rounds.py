"""The effect of review rounds: scores before and after each round on the same held-out utterances."""

from __future__ import annotations

from dataclasses import replace

from pipeline.codebook import load_codebook
from pipeline.coding.embedding_cache import EmbeddingCache
from pipeline.coding.training import TrainingConfig, review_round_scores


def test_review_round_scores_share_one_test_set_and_grow_the_training_set(small_training_annotations, tmp_path) -> None:
    codebook = load_codebook()
    by_file: dict[str, list] = {}
    for annotation in small_training_annotations:
        by_file.setdefault(annotation.transcript_id or annotation.source_file, []).append(annotation)
    *seed_files, review_file, test_file = sorted(by_file)
    seed = [a for name in seed_files for a in by_file[name]]
    reviewed = [replace(a, origin="review", annotator="anna") for a in by_file[review_file][:20]]
    # one test utterance was reviewed too: it leaves the test set of every round
    reviewed.append(replace(by_file[test_file][0], origin="review", annotator="anna"))
    rounds = review_round_scores(seed, [reviewed], by_file[test_file], codebook,
                                 cache=EmbeddingCache(tmp_path / "cache.sqlite"),
                                 config=TrainingConfig(encoder="use", n_splits=3, min_examples=3))
    assert [r["round"] for r in rounds] == [0, 1]
    assert [r["n_reviewed"] for r in rounds] == [0, 21]
    assert rounds[1]["n_train"] == rounds[0]["n_train"] + 21
    assert rounds[0]["n_test"] == rounds[1]["n_test"] == len(by_file[test_file]) - 1
    assert all(0.0 <= r[key] <= 1.0 for r in rounds for key in ("cv_macro_f1", "holdout_macro_f1"))
