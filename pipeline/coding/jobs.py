"""The coding steps over a store, shared by the command line and the Prefect flows: classify
what is new (queueing what needs a human), classify a table, count new corrections."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline.codebook import Codebook
from pipeline.coding.classify import featurize
from pipeline.coding.stack import Features
from pipeline.review.priority import MIN_CONFIDENCE
from pipeline.coding.embed import EmbeddingCacheLike, Encoder, check_trained_encoder, load_encoder
from pipeline.coding.models import LoadedModel, check_card, load_model_folder, read_model_card
from pipeline.coding.predict import CodedRow, code_rows, coded_row_json
from pipeline.records import Prediction, Utterance
from pipeline.store import Store

logger = logging.getLogger(__name__)


@dataclass
class ClassifyStats:
    """What one classification pass did."""

    n_classified: int = 0
    n_embedded: int = 0
    n_cache_hits: int = 0
    n_review_added: int = 0
    seconds_embed: float = 0.0
    seconds_classify: float = 0.0


def _batches(items: Iterator[Utterance], size: int) -> Iterator[list[Utterance]]:
    batch: list[Utterance] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def predictions_for(rows: Sequence[CodedRow], codes: Sequence[str]) -> list[Prediction]:
    """Store rows for coded utterances: the probability of each of the model's ``codes``
    (building blocks are derived, not stored); direction and facet for the predicted ones."""
    predictions = []
    stored = set(codes)
    for row in rows:
        direction = {code: (label, p) for code, label, p in row.direction}
        facet = {code: label for code, label, _ in row.facet}
        predicted = set(row.predicted)
        for code, p in row.codes:
            if code not in stored:
                continue
            label, direction_p = direction.get(code, (None, None))
            predictions.append(Prediction(row.id, row.model, code, p, code in predicted, label, direction_p,
                                          facet.get(code)))
    return predictions


def classify_pending(
    store: Store, loaded: LoadedModel, encoder: Encoder, codebook: Codebook, *, cache: EmbeddingCacheLike | None = None,
    batch_size: int = 2000, review: bool = True, review_threshold: float = MIN_CONFIDENCE, show_progress: bool = False,
    transcript_id: str | None = None,
) -> ClassifyStats:
    """Classify the active utterances that have no predictions of this model yet, in batches
    (memory stays flat however large the corpus), store the predictions and queue the
    uncertain ones for review. Utterances already classified by this model cost nothing.
    With ``transcript_id`` only that transcript's utterances (one task per transcript).

    A batch is queued for review before its predictions are stored: a crash in between
    leaves the batch pending, so the next run classifies it again and the upsert of the
    review items adds nothing twice."""
    import time

    from pipeline.progress import Progress

    stats = ClassifyStats()
    pending = store.iter_pending_utterances(loaded.model_id, transcript_id)
    thresholds = dict(zip(loaded.model.codes, map(float, loaded.model.thresholds), strict=True))
    with Progress("classify", unit="utt", enabled=show_progress) as bar:
        for batch in _batches(pending, batch_size):
            started = time.perf_counter()
            X, n_encoded, n_hits = featurize([u.text for u in batch], encoder, questions=[u.question for u in batch],
                                             cache=cache)
            stats.seconds_embed += time.perf_counter() - started
            started = time.perf_counter()
            rows = code_rows([u.utterance_id for u in batch], X, loaded.model, loaded.model_id, codebook,
                             min_confidence=review_threshold)
            predictions = predictions_for(rows, loaded.model.codes)
            if review:
                from pipeline.review import enqueue

                stats.n_review_added += enqueue(store, predictions, thresholds, model_id=loaded.model_id,
                                                min_confidence=review_threshold)
            store.save_predictions(predictions)
            stats.seconds_classify += time.perf_counter() - started
            stats.n_classified += len(batch)
            stats.n_embedded += n_encoded
            stats.n_cache_hits += n_hits
            bar.update(len(batch))
    logger.info("classified %d utterances (%d texts encoded, %d from cache), %d review items added",
                stats.n_classified, stats.n_embedded, stats.n_cache_hits, stats.n_review_added)
    return stats


def classify_table(frame: pd.DataFrame, loaded: LoadedModel, encoder: Encoder, codebook: Codebook, *,
                   cache: EmbeddingCacheLike | None = None) -> pd.DataFrame:
    """Classify a table of utterances (``id,text,municipality,respondent[,role,question]``)
    without touching the database; return its codings table (predicted codes only)."""
    questions = frame["question"].tolist() if "question" in frame.columns else None
    X, _, _ = featurize(frame["text"].astype(str).tolist(), encoder, questions=questions, cache=cache)
    rows = code_rows(frame["id"].astype(str).tolist(), X, loaded.model, loaded.model_id, codebook)
    records = []
    for row, (_, source) in zip(rows, frame.iterrows(), strict=True):
        probability = dict(row.codes)
        facet = {code: label for code, label, _ in row.facet}
        for code, label, direction_p in row.direction:
            records.append({"utterance_id": row.id, "transcript_id": str(source.get("transcript", "") or source["respondent"]),
                            "municipality": source["municipality"], "respondent": source["respondent"],
                            "role": str(source.get("role", "") or "other"), "text": source["text"], "code": code,
                            "direction": label, "facet": facet.get(code), "weight": float(probability[code]),
                            "source": "predicted", "direction_p": float(direction_p)})
    columns = ["utterance_id", "transcript_id", "municipality", "respondent", "role", "text", "code", "direction",
               "facet", "weight", "source", "direction_p"]
    return pd.DataFrame(records, columns=columns)


@dataclass(frozen=True)
class ClassifiedFile:
    """What :func:`classify_file` wrote."""

    output: Path
    n_rows: int
    n_review: int


@dataclass(frozen=True)
class EmbeddedFile:
    """The rows of a file to classify and their features (:func:`embed_file`)."""

    frame: pd.DataFrame
    features: Features


def embed_file(input_file: Path, encoder: Encoder, *, cache: EmbeddingCacheLike | None = None,
               show_progress: bool = False) -> EmbeddedFile:
    """Read ``input_file`` (.jsonl or .csv with ``id`` and ``text``, optionally ``question``) and embed its rows."""
    from pipeline.corpus import read_table

    frame = read_table(input_file, required=("id", "text"))
    questions = frame["question"].tolist() if "question" in frame.columns else None  # a null question is none
    X, _, _ = featurize(frame["text"].astype(str).tolist(), encoder, questions=questions, cache=cache,
                        show_progress=show_progress)
    return EmbeddedFile(frame, X)


def write_classified(embedded: EmbeddedFile, output: Path, loaded: LoadedModel, codebook: Codebook, *,
                     review_threshold: float = MIN_CONFIDENCE) -> ClassifiedFile:
    """Code the rows of :func:`embed_file` with ``loaded`` and write one JSON line per row to ``output``."""
    frame = embedded.frame
    rows = code_rows(frame["id"].astype(str).tolist(), embedded.features, loaded.model, loaded.model_id, codebook,
                     min_confidence=review_threshold)
    extra = [c for c in frame.columns if c not in ("id", "text")]
    output.parent.mkdir(parents=True, exist_ok=True)
    with open(output, "w", encoding="utf-8") as handle:
        # records, not iterrows: a row Series would turn a None (JSON null) into NaN (not JSON)
        for row, source in zip(rows, frame.to_dict("records"), strict=True):
            record = {**{c: source[c] for c in extra}, **coded_row_json(row)}
            handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
    return ClassifiedFile(output, len(rows), sum(row.needs_review for row in rows))


def classify_file(input_file: Path, output: Path, loaded: LoadedModel, encoder: Encoder, codebook: Codebook, *,
                  cache: EmbeddingCacheLike | None = None, review_threshold: float = MIN_CONFIDENCE,
                  show_progress: bool = False) -> ClassifiedFile:
    """Code any Dutch text: ``input_file`` is .jsonl or .csv with ``id`` and ``text`` columns (an
    optional ``question`` column gives the interviewer's question; other columns are passed
    through). Writes one JSON line per row to ``output`` with every code's probability, the
    predicted codes, their direction, ``needs_review`` and the model id."""
    embedded = embed_file(input_file, encoder, cache=cache, show_progress=show_progress)
    return write_classified(embedded, output, loaded, codebook, review_threshold=review_threshold)


def classify_file_with(folder: Path, input_file: Path, output: Path, codebook: Codebook, *, threads: int | None = None,
                       device: str = "cpu", cache: EmbeddingCacheLike | None = None,
                       review_threshold: float = MIN_CONFIDENCE, show_progress: bool = False,
                       ) -> tuple[ClassifiedFile, LoadedModel]:
    """:func:`classify_file` with the model in ``folder``, its classifier loaded while the texts are
    embedded: loading a skops file imports all of scikit-learn (about 3 s on two cores), and the
    encoder leaves the GIL to it. The card is checked first, so a wrong model fails before any work."""
    card = read_model_card(folder)
    check_card(card, codebook.version)
    encoder = load_encoder(card["encoder"], threads=threads, device=device, model_folder=folder)
    check_trained_encoder(card, encoder)
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(load_model_folder, folder, codebook_version=codebook.version)
        embedded = embed_file(input_file, encoder, cache=cache, show_progress=show_progress)
        loaded = pending.result()
    return write_classified(embedded, output, loaded, codebook, review_threshold=review_threshold), loaded


def check_encoder(loaded: LoadedModel, encoder: Encoder) -> None:
    """Refuse an encoder that does not embed as the one ``loaded`` was trained with
    (:func:`~pipeline.coding.embed.check_trained_encoder`)."""
    check_trained_encoder(loaded.card, encoder)


def open_encoder(loaded: LoadedModel, *, threads: int | None = None, device: str = "cpu") -> Encoder:
    """Load the encoder named on ``loaded``'s card (a fine-tuned one from its folder) and check it is the
    version the model was trained with."""
    encoder = load_encoder(loaded.card["encoder"], threads=threads, device=device, model_folder=loaded.path)
    check_encoder(loaded, encoder)
    return encoder


def n_new_corrections(store: Store, models_dir: Path) -> int:
    """How many standing review decisions are newer than the current model (all of them
    when there is no current model): what the nightly job weighs before retraining."""
    from pipeline.coding.models import current_model_id
    from pipeline.review import review_annotations

    current = current_model_id(models_dir)
    card = models_dir / current / "card.json" if current else None
    trained_at = json.loads(card.read_text(encoding="utf-8"))["created_at"] if card and card.is_file() else ""
    return sum(annotation.created_at > trained_at for annotation in review_annotations(store))
