"""Champion and challenger: which model codes the transcripts (issue 18).

Every candidate model is scored on one frozen held-out set per codebook version: the real-text
yardstick (thesis sentences no model trains on; codebook garvin2008 only) and the demo hold-out
transcripts (``pipeline/resources/annotations/holdout``), always over the same codes, whatever
codes a model left out. A challenger replaces the champion only when

- it is not worse on the **primary metric** by more than :data:`PRIMARY_TOLERANCE`: the
  yardstick's macro-F1 over the 13 incentives (top-1), or the hold-out's macro-F1 for a
  codebook version without a yardstick; and
- it is not **clearly worse on a frequent code**: no code with at least
  :data:`FREQUENT_SUPPORT` positive items in a part of the held-out set loses more than
  :data:`CLEARLY_WORSE` of F1 there (a frequent code carries most of the ratings; below that
  support one item moves F1 by more than the margin, so rare codes are judged by the macro-F1).

Scores carry the held-out set's ``key`` (codebook version, items, codes): scores with another
key were measured on another set and are never compared; the champion is scored again instead.
Grouped cross-validation scores (each model's own annotations) are reported, never compared.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import f1_score

from pipeline.codebook import Codebook
from pipeline.coding import evaluate as ev
from pipeline.coding.classify import CodingModel, featurize, training_set
from pipeline.coding.embed import EmbeddingCacheLike, Encoder
from pipeline.coding.models import LoadedModel, current_model_id, load_model_folder
from pipeline.coding.sources import SOURCES_CODEBOOK, RealItem, yardstick_items
from pipeline.errors import ConfigError, ModelCardMismatchError
from pipeline.records import Annotation

logger = logging.getLogger(__name__)

PRIMARY_TOLERANCE = 0.01
FREQUENT_SUPPORT = 10
CLEARLY_WORSE = 0.10
HOLDOUT_MIN_SUPPORT = 3  # hold-out codes with fewer positives are left out of its macro-F1


@dataclass(frozen=True)
class HeldOutSet:
    """The frozen held-out set of one codebook version: yardstick items, hold-out annotations
    and the codes both are scored over."""

    codebook_version: str
    yardstick: tuple[RealItem, ...]
    holdout: tuple[Annotation, ...]
    incentives: tuple[str, ...]
    holdout_codes: tuple[str, ...]

    @property
    def key(self) -> str:
        """A hash of everything the scores depend on but the model."""
        digest = hashlib.sha256(json.dumps([self.codebook_version, self.incentives, self.holdout_codes]).encode())
        for item in self.yardstick:
            digest.update(f"{item.id}|{item.code}|{item.text}\n".encode())
        for annotation in sorted(self.holdout, key=lambda a: a.utterance_id):
            codes = ",".join(sorted(c.code for c in annotation.codings))
            digest.update(f"{annotation.utterance_id}|{codes}|{annotation.text}\n".encode())
        return digest.hexdigest()[:16]


def heldout_set(codebook: Codebook, holdout: Sequence[Annotation]) -> HeldOutSet:
    """The held-out set of ``codebook``: its yardstick (garvin2008 only) and ``holdout``."""
    items = tuple(yardstick_items(codebook)) if codebook.version == SOURCES_CODEBOOK else ()
    data = training_set(list(holdout), codebook) if holdout else None
    codes: tuple[str, ...] = ()
    if data is not None:
        counts = data.Y.sum(axis=0)
        codes = tuple(code for code, n in zip(data.codes, counts, strict=True) if n >= HOLDOUT_MIN_SUPPORT)
    return HeldOutSet(codebook.version, items, tuple(holdout), tuple(codebook.incentives), codes)


@dataclass(frozen=True)
class HeldOutScores:
    """One model's scores on a :class:`HeldOutSet`."""

    key: str
    primary_name: str
    primary: float
    yardstick_macro_f1: float | None
    holdout_macro_f1: float | None
    # part ("yardstick", "holdout") -> code -> {"f1": ..., "support": ...}
    per_code: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """As stored on the model card (``heldout``)."""
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any] | None) -> HeldOutScores | None:
        """The scores on a card, or None for a card without them (an older model)."""
        if not raw or "key" not in raw:
            return None
        return cls(key=str(raw["key"]), primary_name=str(raw.get("primary_name")), primary=float(raw.get("primary") or 0.0),
                   yardstick_macro_f1=raw.get("yardstick_macro_f1"), holdout_macro_f1=raw.get("holdout_macro_f1"),
                   per_code=raw.get("per_code", {}))

    def summary(self) -> str:
        """``yardstick macro-F1 0.795, hold-out macro-F1 0.61``."""
        parts = []
        if self.yardstick_macro_f1 is not None:
            parts.append(f"yardstick macro-F1 {self.yardstick_macro_f1:.3f}")
        if self.holdout_macro_f1 is not None:
            parts.append(f"hold-out macro-F1 {self.holdout_macro_f1:.3f}")
        return ", ".join(parts) or "no held-out scores"


