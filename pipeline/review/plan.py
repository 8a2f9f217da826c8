"""Tonight's review queue: a budget a person can finish, the items that can change a verdict
first, in diverse batches (issue 18).

The classification steps put every doubtful prediction in the queue (:func:`~pipeline.review.enqueue`);
:func:`plan_review_queue` then chooses which of the open items are handed out tonight:

1. **Expected effect on the ratings.** Each item's priority is ``uncertainty x max(effect, 0.05)``: how
   unsure the model is (:func:`~pipeline.review.assess_uncertainty`) times the largest effect a
   correction could have on the verdict of its municipality on one of its codes (a
   :class:`~pipeline.records.RatingEffect`, 1 when the verdict could change; given by the
   ``effects`` function, e.g. :func:`pipeline.rating.store_correction_effects`).
2. **Budget.** At most ``budget`` items are open for people (claimed ones count); the rest wait
   (status ``waiting``) and compete again at the next plan.
3. **Diverse batches.** Batches of ``batch_size`` are filled by maximal marginal relevance:
   the next item maximises ``diversity_weight' x priority - diversity_weight x similarity`` to
   the items already in its batch (cosine of word and word-pair TF-IDF vectors), so a batch is
   not ten near-identical sentences; priorities are scaled to the largest first.
4. **Effect shown.** Every planned item carries its effect in plain words (``ReviewItem.effect``),
   and :class:`PlannedBatch` sums up a batch, for the web page and the terminal.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.records import Prediction, RatingEffect, ReviewItem, ReviewStatus, Utterance
from pipeline.store import Store

logger = logging.getLogger(__name__)

DEFAULT_BUDGET_SHARE = 0.10  # of the active utterances, when no budget is set
BATCH_SIZE = 10
DIVERSITY_WEIGHT = 0.3
CODE_FLOOR = 0.2  # codes under this probability are not in doubt (and are not evidence)
# An item that can move no verdict still teaches the model: after the items that can, it ranks
# by its uncertainty.
EFFECT_FLOOR = 0.05

EffectFunction = Callable[[Iterable[tuple[Utterance, Sequence[str]]]], Mapping[tuple[str, str], RatingEffect]]


@dataclass(frozen=True, slots=True)
class PlannedBatch:
    """One batch of tonight's queue and what deciding it could do to the ratings."""

    number: int
    item_ids: tuple[str, ...]
    expected_effect: float  # sum of the items' priorities: about how many verdicts could change
    n_verdicts_at_stake: int  # distinct municipality x incentive verdicts a correction could change
    effect: str  # in plain words


@dataclass(frozen=True, slots=True)
class QueuePlan:
    """Tonight's queue: the budget, the batches handed out, and what waits."""

    budget: int
    n_open: int
    n_claimed: int
    n_waiting: int
    batches: tuple[PlannedBatch, ...]

    @property
    def n_planned(self) -> int:
        """Items handed out tonight (planned plus already claimed)."""
        return self.n_claimed + sum(len(batch.item_ids) for batch in self.batches)


def review_budget(n_utterances: int, budget: int | None = None, share: float = DEFAULT_BUDGET_SHARE) -> int:
    """The night's budget: ``budget`` when set, else ``share`` of the active utterances (at
    least 1 when there are any).

    Examples
    --------
    >>> review_budget(1234), review_budget(1234, 50), review_budget(0)
    (123, 50, 0)
    """
    if budget is not None:
        return max(0, int(budget))
    return max(1, math.floor(n_utterances * share)) if n_utterances else 0


def _codes_in_doubt(predictions: Sequence[Prediction]) -> list[str]:
    """Predicted codes and codes with a probability from the floor up, strongest first."""
    ordered = sorted(predictions, key=lambda p: -p.probability)
    return [p.code for p in ordered if p.predicted or p.probability >= CODE_FLOOR]


