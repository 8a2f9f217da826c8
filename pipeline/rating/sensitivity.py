"""How much one correction could move a verdict: the expected effect of a review item on the
ratings (issue 18).

For an utterance and a code, the verdict of its municipality on that code is made again with
the utterance's coding corrected each way a person could: the code removed (the model was
wrong), its direction turned, or the code confirmed or added as a person's coding with either
direction. When one of these verdicts differs from the current one the effect is 1; otherwise
it is ``move / (move + distance)``, the largest score change against the distance of the score
to the nearest cut-off (:class:`~pipeline.records.RatingEffect`). Municipal verdicts only: a
region pools many sources, so one fragment that cannot move a municipality hardly moves it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import pandas as pd

from pipeline.codebook import Codebook
from pipeline.rating.evidence import CodedFragments, _Answer, _answers, _Fragment, coded_fragments
from pipeline.rating.rules import RatingRules, load_rating_rules
from pipeline.rating.verdicts import _decide
from pipeline.records import RatingEffect, Utterance

if TYPE_CHECKING:
    from pipeline.store import Store


def _cut_distance(score: float | None, rules: RatingRules) -> float | None:
    if score is None:
        return None
    return min(abs(score - rules.thresholds.voldoende), abs(score - rules.thresholds.onvoldoende))


def _counterfactuals(fragments: Sequence[_Fragment], utterance: Utterance) -> list[list[_Fragment]]:
    """The cell's fragments after each correction a person could make to ``utterance``'s coding."""
    own = [f for f in fragments if f.utterance_id == utterance.utterance_id]
    others = [f for f in fragments if f.utterance_id != utterance.utterance_id]
    human = _Fragment(utterance.utterance_id, utterance.municipality, utterance.respondent, utterance.role.value, 1,
                      1.0, 1.0, "practice")
    worlds = [[*others, replace(human, value=value)] for value in (1, -1)]
    if own:
        worlds.append(others)  # the code was wrong
        worlds += [[*others, replace(f, value=-f.value)] for f in own if f.value]  # the direction was wrong
    return worlds


def correction_effects(fragments: CodedFragments, utterances: Iterable[tuple[Utterance, Sequence[str]]],
                       codebook: Codebook, rules: RatingRules,
                       questionnaire: pd.DataFrame | None = None) -> dict[tuple[str, str], RatingEffect]:
    """What correcting each utterance's coding of each of its codes could do to the verdicts.

    Parameters
    ----------
    fragments : CodedFragments
        The evidence the ratings are made from now (:func:`~pipeline.rating.coded_fragments`).
    utterances : iterable of (Utterance, codes)
        The utterances of the review items and the codes each is in doubt about; codes that are
        not incentives are skipped (context codes are not rated on this scale).
    codebook : Codebook
    rules : RatingRules
    questionnaire : DataFrame, optional
        Questionnaire evidence, as for :func:`~pipeline.rating.rate_incentives`.

    Returns
    -------
    dict
        ``(utterance_id, code) -> RatingEffect``.
    """
    cells: dict[tuple[str, str], list[_Fragment]] = defaultdict(list)
    for code, fragment in fragments.pairs:
        if not fragment.about_region:
            cells[(fragment.municipality, code)].append(fragment)
    answers: Mapping[tuple[str, str], list[_Answer]] = _answers(questionnaire)
    now: dict[tuple[str, str], tuple[str, float | None]] = {}
    effects: dict[tuple[str, str], RatingEffect] = {}
    for utterance, codes in utterances:
        for code in dict.fromkeys(codes):
            if code not in codebook.by_id or codebook[code].kind != "incentive":
                continue
            key = (utterance.municipality, code)
            cell, cell_answers = cells.get(key, []), answers.get(key, [])
            if key not in now:
                decision = _decide(cell, cell_answers, code, codebook, rules, "municipality")
                now[key] = (decision.rating, decision.balance.score)
            rating, score = now[key]
            move, could_become = 0.0, None
            for world in _counterfactuals(cell, utterance):
                decision = _decide(world, cell_answers, code, codebook, rules, "municipality")
                if decision.rating != rating and could_become is None:
                    could_become = decision.rating
                if score is not None and decision.balance.score is not None:
                    move = max(move, abs(decision.balance.score - score))
            distance = _cut_distance(score, rules)
            if could_become is not None:
                effect = 1.0
            elif distance is None or move <= 0:
                effect = 0.0
            else:
                effect = move / (move + distance)
            effects[(utterance.utterance_id, code)] = RatingEffect(
                utterance.utterance_id, utterance.municipality, code, rating,
                None if score is None else round(score, 4), None if distance is None else round(distance, 4),
                round(move, 4), could_become, round(effect, 6))
    return effects


def store_correction_effects(store: Store, codebook: Codebook, model_id: str | None, *,
                             rules: RatingRules | None = None, questionnaire: pd.DataFrame | None = None
                             ) -> Callable[[Iterable[tuple[Utterance, Sequence[str]]]], dict[tuple[str, str], RatingEffect]]:
    """A function ``effects(utterances) -> {(utterance_id, code): RatingEffect}`` over the
    store's evidence as :func:`pipeline.report.rate_store` rates it (human annotations and the
    predictions of ``model_id``): what :func:`pipeline.review.plan_review_queue` asks.

    The evidence is read when the function is first called, a few municipalities at a time.
    """
    rules = rules or load_rating_rules()
    evidence: list[CodedFragments] = []

    def effects(utterances: Iterable[tuple[Utterance, Sequence[str]]]) -> dict[tuple[str, str], RatingEffect]:
        if not evidence:
            parts = [coded_fragments(frame.drop(columns="text"), codebook, rules)
                     for frame in store.iter_codings_frames(model_id)]
            evidence.append(CodedFragments.join(parts))
        return correction_effects(evidence[0], utterances, codebook, rules, questionnaire)

    return effects
