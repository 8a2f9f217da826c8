"""The review queue: which predictions a human should look at, in which order, and what they decided.

After a classification run, :func:`enqueue` turns the predictions that need a human into
review items. Annotators :func:`claim_next` items and :func:`accept`, :func:`correct` or
:func:`skip` them, or :func:`undo_last` their newest decision. Each decision is one
transaction guarded by the item's version (optimistic locking), goes to the audit trail with
who and when, and (accept, correct) becomes annotations of origin ``review`` that the next
training run uses.
How items are ordered (priority = uncertainty x impact) is in :mod:`pipeline.review.priority`;
which of them are handed out tonight (a budget, the expected effect on the ratings first, diverse
batches) is decided by :func:`pipeline.review.plan.plan_review_queue` after each run.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipeline.codebook import Codebook
from pipeline.errors import NotFoundError, ReviewInputError, ReviewItemNotFoundError
from pipeline.records import (
    MANUAL_MODEL_ID,
    Annotation,
    Coding,
    Prediction,
    ReviewDecision,
    ReviewItem,
    ReviewStatus,
    Utterance,
)
from pipeline.review.priority import (
    DIRECTION_CONFIDENCE,
    DUPLICATE_DEMOTION,
    MARGIN,
    MIN_CONFIDENCE,
    RatingImpact,
    Reason,
    Uncertainty,
    _DuplicateIndex,
    _impact_function,
    assess_uncertainty,
    text_shingles,
)
from pipeline.store import Store

logger = logging.getLogger(__name__)


CLAIM_MINUTES = 30


SYSTEM_USER = "codeer"


@dataclass(frozen=True, slots=True)
class ReviewContext:
    """Everything an annotator sees of one item."""

    item: ReviewItem
    utterance: Utterance
    before: tuple[Utterance, ...]
    after: tuple[Utterance, ...]
    suggestions: tuple[Prediction, ...]  # most probable code first
    human: tuple[Coding, ...] | None


@dataclass(frozen=True, slots=True)
class Progress:
    """An annotator's day: ``n_done`` decisions today out of ``n_total`` (done + still open)."""

    n_done: int
    n_open: int

    @property
    def n_total(self) -> int:
        """Decisions made today plus items still open."""
        return self.n_done + self.n_open


@dataclass(frozen=True, slots=True)
class ReviewFilter:
    """Which part of the queue an annotator works on: one municipality, respondent and/or code.

    ``code`` matches the items whose model suggests it (predicted, or the most probable code
    where nothing is predicted). Empty fields do not narrow.
    """

    municipality: str | None = None
    respondent: str | None = None
    code: str | None = None

    def __post_init__(self) -> None:
        for name in ("municipality", "respondent", "code"):
            value = getattr(self, name)
            object.__setattr__(self, name, value.strip() or None if isinstance(value, str) else None)

    @property
    def active(self) -> bool:
        """Whether the filter narrows the queue at all."""
        return bool(self.municipality or self.respondent or self.code)

    def as_kwargs(self) -> dict[str, str | None]:
        """The keyword arguments of the store's queue queries."""
        return {"municipality": self.municipality, "respondent": self.respondent, "code": self.code}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def review_item_id(utterance_id: str, model_id: str) -> str:
    """Content-hash id of the item for one utterance as one model coded it.

    Examples
    --------
    >>> review_item_id("70e4cc1f92711b67", "m1") == review_item_id("70e4cc1f92711b67", "m1")
    True
    """
    return hashlib.sha1(f"{utterance_id}\x1f{model_id}".encode()).hexdigest()