def _similarity(texts: Sequence[str]) -> Any:  # a scipy sparse matrix, or an empty array
    """Row-normalised TF-IDF vectors (words and word pairs): ``X @ X.T`` is the cosine."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    if not texts:
        return np.zeros((0, 0))
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"(?u)\b\w+\b")
    try:
        return vectorizer.fit_transform(texts)
    except ValueError:  # texts without a single word
        return np.zeros((len(texts), 1))


def _cosines(vectors: Any, rows: Sequence[int], row: int) -> np.ndarray:
    """Cosines of ``rows`` to ``row`` (dense arrays or a sparse matrix of unit rows)."""
    product = vectors[list(rows)] @ vectors[row].T
    return np.asarray(product.todense() if hasattr(product, "todense") else product, dtype=float).ravel()


def diverse_batches(priorities: Sequence[float], vectors: np.ndarray, n_items: int, batch_size: int = BATCH_SIZE,
                    diversity_weight: float = DIVERSITY_WEIGHT) -> list[list[int]]:
    """Indices of ``n_items`` items in batches of ``batch_size`` by maximal marginal relevance.

    Each batch starts with the highest remaining priority; each next item maximises
    ``(1 - w) x priority / max priority - w x its largest cosine to the batch so far``. Pure;
    ties go to the lower index.

    Examples
    --------
    >>> v = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    >>> diverse_batches([1.0, 0.9, 0.5], v, 3, batch_size=2)
    [[0, 2], [1]]
    """
    left = list(range(len(priorities)))
    left.sort(key=lambda i: (-priorities[i], i))
    top = max(priorities, default=0.0) or 1.0
    batches: list[list[int]] = []
    n_chosen = 0
    while left and n_chosen < n_items:
        batch = [left.pop(0)]
        n_chosen += 1
        closest = np.zeros(len(left)) if left else np.zeros(0)
        while left and len(batch) < batch_size and n_chosen < n_items:
            closest = np.maximum(closest, _cosines(vectors, left, batch[-1]))
            score = [(1 - diversity_weight) * priorities[i] / top - diversity_weight * closest[k]
                     for k, i in enumerate(left)]
            best = int(np.argmax(score))
            batch.append(left.pop(best))
            closest = np.delete(closest, best)
            n_chosen += 1
        batches.append(batch)
    return batches


def _batch_words(effects: Sequence[RatingEffect]) -> tuple[int, str]:
    at_stake = sorted({(e.municipality, e.code, e.rating, e.could_become) for e in effects if e.could_become})
    if not at_stake:
        return 0, "deze beslissingen veranderen naar verwachting geen oordeel; ze scherpen de scores aan"
    shown = "; ".join(f"{code} in {municipality} ({rating} → {other})" for municipality, code, rating, other in at_stake[:4])
    more = f" en {len(at_stake) - 4} meer" if len(at_stake) > 4 else ""
    return len(at_stake), f"kan {len(at_stake)} oordeel/oordelen veranderen: {shown}{more}"


def plan_review_queue(store: Store, effects: EffectFunction, *, budget: int | None = None,
                      budget_share: float = DEFAULT_BUDGET_SHARE, batch_size: int = BATCH_SIZE,
                      diversity_weight: float = DIVERSITY_WEIGHT) -> QueuePlan:
    """Choose tonight's review queue among the open items and write it (one transaction).

    Parameters
    ----------
    store : Store
    effects : callable
        ``effects([(utterance, codes), ...]) -> {(utterance_id, code): RatingEffect}``, e.g.
        :func:`pipeline.rating.store_correction_effects` (the review package does not rate).
    budget : int, optional
        Items open for people tonight, claimed ones included (default: ``budget_share`` of the
        active utterances, see :func:`review_budget`).
    budget_share : float
    batch_size : int
        Items per batch (a person's sitting).
    diversity_weight : float
        0 orders by priority alone; higher values spread a batch over more different texts.

    Returns
    -------
    QueuePlan
    """
    open_items = store.open_review_items()
    limit = review_budget(store.count_active_utterances(), budget, budget_share)
    claimed = [item for item, _ in open_items if item.status == ReviewStatus.CLAIMED]
    movable = [(item, utterance) for item, utterance in open_items if item.status != ReviewStatus.CLAIMED]
    by_model: dict[str, list[str]] = {}
    for item, _ in movable:
        by_model.setdefault(item.model_id, []).append(item.utterance_id)
    predictions = {(model_id, uid): rows for model_id, ids in by_model.items()
                   for uid, rows in store.predictions_by_utterance(model_id, ids).items()}
    doubts = {item.item_id: _codes_in_doubt(predictions.get((item.model_id, item.utterance_id), []))
              for item, _ in movable}
    found = effects([(utterance, doubts[item.item_id]) for item, utterance in movable])
    best: dict[str, RatingEffect | None] = {}
    for item, _ in movable:
        candidates = [found[(item.utterance_id, code)] for code in doubts[item.item_id] if (item.utterance_id, code) in found]
        best[item.item_id] = max(candidates, key=lambda e: (e.effect, -(e.distance or 0.0)), default=None)
    priorities = [round(item.uncertainty * max(EFFECT_FLOOR, effect.effect if (effect := best[item.item_id]) else 0.0), 6)
                  for item, _ in movable]
    vectors = _similarity([utterance.text for _, utterance in movable])
    n_tonight = max(0, limit - len(claimed))
    batches = diverse_batches(priorities, vectors, n_tonight, batch_size, diversity_weight)
    planned_batch = {index: number for number, batch in enumerate(batches, start=1) for index in batch}
    rows = []
    for index, (item, _) in enumerate(movable):
        effect = best[item.item_id]
        words = effect.words() if effect is not None else "geen oordeel over een prikkel in het geding"
        number = planned_batch.get(index)
        status = ReviewStatus.PENDING if number is not None else ReviewStatus.WAITING
        rows.append((item.item_id, status, number, priorities[index], effect.effect if effect else 0.0, words))
    store.plan_review_items(rows)
    summaries = []
    for number, batch in enumerate(batches, start=1):
        batch_effects = [best[movable[i][0].item_id] for i in batch]
        n_at_stake, words = _batch_words([e for e in batch_effects if e is not None])
        summaries.append(PlannedBatch(number, tuple(movable[i][0].item_id for i in batch),
                                      round(sum(priorities[i] for i in batch), 4), n_at_stake, words))
    plan = QueuePlan(limit, len(open_items), len(claimed), len(movable) - sum(len(b) for b in batches), tuple(summaries))
    logger.info("review queue for tonight: %d of %d open item(s) in %d batch(es) (budget %d), %d waiting",
                plan.n_planned, plan.n_open, len(plan.batches), limit, plan.n_waiting)
    return plan


def batch_effect(items: Sequence[ReviewItem]) -> str:
    """What deciding ``items`` (a claimed batch) could do to the ratings, in plain words: their
    planned effects, the ones that could change a verdict first."""
    changing = [item.effect for item in items if item.effect.startswith("kan het oordeel")]
    if changing:
        return f"{len(changing)} van deze {len(items)} fragmenten kunnen een oordeel veranderen: " + "; ".join(
            text.removeprefix("kan het oordeel over ") for text in dict.fromkeys(changing))
    return "deze fragmenten veranderen naar verwachting geen oordeel; ze scherpen de scores aan"