def _yardstick_part(model: CodingModel, F: Any, items: Sequence[RealItem], incentives: Sequence[str]
                    ) -> tuple[float, dict[str, dict[str, float]]]:
    """Top-1 macro-F1 over ``incentives`` on the items whose main code is one; a code the model
    left out is never chosen (its column scores minus infinity)."""
    proba = model.predict_proba(F)
    scores = np.full((len(items), len(incentives)), -np.inf)
    for j, code in enumerate(incentives):
        if code in model.codes:
            scores[:, j] = proba[:, model.codes.index(code)]
    rows = [i for i, item in enumerate(items) if item.code in incentives]
    gold = [items[i].code for i in rows]
    first = [incentives[int(np.argmax(scores[i]))] for i in rows]
    labels = list(incentives)
    f1s = f1_score(gold, first, labels=labels, average=None, zero_division=0)
    per_code = {code: {"f1": round(float(f1), 3), "support": int(gold.count(code))} for code, f1 in zip(labels, f1s, strict=True)}
    macro = float(f1_score(gold, first, labels=labels, average="macro", zero_division=0))
    return round(macro, 3), per_code


def _holdout_part(model: CodingModel, F: Any, Y: np.ndarray, codes: Sequence[str], all_codes: Sequence[str]
                  ) -> tuple[float, dict[str, dict[str, float]]]:
    """Per-code F1 of the model's decisions over ``codes`` (a code it left out: never predicted)."""
    decided = model.decide(F)[1].astype(int)
    predicted = np.zeros((len(Y), len(codes)), dtype=int)
    for j, code in enumerate(codes):
        if code in model.codes:
            predicted[:, j] = decided[:, model.codes.index(code)]
    truth = Y[:, [list(all_codes).index(code) for code in codes]]
    scores = ev.code_scores(truth, predicted, codes, min_support=1)
    per_code = {code: {"f1": row["f1"], "support": row["support"]} for code, row in scores["per_code"].items()}
    return scores["macro_f1"], per_code


def score_on_heldout(model: CodingModel, heldout: HeldOutSet, encoder: Encoder, *,
                     cache: EmbeddingCacheLike | None = None) -> HeldOutScores:
    """Score ``model`` (whose encoder is ``encoder``) on ``heldout``."""
    per_code: dict[str, dict[str, dict[str, float]]] = {}
    yardstick_f1 = holdout_f1 = None
    if heldout.yardstick:
        F, _, _ = featurize([item.text for item in heldout.yardstick], encoder, cache=cache)
        yardstick_f1, per_code["yardstick"] = _yardstick_part(model, F, heldout.yardstick, heldout.incentives)
    if heldout.holdout and heldout.holdout_codes:
        data = training_set(list(heldout.holdout), _codebook_of(heldout))
        F, _, _ = featurize(data.texts, encoder, questions=data.questions, cache=cache)
        holdout_f1, per_code["holdout"] = _holdout_part(model, F, data.Y, heldout.holdout_codes, data.codes)
    if yardstick_f1 is not None:
        name, primary = "yardstick macro-F1 (13 incentives, top-1)", yardstick_f1
    else:
        name, primary = "hold-out macro-F1", holdout_f1 if holdout_f1 is not None else 0.0
    return HeldOutScores(heldout.key, name, float(primary), yardstick_f1, holdout_f1, per_code)


def _codebook_of(heldout: HeldOutSet) -> Codebook:
    from pipeline.codebook import load_codebook

    return load_codebook(heldout.codebook_version)


@dataclass(frozen=True)
class PromotionDecision:
    """Whether a challenger replaces the champion, on which scores, and why."""

    promote: bool
    reason: str
    challenger_id: str
    challenger: HeldOutScores
    champion_id: str | None = None
    champion: HeldOutScores | None = None

    def to_json(self) -> dict[str, Any]:
        """As stored on the model card (``promotion``) and in the run log."""
        return {"promoted": self.promote, "reason": self.reason, "challenger_id": self.challenger_id,
                "challenger": self.challenger.to_json(), "champion_id": self.champion_id,
                "champion": None if self.champion is None else self.champion.to_json(),
                "rule": {"primary_tolerance": PRIMARY_TOLERANCE, "frequent_support": FREQUENT_SUPPORT,
                         "clearly_worse": CLEARLY_WORSE}}


def clearly_worse_codes(challenger: HeldOutScores, champion: HeldOutScores, *, frequent_support: int = FREQUENT_SUPPORT,
                        clearly_worse: float = CLEARLY_WORSE) -> list[str]:
    """``part/code: F1 old -> new`` for every frequent code the challenger is clearly worse on."""
    worse = []
    for part, codes in champion.per_code.items():
        for code, old in codes.items():
            new = challenger.per_code.get(part, {}).get(code)
            if old["support"] < frequent_support or new is None:
                continue
            if new["f1"] < old["f1"] - clearly_worse:
                worse.append(f"{part}/{code}: F1 {old['f1']:.3f} -> {new['f1']:.3f}")
    return worse