def enqueue(
    store: Store,
    predictions: Iterable[Prediction],
    thresholds: Mapping[str, float],
    *,
    model_id: str,
    rating_impact: RatingImpact | None = None,
    batch_diversity: bool = True,
    min_confidence: float = MIN_CONFIDENCE,
    margin: float = MARGIN,
    direction_confidence: float = DIRECTION_CONFIDENCE,
    now: datetime | None = None,
) -> int:
    """Put the predictions of ``model_id`` that need a human into the review queue.

    Items are keyed by :func:`review_item_id`, so running this again (nightly) adds nothing
    new; it refreshes the priority of items still pending. Open items of other (older)
    models on the same utterances are retired, not deleted: those the new model is confident
    about, and those its own new item replaces.

    Parameters
    ----------
    store : Store
    predictions : iterable of Prediction
        Predictions of ``model_id`` (one per utterance and code).
    thresholds : mapping of code id to float
        The model's decision threshold per code.
    model_id : str
        The model the predictions come from, taken to be the newest.
    rating_impact : callable, mapping or None
        ``(municipality, code) -> weight`` as a function or a mapping (missing keys weigh 1);
        default :func:`evidence_impact` over the stored human annotations plus these predictions.
    batch_diversity : bool
        Demote near-duplicate texts of higher-priority items (priority x 0.1).
    min_confidence, margin, direction_confidence : float
        See :func:`assess_uncertainty`.
    now : datetime or None
        The time to record (default: now).

    Returns
    -------
    int
        How many items were added.
    """
    at = _iso(_now(now))
    by_utterance: dict[str, list[Prediction]] = {}
    for prediction in predictions:
        if prediction.model_id != model_id:
            raise ReviewInputError(f"prediction of utterance {prediction.utterance_id} comes from model "
                                   f"{prediction.model_id!r}, not {model_id!r}; enqueue one model's predictions at a time.")
        by_utterance.setdefault(prediction.utterance_id, []).append(prediction)
    utterances = store.utterances_by_id(by_utterance)
    human = store.human_labels(by_utterance)
    impact_of = _impact_function(rating_impact, store, by_utterance, utterances, human)
    candidates: list[tuple[float, str, Uncertainty, float]] = []
    confident: list[str] = []
    for utterance_id, rows in by_utterance.items():
        utterance = utterances.get(utterance_id)
        if utterance is None:
            logger.warning("prediction for unknown utterance %s ignored", utterance_id)
            continue
        uncertainty = assess_uncertainty(rows, thresholds, human.get(utterance_id), min_confidence=min_confidence,
                                         margin=margin, direction_confidence=direction_confidence)
        if not uncertainty.reasons:
            confident.append(utterance_id)
            continue
        impact = max((float(impact_of(utterance.municipality, code)) for code in uncertainty.codes), default=1.0)
        candidates.append((uncertainty.score * impact, utterance_id, uncertainty, impact))
    candidates.sort(key=lambda c: (-c[0], utterances[c[1]].transcript_id, utterances[c[1]].position))
    duplicates = _DuplicateIndex()
    items: list[ReviewItem] = []
    for priority, utterance_id, uncertainty, impact in candidates:
        reasons = tuple(str(reason) for reason in uncertainty.reasons)
        if batch_diversity:
            shingles = text_shingles(utterances[utterance_id].text)
            if shingles and duplicates.is_near_duplicate(shingles):
                priority *= DUPLICATE_DEMOTION
                reasons += (str(Reason.NEAR_DUPLICATE),)
            else:
                duplicates.add(shingles)
        items.append(ReviewItem(review_item_id(utterance_id, model_id), utterance_id, model_id, ReviewStatus.PENDING,
                                round(priority, 6), reasons, uncertainty.score, round(impact, 6), 0, at))
    n_added = store.upsert_review_items(items)
    n_retired = store.retire_review_items(confident, keep_model_id=model_id, user=SYSTEM_USER, at=at,
                                          note=f"model {model_id} is confident")
    n_retired += store.retire_review_items([item.utterance_id for item in items], keep_model_id=model_id,
                                           user=SYSTEM_USER, at=at, note=f"replaced by the item of model {model_id}")
    logger.info("review queue: %d of %d candidate item(s) new, %d older item(s) retired",
                n_added, len(items), n_retired)
    return n_added


