"""Leave-one-source-out stability: the linear version gives exactly the verdicts of a rerun."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from pipeline.codebook import load_codebook
from pipeline.rating import stability, verdicts
from pipeline.rating.balance import _balance
from pipeline.rating.evidence import _Answer, _Fragment
from pipeline.rating.rules import RatingRules, load_rating_rules
from pipeline.rating.stability import _ingredients, _leave_one_out
from pipeline.rating.verdicts import _decide, _judge, _stability

BOOK = load_codebook("garvin2008")
RULES = load_rating_rules()
# the other knobs: presence by the most certain fragment, contested sooner, more sources needed
OTHER_RULES = RULES.model_copy(update={
    "evidence": RULES.evidence.model_copy(update={"source_presence": "max"}),
    "role_agreement": RULES.role_agreement.model_copy(update={"contested_gap": 0.5}),
    "thresholds": RULES.thresholds.model_copy(update={
        "min_sources": RULES.thresholds.min_sources.model_copy(update={"municipality": 1.5, "region": 2.5})})})
ROLES = ("manager", "beleidsmedewerker", "other", "document", "regio")
LEADERSHIP = next(c for c in BOOK.incentives if BOOK.building_block(c) == RULES.evidence.self_assessment.building_blocks[0])


def _stability_brute(fragments: Sequence[_Fragment], answers: Sequence[_Answer], code: str, rules: RatingRules,
                     level: str, divergent: bool, rating: str) -> float | None:
    """The definition: rerun the whole verdict without each respondent in turn (quadratic)."""
    respondents = sorted({f.respondent for f in fragments})
    if not respondents:
        return None
    same = sum(_decide([f for f in fragments if f.respondent != left_out], answers, code, BOOK, rules, level,
                       divergent).rating == rating for left_out in respondents)
    return round(same / len(respondents), 4)


def _number(rng: random.Random, nice: Sequence[float]) -> float:
    """Half the time a round number (to land on the cut-offs), else an arbitrary float (to round)."""
    return rng.choice(nice) if rng.random() < 0.5 else rng.random()


def _cell(rng: random.Random) -> tuple[list[_Fragment], list[_Answer]]:
    fragments = []
    # now and then a respondent who shares its name with the questionnaire's source
    names = ["vragenlijst"] if rng.random() < 0.1 else []
    for number in range(rng.randint(0, 30)):
        respondent = names.pop() if names else f"R{number:02d}"
        role = rng.choice(ROLES)
        for k in range(rng.randint(1, 4)):
            if rng.random() < 0.05:  # now and then a respondent under two roles
                role = rng.choice(ROLES)
            certainty = _number(rng, (1.0, 1.0, 0.5, 0.0))
            facet = rng.choice(("practice", "practice", "provision", None))
            weight = certainty * _number(rng, (1.0, 0.5, 0.0)) * (0.5 if facet == "provision" else 1.0)
            fragments.append(_Fragment(f"u{number}_{k}", "Eschveld", respondent, role, rng.choice((-1, 0, 1, 1)),
                                       weight, certainty, facet))
    answers = [_Answer(f"Q{n}", "manager", rng.choice((-1.0, -0.5, 0.0, 0.5, 1.0, rng.uniform(-1, 1))))
               for n in range(rng.choice((0, 0, 1, 3)))]
    return fragments, answers


@pytest.mark.parametrize("rules", [RULES, OTHER_RULES], ids=["shipped", "other"])
def test_stability_equals_the_brute_force_on_random_cells(rules: RatingRules) -> None:
    seen: Counter[str] = Counter()
    for seed in range(300):
        rng = random.Random(seed)
        fragments, answers = _cell(rng)
        code = rng.choice((LEADERSHIP, *BOOK.incentives[:3]))
        level, divergent = rng.choice(("municipality", "region")), rng.random() < 0.2
        respondents = sorted({f.respondent for f in fragments})
        # every leave-one-out ingredient is bit for bit that of a rerun without the respondent ...
        fast = _leave_one_out(fragments, answers, code, BOOK, rules)
        rerun = [_ingredients([f for f in fragments if f.respondent != r], answers, code, BOOK, rules)[0]
                 for r in respondents]
        assert fast == rerun, seed
        # ... so every verdict is too
        verdicts_fast = [_judge(i, rules, level, divergent) for i in fast]
        verdicts_rerun = [(d.rating, d.caveats) for d in (
            _decide([f for f in fragments if f.respondent != r], answers, code, BOOK, rules, level, divergent)
            for r in respondents)]
        assert verdicts_fast == verdicts_rerun, seed
        rating = _decide(fragments, answers, code, BOOK, rules, level, divergent).rating
        for asked in {rating, "matig"}:
            assert (_stability(fragments, answers, code, BOOK, rules, level, divergent, asked)
                    == _stability_brute(fragments, answers, code, rules, level, divergent, asked)), seed
        seen.update(rating for rating, _ in verdicts_fast)
        seen.update(caveat for _, caveats in verdicts_fast for caveat in caveats)
    # the random cells reach every verdict and every gate, so the comparison is not vacuous
    assert {"voldoende", "matig", "onvoldoende", "onvoldoende_bewijs", "practice_not_shown", "contested",
            "divergent"} <= set(seen), seen


def _counting(function: Callable[..., Any], calls: Counter[str]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls[function.__name__] += 1
        return function(*args, **kwargs)
    return wrapper


def test_stability_of_a_large_cell_judges_each_source_once_and_balances_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # 3,000 respondents whose balance sits exactly on the voldoende cut-off (1050 / 3000 = 0.35):
    # leaving out one of the 1,500 positive ones drops it to matig, leaving out any other keeps it
    calls: Counter[str] = Counter()
    monkeypatch.setattr(verdicts, "_judge", _counting(verdicts._judge, calls))
    monkeypatch.setattr(stability, "_balance", _counting(_balance, calls))
    values = [1] * 1500 + [-1] * 450 + [0] * 1050
    fragments = [_Fragment(f"u{n}", "Eschveld", f"R{n:04d}", "other", value, 1.0, 1.0, "practice")
                 for n, value in enumerate(values)]
    assert _decide(fragments, [], BOOK.incentives[0], BOOK, RULES, "municipality").rating == "voldoende"
    calls.clear()
    assert _stability(fragments, [], BOOK.incentives[0], BOOK, RULES, "municipality", False, "voldoende") == 0.5
    assert calls["_judge"] == 3000  # one verdict per source left out ...
    assert calls["_balance"] == 2  # ... but the balance (overall and practice) is made once, not per source
