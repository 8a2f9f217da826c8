"""What the annotator reads: why an item is in the queue and how far the day has come, in plain Dutch.

The queue stores its reasons as stable ids (:class:`pipeline.review.priority.Reason`); these
functions turn them, the priority and the progress into sentences, so no page shows
``near_threshold`` or ``priority 0.98 x impact 1.00``.
"""

from __future__ import annotations

from pipeline.records import ReviewItem

REASON_TEXT = {
    "low_top_probability": "het model twijfelt: geen enkele code past duidelijk",
    "near_threshold": "een code zit precies op de grens van wel of niet toekennen",
    "uncertain_direction": "het model weet niet of het fragment positief, negatief of neutraal is",
    "disagrees_with_human": "het model is het oneens met een eerdere menselijke codering",
    "near_duplicate": "lijkt sterk op een fragment dat eerder in de rij staat",
    "manual": "zelf gecodeerd vanuit het transcript",
}

DIRECTION_TEXT = {"+": "positief (stimuleert)", "-": "negatief (belemmert)", "0": "neutraal of gemengd"}
FACET_TEXT = {"provision": "voorziening", "practice": "praktijk"}


def reason_text(reason: str) -> str:
    """One stored reason id as a Dutch phrase (an unknown id is shown as it is)."""
    return REASON_TEXT.get(reason, reason.replace("_", " "))


def reasons_text(item: ReviewItem) -> str:
    """Why ``item`` is in the queue, as one Dutch sentence without internal ids or numbers.

    Examples
    --------
    >>> from pipeline.records import ReviewItem, ReviewStatus
    >>> item = ReviewItem("i", "u", "m", ReviewStatus.PENDING, 0.9, ("near_threshold",), 0.9, 1.0, 0, "")
    >>> reasons_text(item)
    'Een code zit precies op de grens van wel of niet toekennen; een correctie kan het oordeel over deze gemeente veranderen.'
    """
    parts = [reason_text(reason) for reason in item.reasons] or ["het model vraagt om een tweede blik"]
    parts.append(impact_text(item.impact))
    sentence = "; ".join(parts)
    return sentence[0].upper() + sentence[1:] + "."


def impact_text(impact: float) -> str:
    """How much one correction could move a rating, in words (impact 1 = it could flip it)."""
    if impact >= 0.5:
        return "een correctie kan het oordeel over deze gemeente veranderen"
    if impact >= 0.2:
        return "een correctie telt mee in het oordeel over deze gemeente"
    return "het oordeel over deze gemeente staat al vrij vast"


def progress_text(n_done: int, n_open: int, budget: int | None = None) -> str:
    """The day's progress in words: ``"12 gedaan vandaag, 40 open"``.

    With a nightly ``budget`` (the setting ``review_budget``) the goal is the budget:
    ``"12 van 40 gedaan vandaag (doel voor vannacht), 1560 open"``.

    Examples
    --------
    >>> progress_text(12, 40)
    '12 gedaan vandaag, 40 open'
    >>> progress_text(12, 1560, budget=40)
    '12 van 40 gedaan vandaag (doel voor vannacht), 1560 open'
    >>> progress_text(0, 0)
    '0 gedaan vandaag, niets meer open'
    """
    still = f"{n_open} open" if n_open else "niets meer open"
    if budget:
        return f"{n_done} van {budget} gedaan vandaag (doel voor vannacht), {still}"
    return f"{n_done} gedaan vandaag, {still}"