def claim_next(
    store: Store, user: str, n: int = 1, *, claim_minutes: int = CLAIM_MINUTES, diversity: bool = True,
    now: datetime | None = None, only: ReviewFilter | None = None,
) -> list[ReviewItem]:
    """Claim up to ``n`` items for ``user``, highest priority first, for ``claim_minutes``.

    Items ``user`` already holds come back first (their claim renewed); an expired claim of
    someone else is taken over. With ``diversity`` a near-duplicate of an item already in the
    batch waits for a later batch, unless nothing else is left. ``only`` keeps to one part of
    the queue (see :class:`ReviewFilter`).
    """
    moment = _now(now)
    at, until = _iso(moment), _iso(moment + timedelta(minutes=claim_minutes))
    chosen: list[ReviewItem] = []
    deferred: list[ReviewItem] = []
    duplicates = _DuplicateIndex()
    narrow = (only or ReviewFilter()).as_kwargs()
    for item, text in store.claimable_review_items(user, at, limit=max(50, 10 * n), **narrow):
        if len(chosen) >= n:
            break
        shingles = text_shingles(text)
        if diversity and shingles and duplicates.is_near_duplicate(shingles):
            deferred.append(item)
            continue
        claimed = store.claim_review_item(item.item_id, user, at, until)
        if claimed is not None:
            chosen.append(claimed)
            duplicates.add(shingles)
    for item in deferred:
        if len(chosen) >= n:
            break
        claimed = store.claim_review_item(item.item_id, user, at, until)
        if claimed is not None:
            chosen.append(claimed)
    return chosen


def claim_one(store: Store, item_id: str, user: str, *, claim_minutes: int = CLAIM_MINUTES,
              now: datetime | None = None) -> ReviewItem | None:
    """Claim one chosen item for ``user``; None when someone else holds it or it is decided."""
    moment = _now(now)
    return store.claim_review_item(item_id, user, _iso(moment), _iso(moment + timedelta(minutes=claim_minutes)))


def get_item(store: Store, item_id: str) -> ReviewItem:
    """One review item; :class:`ReviewItemNotFoundError` when there is none with this id."""
    item = store.review_items_by_id([item_id]).get(item_id)
    if item is None:
        raise ReviewItemNotFoundError(f"review item {item_id!r} does not exist; reload the queue.")
    return item


def suggested_codings(predictions: Iterable[Prediction]) -> tuple[Coding, ...]:
    """The model's codings: every predicted code with its direction (``0`` when unknown) and facet."""
    return tuple(Coding(p.code, p.direction if p.direction in ("+", "-", "0") else "0",
                        p.facet if p.facet in ("provision", "practice") else None)
                 for p in sorted(predictions, key=lambda p: -p.probability) if p.predicted)


def accept(store: Store, item_id: str, user: str, *, version: int, codebook: Codebook,
           now: datetime | None = None) -> ReviewDecision:
    """Accept the model's codings of an item (status ``accepted``); they become ``user``'s annotations.

    Raises
    ------
    ReviewConflictError
        The item was decided, retired, changed or claimed by someone else since ``version``.
    """
    item = get_item(store, item_id)
    codings = suggested_codings(store.predictions_by_utterance(item.model_id, [item.utterance_id]).get(item.utterance_id, []))
    _check_codings(codings, codebook)
    return store.decide_review_item(item_id, user=user, expected_version=version, action="accept",
                                    status=ReviewStatus.ACCEPTED, codings=codings, codebook_version=codebook.version,
                                    at=_iso(_now(now)))


def correct(store: Store, item_id: str, user: str, codings: Sequence[Coding], *, version: int, codebook: Codebook,
            now: datetime | None = None, note: str = "") -> ReviewDecision:
    """Replace the model's codings of an item by ``codings`` (status ``corrected``; empty = no code).

    Raises
    ------
    UnknownCodeError
        A code is not in ``codebook``.
    ReviewConflictError
        The item was decided, retired, changed or claimed by someone else since ``version``.
    """
    codings = tuple(codings)
    _check_codings(codings, codebook)
    return store.decide_review_item(item_id, user=user, expected_version=version, action="correct",
                                    status=ReviewStatus.CORRECTED, codings=codings, codebook_version=codebook.version,
                                    at=_iso(_now(now)), note=note)