def decide_promotion(challenger_id: str, challenger: HeldOutScores, champion_id: str | None,
                     champion: HeldOutScores | None, *, tolerance: float = PRIMARY_TOLERANCE,
                     frequent_support: int = FREQUENT_SUPPORT, clearly_worse: float = CLEARLY_WORSE) -> PromotionDecision:
    """The champion/challenger rule (see the module docstring); pure.

    Raises
    ------
    ValueError
        When both scores were measured on different held-out sets (their keys differ): score
        the champion on the challenger's set first.
    """
    if champion_id is None or champion is None:
        return PromotionDecision(True, f"promoted: no champion for this codebook version yet "
                                       f"({challenger.primary_name} {challenger.primary:.3f})",
                                 challenger_id, challenger)
    if champion.key != challenger.key:
        raise ValueError(f"scores of {champion_id} and {challenger_id} come from different held-out sets "
                         f"({champion.key} vs {challenger.key}); score both on one set.")
    both = f"{challenger.primary_name} {challenger.primary:.3f} vs {champion.primary:.3f} of {champion_id}"
    if challenger.primary < champion.primary - tolerance:
        return PromotionDecision(False, f"kept {champion_id}: the challenger is worse on the {both} "
                                        f"(tolerance {tolerance})", challenger_id, challenger, champion_id, champion)
    worse = clearly_worse_codes(challenger, champion, frequent_support=frequent_support, clearly_worse=clearly_worse)
    if worse:
        return PromotionDecision(False, f"kept {champion_id}: the challenger is clearly worse (F1 down more than "
                                        f"{clearly_worse}) on frequent code(s) {'; '.join(worse)} ({both})",
                                 challenger_id, challenger, champion_id, champion)
    return PromotionDecision(True, f"promoted over {champion_id}: {both}; no frequent code clearly worse",
                             challenger_id, challenger, champion_id, champion)


Scorer = Callable[[CodingModel, dict[str, Any]], HeldOutScores]


def without_heldout(annotations: Sequence[Annotation], heldout: HeldOutSet) -> list[Annotation]:
    """``annotations`` minus those of held-out utterances and yardstick sentences (e.g. a
    reviewed hold-out utterance), so no candidate is scored on what it was trained on."""
    ids = frozenset(a.utterance_id for a in heldout.holdout)
    texts = frozenset(item.text for item in heldout.yardstick)
    return [a for a in annotations if a.utterance_id not in ids and a.text not in texts]


def heldout_scorer(heldout: HeldOutSet, *, cache: EmbeddingCacheLike | None = None,
                   encoders: dict[str, Any] | None = None, folders: dict[str, Path] | None = None) -> Scorer:
    """A :data:`Scorer` on ``heldout`` that embeds with the encoder on each model's card
    (loaded once per encoder; ``encoders`` maps encoder ids to encoders already loaded; ``folders``
    maps model ids to their folders, where a fine-tuned encoder is read from).

    Raises :class:`~pipeline.errors.ModelCardMismatchError` when the installed encoder is not
    the version on the card.
    """
    from pipeline.coding.embed import check_trained_encoder, load_encoder

    loaded = dict(encoders or {})

    def score(model: CodingModel, card: dict[str, Any]) -> HeldOutScores:
        encoder = loaded.get(card["encoder_id"])
        if encoder is None:
            encoder = load_encoder(card["encoder"], model_folder=(folders or {}).get(card["model_id"]))
            check_trained_encoder(card, encoder)
            loaded[card["encoder_id"]] = encoder
        return score_on_heldout(model, heldout, encoder, cache=cache)

    return score


def find_champion(models_dir: Path, search_dirs: Sequence[Path], codebook_version: str) -> LoadedModel | None:
    """The model a challenger must beat: the one ``current`` names (the workspace's
    ``models/CURRENT``, else that of ``search_dirs``, e.g. the packaged model), when it is of
    ``codebook_version``; None when there is none to compare with."""
    for folder in (models_dir, *search_dirs):
        model_id = current_model_id(folder)
        if not model_id or not (folder / model_id / "card.json").is_file():
            continue
        try:
            return load_model_folder(folder / model_id, codebook_version=codebook_version)
        except ModelCardMismatchError as err:
            # a model of another codebook version (or an older format) is no champion of this one
            logger.info("no champion in %s: %s", folder, err)
            return None
    return None


def challenge_champion(challenger_id: str, challenger: HeldOutScores, champion: LoadedModel | None,
                       score: Scorer) -> PromotionDecision:
    """Decide between ``challenger`` and ``champion``, scoring the champion on the challenger's
    held-out set when its card holds no scores of that set (an older model, a changed set)."""
    if champion is None:
        return decide_promotion(challenger_id, challenger, None, None)
    stored = HeldOutScores.from_json(champion.card.get("heldout"))
    if stored is None or stored.key != challenger.key:
        try:
            stored = score(champion.model, champion.card)
        except (ModelCardMismatchError, ConfigError) as err:
            decision = decide_promotion(challenger_id, challenger, None, None)
            return replace(decision, champion_id=champion.model_id,
                           reason=f"promoted: the champion {champion.model_id} cannot be scored here ({err}); "
                                  f"challenger {challenger.summary()}")
    return decide_promotion(challenger_id, challenger, champion.model_id, stored)
