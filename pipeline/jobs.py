"""The main job's steps over a store, shared by the command line and the Prefect flows:
classify what is new, queue what needs a human, rate, report."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pipeline.classify import CodedRow, code_rows, featurize
from pipeline.codebook import Codebook
from pipeline.models import LoadedModel
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
    store: Store, loaded: LoadedModel, encoder, codebook: Codebook, *, cache=None,  # type: ignore[no-untyped-def]
    batch_size: int = 2000, review: bool = True, review_threshold: float = 0.6, show_progress: bool = False,
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

    from tqdm import tqdm

    stats = ClassifyStats()
    pending = store.iter_pending_utterances(loaded.model_id, transcript_id)
    thresholds = dict(zip(loaded.model.codes, map(float, loaded.model.thresholds), strict=True))
    with tqdm(desc="classify", unit="utt", disable=not show_progress, leave=False) as bar:
        for batch in _batches(pending, batch_size):
            started = time.perf_counter()
            X, n_encoded, n_hits = featurize([u.text for u in batch], [u.question for u in batch], encoder,
                                             context_weight=loaded.model.context_weight, cache=cache)
            stats.seconds_embed += time.perf_counter() - started
            started = time.perf_counter()
            rows = code_rows([u.utterance_id for u in batch], X, loaded.model, loaded.model_id, codebook,
                             review_threshold=review_threshold)
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


@dataclass
class RateResult:
    """Ratings, their files and the report files."""

    ratings: list = field(default_factory=list)
    context: list = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    n_codings: int = 0


def rate_codings(codings: pd.DataFrame, codebook: Codebook, out_dir: Path, *, model_id: str,
                 questionnaire: pd.DataFrame | None = None, report: bool = True, fictional: bool = False,
                 region_name: str = "de regio") -> RateResult:
    """Rate incentives and context from a codings table; write ratings.json/.csv and, with
    ``report``, the HTML, Markdown and Excel report."""
    from pipeline.aggregate import compare_municipalities, rate_context, rate_incentives, write_ratings
    from pipeline.rating_rules import load_rating_rules
    from pipeline.report import provenance_from_codings, write_report

    rules = load_rating_rules()
    ratings = rate_incentives(codings, codebook, rules, questionnaire)
    context = rate_context(codings, codebook, rules)
    files = list(write_ratings(ratings, out_dir))
    if report:
        provenance = provenance_from_codings(codings, model_id=model_id, codebook_version=codebook.version,
                                             rules_version=rules.version)
        written = write_report(out_dir, ratings, codebook, provenance, context=context,
                               differences=compare_municipalities(ratings, rules), codings=codings,
                               fictional=fictional, region_name=region_name)
        files += [written.html, written.markdown, written.excel]
    return RateResult(ratings, context, files)


QUOTE_COLUMNS = ["utterance_id", "code", "respondent", "text", "direction", "facet", "source"]


def rate_store(store: Store, codebook: Codebook, out_dir: Path, *, model_id: str,
               questionnaire: pd.DataFrame | None = None, report: bool = True, fictional: bool = False,
               region_name: str = "de regio", municipalities_per_frame: int = 10) -> RateResult:
    """:func:`rate_codings` of the store's codings (:meth:`Store.codings_frame`), streamed.

    The codings are read a few municipalities at a time and each part is reduced to its
    evidence (:func:`pipeline.aggregate.coded_fragments`) before the next is read, so the
    codings table of the whole corpus is never in memory; the report keeps the text of the
    rows it may quote only. Ratings, files and report are those of :func:`rate_codings` on
    the whole table.

    Parameters
    ----------
    store : Store
    codebook : Codebook
    out_dir : Path
        Where ratings.json/.csv and the report are written.
    model_id : str
        Whose predictions are rated, beside the human annotations.
    questionnaire, report, fictional, region_name
        As for :func:`rate_codings`.
    municipalities_per_frame : int
        Municipalities read at a time.

    Returns
    -------
    RateResult
        With ``n_codings``, the rows of the codings table.
    """
    from pipeline.aggregate import (
        CodedFragments, coded_fragments, compare_municipalities, rate_context, rate_incentives, write_ratings,
    )
    from pipeline.rating_rules import load_rating_rules
    from pipeline.report import Provenance, write_report

    rules = load_rating_rules()
    parts: list[CodedFragments] = []
    quotes: list[pd.DataFrame] = []
    n = dict.fromkeys(("transcripts", "documents", "utterances", "human", "predicted", "rows"), 0)
    for frame in store.iter_codings_frames(model_id, municipalities_per_frame=municipalities_per_frame):
        part = coded_fragments(frame.drop(columns="text"), codebook, rules)
        parts.append(part)
        # a transcript and its utterances belong to one municipality: counts add up over parts
        documents = frame["role"] == "document"
        n["transcripts"] += int(frame.loc[~documents, "transcript_id"].nunique())
        n["documents"] += int(frame.loc[documents, "transcript_id"].nunique())
        n["utterances"] += int(frame["utterance_id"].nunique())
        n["human"] += int((frame["source"] == "human").sum())
        n["predicted"] += int((frame["source"] == "predicted").sum())
        n["rows"] += len(frame)
        if report:
            keys = part.keys
            quotable = [(u, c) in keys for u, c in zip(frame["utterance_id"], frame["code"], strict=True)]
            quotes.append(frame.loc[quotable, QUOTE_COLUMNS])
        del frame
    fragments = CodedFragments.join(parts)
    del parts
    ratings = rate_incentives(fragments, codebook, rules, questionnaire)
    context = rate_context(fragments, codebook, rules)
    files = list(write_ratings(ratings, out_dir))
    if report:
        provenance = Provenance(model_id=model_id, codebook_version=codebook.version, rules_version=rules.version,
                                n_transcripts=n["transcripts"], n_documents=n["documents"],
                                n_utterances=n["utterances"], n_human=n["human"], n_predicted=n["predicted"])
        codings = pd.concat(quotes, ignore_index=True) if quotes else pd.DataFrame(columns=QUOTE_COLUMNS)
        written = write_report(out_dir, ratings, codebook, provenance, context=context,
                               differences=compare_municipalities(ratings, rules), codings=codings,
                               fictional=fictional, region_name=region_name)
        files += [written.html, written.markdown, written.excel]
    return RateResult(ratings, context, files, n["rows"])


def questionnaire_evidence_of(store: Store) -> pd.DataFrame | None:
    """The stored questionnaire answers as rating evidence (None when there are none)."""
    from pipeline.questionnaire import stored_questionnaire_evidence

    frame = stored_questionnaire_evidence(store)
    return frame if len(frame) else None


def rating_changes(before: list[dict[str, object]], after: list) -> list[dict[str, object]]:  # type: ignore[type-arg]
    """Which municipality/incentive ratings moved, from what to what."""
    old = {(row["municipality"], row["code"]): row["rating"] for row in before}
    changes = []
    for rating in after:
        key = (rating.municipality, rating.code)
        if old.get(key) != rating.rating:
            changes.append({"municipality": rating.municipality, "code": rating.code, "from": old.get(key),
                            "to": rating.rating})
    return changes


def previous_ratings(out_dir: Path) -> list[dict[str, object]]:
    """The ratings of the previous run (empty when there are none)."""
    path = out_dir / "ratings.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []


def classify_table(frame: pd.DataFrame, loaded: LoadedModel, encoder, codebook: Codebook, *,  # type: ignore[no-untyped-def]
                   cache=None) -> pd.DataFrame:
    """Classify a table of utterances (``id,text,municipality,respondent[,role,question]``)
    without touching the database; return its codings table (predicted codes only)."""
    questions = frame["question"].astype(str).tolist() if "question" in frame.columns else [""] * len(frame)
    X, _, _ = featurize(frame["text"].astype(str).tolist(), questions, encoder,
                        context_weight=loaded.model.context_weight, cache=cache)
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


def n_new_corrections(store: Store, models_dir: Path) -> int:
    """How many standing review decisions are newer than the current model (all of them
    when there is no current model): what the nightly job weighs before retraining."""
    from pipeline.models import current_model_id
    from pipeline.review import review_annotations

    current = current_model_id(models_dir)
    card = models_dir / current / "card.json" if current else None
    trained_at = json.loads(card.read_text(encoding="utf-8"))["created_at"] if card and card.is_file() else ""
    return sum(annotation.created_at > trained_at for annotation in review_annotations(store))