def skip(store: Store, item_id: str, user: str, *, version: int, now: datetime | None = None) -> ReviewDecision:
    """Skip an item (status ``skipped``): nobody will be asked again until it is undone or re-queued."""
    return store.decide_review_item(item_id, user=user, expected_version=version, action="skip",
                                    status=ReviewStatus.SKIPPED, codings=(), codebook_version="", at=_iso(_now(now)))


def undo_last(store: Store, user: str, *, claim_minutes: int = CLAIM_MINUTES,
              now: datetime | None = None) -> ReviewDecision | None:
    """Undo ``user``'s newest standing decision; the item is theirs (claimed) again.

    Returns the ``undo`` audit entry (its ``item_id`` names the item), or None when there is
    nothing to undo. Raises :class:`ReviewConflictError` when the item changed since.
    """
    moment = _now(now)
    return store.undo_last_review_decision(user, _iso(moment), _iso(moment + timedelta(minutes=claim_minutes)))


def code_fragment(store: Store, utterance_id: str, user: str, coding: Coding, *, codebook: Codebook,
                  span: tuple[int, int] | None = None, remove: bool = False,
                  claim_minutes: int = CLAIM_MINUTES, now: datetime | None = None) -> ReviewDecision:
    """Code (or with ``remove`` uncode) any utterance by hand, as ``user``, from the transcript.

    The coding joins ``user``'s other review codings of the utterance (a code given again
    replaces its direction and facet) and goes the way of every review decision: a
    ``correct`` on the user's own hand-coding item (model id ``manual``), one guarded
    transaction, the audit trail, :func:`undo_last`, annotations of origin ``review`` for
    training. ``span`` is the selected part of the utterance as character offsets into its
    text, end exclusive; the utterance stays the unit the model learns from, the span is
    recorded in the decision's note.

    Raises
    ------
    NotFoundError
        No utterance with this id.
    ReviewInputError
        The span lies outside the utterance, or the code cannot be given (a group code).
    UnknownCodeError
        The code is not in ``codebook``.
    """
    utterance = store.utterances_by_id([utterance_id]).get(utterance_id)
    if utterance is None:
        raise NotFoundError(f"utterance {utterance_id!r} does not exist (any more); reload the transcript page.")
    codebook[coding.code]  # an unknown code fails here, before anything is written
    if span is not None:
        start, end = span
        if not 0 <= start < end <= len(utterance.text):
            raise ReviewInputError(f"the selection {start}-{end} lies outside utterance {utterance_id} "
                                   f"(0-{len(utterance.text)} characters); select the text again.")
    moment = _now(now)
    item = store.open_manual_review_item(review_item_id(utterance_id, f"{MANUAL_MODEL_ID}/{user}"), utterance_id,
                                         MANUAL_MODEL_ID, user, _iso(moment),
                                         _iso(moment + timedelta(minutes=claim_minutes)))
    kept = [c for c in store.review_codings_of(utterance_id, user) if c.code != coding.code]
    codings = kept if remove else [*kept, coding]
    where = "hele uiting" if span is None else f"tekens {span[0]}-{span[1]} van de uiting"
    action = "verwijderd" if remove else f"{coding.direction}"
    note = f"vanuit het transcript: {coding.code} {action} ({where})"
    return correct(store, item.item_id, user, codings, version=item.version, codebook=codebook, now=moment, note=note)


def _check_codings(codings: Sequence[Coding], codebook: Codebook) -> None:
    seen: set[str] = set()
    for coding in codings:
        if not codebook[coding.code].codable:
            raise ReviewInputError(f"code {coding.code!r} is a {codebook[coding.code].kind} of codebook "
                                   f"{codebook.version!r}, not a code a fragment can carry.")
        if coding.code in seen:
            raise ReviewInputError(f"code {coding.code!r} is given twice; give each code once with one direction.")
        seen.add(coding.code)


