"""The researcher's evidence views: a transcript with its codes in the margin, and every
fragment of one code in one municipality (issue 21).

Both show what the ratings count: the human codings of an utterance where it has any (a
person's word outranks the model's), otherwise the codes the newest model predicts. Neither
shows transcript header text; respondents appear by their code (``BA``, ``MOIJ``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.codebook import Codebook
from pipeline.errors import NotFoundError
from pipeline.records import Coding, Prediction, Utterance
from pipeline.store import HumanCoding, Store, TranscriptInfo

HUMAN = "mens"
MODEL = "model"


@dataclass(frozen=True, slots=True)
class MarginCode:
    """One code beside an utterance: by a person (``source`` ``mens``, ``who`` the annotator)
    or by the model (``model``, ``who`` the model id, ``confidence`` its probability)."""

    code: str
    direction: str
    facet: str | None
    source: str
    who: str
    confidence: float | None = None
    counts: bool = True  # False: a model code that a human label of the utterance overrules


@dataclass(frozen=True, slots=True)
class TranscriptLine:
    """One utterance of the transcript page with the interviewer's question when it is new."""

    utterance: Utterance
    question: str
    codes: tuple[MarginCode, ...]


@dataclass(frozen=True, slots=True)
class TranscriptView:
    """A transcript as the transcript page shows it."""

    info: TranscriptInfo
    model_id: str | None
    lines: tuple[TranscriptLine, ...]


@dataclass(frozen=True, slots=True)
class Fragment:
    """One piece of evidence for a code in a municipality, with where it comes from."""

    utterance_id: str
    transcript_id: str
    respondent: str
    role: str
    text: str
    direction: str
    facet: str | None
    source: str
    who: str
    confidence: float | None


def _margin(human: Sequence[HumanCoding], labelled: bool, predictions: Sequence[Prediction]) -> tuple[MarginCode, ...]:
    codes = [MarginCode(h.code, h.direction, h.facet, HUMAN, h.annotator) for h in human]
    codes += [MarginCode(p.code, p.direction if p.direction in ("+", "-", "0") else "0", p.facet, MODEL, p.model_id,
                         p.probability, counts=not labelled)
              for p in predictions if p.predicted]
    return tuple(codes)


def _standing(human: Sequence[HumanCoding]) -> list[HumanCoding]:
    """The human codings that count, as :meth:`Store.human_labels` decides: review codings win."""
    review = [h for h in human if h.origin == "review"]
    return review or list(human)


def _codes_of(store: Store, ids: list[str], model_id: str | None) -> tuple[
        str | None, dict[str, list[Prediction]], dict[str, list[HumanCoding]], dict[str, tuple[Coding, ...]]]:
    """The codes of utterances ``ids``: the model whose predictions are shown (``model_id``, else
    the newest there), its predictions, the human codings, and which utterances a person labelled."""
    model_id = model_id or store.newest_model_id(ids)
    predictions = store.predictions_by_utterance(model_id, ids) if model_id else {}
    return model_id, predictions, store.human_codings(ids), store.human_labels(ids)


def transcript_view(store: Store, transcript_id: str, *, model_id: str | None = None) -> TranscriptView:
    """A transcript's utterances in order, each with its human and model codes.

    ``model_id`` defaults to the model with the newest predictions on this transcript.

    Raises
    ------
    NotFoundError
        No transcript with this id.
    """
    info = store.transcript_info(transcript_id)
    if info is None:
        raise NotFoundError(f"transcript {transcript_id!r} does not exist; it may have been replaced by a newer "
                            "version. Open the report again or pick a transcript from the fragments page.")
    utterances = store.transcript_utterances(transcript_id)
    model_id, predictions, human, labelled = _codes_of(store, [u.utterance_id for u in utterances], model_id)
    lines: list[TranscriptLine] = []
    last_question = None
    for utterance in utterances:
        question = utterance.question if utterance.question and utterance.question != last_question else ""
        last_question = utterance.question or last_question
        lines.append(TranscriptLine(utterance, question, _margin(human.get(utterance.utterance_id, ()),
                                                                  utterance.utterance_id in labelled,
                                                                  predictions.get(utterance.utterance_id, ()))))
    return TranscriptView(info, model_id, tuple(lines))


def code_fragments(store: Store, codebook: Codebook, code: str, municipality: str, *,
                   model_id: str | None = None) -> list[Fragment]:
    """Every fragment that counts as evidence for ``code`` in ``municipality``, in transcript order.

    An utterance a person has coded gives that person's codings (one fragment per annotator
    who gave ``code``); any other utterance gives the model's prediction of ``code`` when the
    model predicts it. ``model_id`` defaults to the model with the newest predictions there.

    Raises
    ------
    UnknownCodeError
        ``code`` is not in ``codebook``.
    """
    codebook[code]
    utterances = store.municipality_utterances(municipality)
    model_id, predictions, human, labelled = _codes_of(store, [u.utterance_id for u in utterances], model_id)
    found: list[Fragment] = []
    for u in utterances:
        base = (u.utterance_id, u.transcript_id, u.respondent, u.role.value, u.text)
        if u.utterance_id in labelled:
            if not labelled[u.utterance_id]:  # a person decided: no code
                continue
            found += [Fragment(*base, h.direction, h.facet, HUMAN, h.annotator, None)
                      for h in _standing(human.get(u.utterance_id, ())) if h.code == code]
            continue
        found += [Fragment(*base, p.direction if p.direction in ("+", "-", "0") else "0", p.facet, MODEL, p.model_id,
                           p.probability)
                  for p in predictions.get(u.utterance_id, ()) if p.code == code and p.predicted]
    return found