def item_context(store: Store, item_id: str, *, n_context: int = 2) -> ReviewContext:
    """The item with its utterance, ``n_context`` utterances before and after, suggestions and human label."""
    item = get_item(store, item_id)
    utterance = store.utterances_by_id([item.utterance_id])[item.utterance_id]
    before, after = store.utterance_neighbours(item.utterance_id, n_context, n_context)
    suggestions = store.predictions_by_utterance(item.model_id, [item.utterance_id]).get(item.utterance_id, [])
    human = store.human_labels([item.utterance_id]).get(item.utterance_id)
    return ReviewContext(item, utterance, tuple(before), tuple(after), tuple(suggestions), human)


def progress(store: Store, user: str, *, now: datetime | None = None) -> Progress:
    """How many decisions ``user`` made today (UTC) and how many items are still open."""
    moment = _now(now).astimezone(UTC)
    since = _iso(moment.replace(hour=0, minute=0, second=0, microsecond=0))
    counts = store.review_status_counts()
    n_open = counts.get(ReviewStatus.PENDING, 0) + counts.get(ReviewStatus.CLAIMED, 0)
    return Progress(store.count_review_decisions(user, since), n_open)


def review_annotations(store: Store) -> list[Annotation]:
    """The standing review decisions as annotations (origin ``review``), for training.

    One per utterance and annotator (the newest decision); an empty ``codings`` is an
    explicit "no code", which the annotations table cannot hold but training needs.
    """
    latest: dict[tuple[str, str], Annotation] = {}
    for decision, utterance, source, content_hash in store.iter_review_decisions_for_training():
        latest[(utterance.utterance_id, decision.user)] = Annotation(
            utterance_id=utterance.utterance_id, source_file=source, content_hash=content_hash, start=utterance.start,
            end=utterance.end, text=utterance.text, codings=decision.codings, annotator=decision.user,
            created_at=decision.at, codebook_version=decision.codebook_version, transcript_id=utterance.transcript_id,
            municipality=utterance.municipality, respondent=utterance.respondent, role=utterance.role.value,
            question=utterance.question, origin="review")
    return list(latest.values())


EXPORT_COLUMNS = ("item_id", "utterance_id", "model_id", "status", "priority", "uncertainty", "impact", "reasons",
                  "municipality", "respondent", "text", "suggested", "decided_by", "decided_at", "decision")


def _codings_text(codings: Iterable[Coding]) -> str:
    return "; ".join(f"{c.code}{c.direction}" + (f"/{c.facet}" if c.facet else "") for c in codings)


def export_review_csv(store: Store, path: Path) -> int:
    """Write the queue and its decisions to a CSV file (UTF-8); return the number of items.

    Columns: ``item_id, utterance_id, model_id, status, priority, uncertainty, impact,
    reasons, municipality, respondent, text, suggested, decided_by, decided_at, decision``;
    codings are written ``code+/facet; code-`` (``decision``: the standing one).
    """
    items = store.list_review_items()
    utterances = store.utterances_by_id(item.utterance_id for item in items)
    standing: dict[str, ReviewDecision] = {}
    for made in reversed(store.list_review_decisions(limit=None)):
        if made.action in ("accept", "correct", "skip") and not made.undone:
            standing[made.item_id] = made
    by_model: dict[str, list[str]] = {}
    for item in items:
        by_model.setdefault(item.model_id, []).append(item.utterance_id)
    predictions = {(model_id, uid): rows for model_id, ids in by_model.items()
                   for uid, rows in store.predictions_by_utterance(model_id, ids).items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(EXPORT_COLUMNS)
        for item in items:
            utterance = utterances.get(item.utterance_id)
            decision = standing.get(item.item_id)
            writer.writerow([
                item.item_id, item.utterance_id, item.model_id, item.status.value, f"{item.priority:.6f}",
                f"{item.uncertainty:.6f}", f"{item.impact:.6f}", ";".join(item.reasons),
                utterance.municipality if utterance else "", utterance.respondent if utterance else "",
                utterance.text if utterance else "",
                _codings_text(suggested_codings(predictions.get((item.model_id, item.utterance_id), []))),
                item.decided_by or "", item.decided_at or "",
                "" if decision is None else ("(skipped)" if decision.action == "skip" else _codings_text(decision.codings)),
            ])
    return len(items)
