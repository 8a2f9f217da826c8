"""Split transcripts into codable utterances with spaCy.

``nl_core_news_lg`` is used when installed; otherwise ``spacy.blank("nl")`` with a sentencizer
tuned for Dutch abbreviations, numbers, ellipses and quotes. Turns and newlines are split
before sentences, because a newline is not a sentence boundary to the sentencizer.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from pipeline.hashing import utterance_id
from pipeline.records import Speaker, Transcript, Utterance

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc

logger = logging.getLogger(__name__)

TRAINED_MODEL = "nl_core_news_lg"
# Abbreviations the blank Dutch tokenizer would otherwise end a sentence on.
ABBREVIATIONS = (
    "bijv. bv. o.a. d.w.z. m.b.t. i.p.v. ca. e.d. enz. etc. mld. mln. dhr. mevr. mw. drs. dr. ir. prof. "
    "i.v.m. t.a.v. t.o.v. m.n. z.g.a.n. e.a. resp. evt. incl. excl. nr. blz. vgl. zgn. jl. a.s. "
    "jan. feb. mrt. apr. jun. jul. aug. sep. sept. okt. nov. dec. ma. di. wo. do. vr. za. zo."
).split()
_OPENING_QUOTES = frozenset("‘“„«\"'([")
_LETTER = re.compile(r"[^\W\d_]")
_NOISE = re.compile(r"\([^)]*\)|\[[^\]]*\]")


@dataclass(frozen=True, slots=True)
class Segmenter:
    """A loaded spaCy pipeline plus the unit size (``window`` sentences per utterance)."""

    nlp: Language
    name: str
    window: int = 1


def load_segmenter(window: int = 1, model: str | None = TRAINED_MODEL) -> Segmenter:
    """Load the sentence splitter: the trained Dutch pipeline if present, else the blank fallback."""
    import spacy
    from spacy.about import __version__ as spacy_version

    if window < 1:
        raise ValueError(f"window must be 1 or more sentences, got {window}")
    if model:
        try:
            nlp = spacy.load(model, exclude=["ner", "lemmatizer", "attribute_ruler"])
            logger.info("segmenter: %s %s", model, nlp.meta.get("version", ""))
            return Segmenter(nlp, f"{model}-{nlp.meta.get('version', '')}", window)
        except OSError:
            logger.info("segmenter: %s is not installed; using spacy.blank('nl') + sentencizer", model)
    return Segmenter(make_blank_pipeline(), f"blank-nl-sentencizer-spacy{spacy_version}", window)


def make_blank_pipeline() -> Language:
    """The fallback pipeline: blank Dutch tokenizer with abbreviation cases and a quote fix."""
    import spacy
    from spacy.language import Language
    from spacy.symbols import ORTH
    from spacy.tokenizer import Tokenizer

    if "codeer_quote_starts" not in Language.factories:

        @Language.component("codeer_quote_starts")
        def quote_starts(doc: Doc) -> Doc:
            # Move a sentence start that follows an opening quote or bracket onto it.
            for token in doc[1:-1]:
                if token.is_sent_start and doc[token.i - 1].text in _OPENING_QUOTES and token.i >= 2:
                    doc[token.i - 1].is_sent_start = True
                    token.is_sent_start = False
            return doc

    nlp = spacy.blank("nl")
    tokenizer = cast(Tokenizer, nlp.tokenizer)  # a blank pipeline has the rule-based tokenizer
    for abbreviation in ABBREVIATIONS:
        for form in {abbreviation, abbreviation[:1].upper() + abbreviation[1:]}:
            tokenizer.add_special_case(form, [{ORTH: form}])
    nlp.add_pipe("sentencizer", config={"punct_chars": [".", "!", "?", "…", "...", "?!", "!?", "‽"]})
    nlp.add_pipe("codeer_quote_starts")
    return nlp


def _paragraphs(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    position = start
    for line in text[start:end].split("\n"):
        line_start = position
        position += len(line) + 1
        stripped = line.strip()
        if stripped:
            offset = line.index(stripped[0])
            yield line_start + offset, line_start + offset + len(stripped)


def _sentence_spans(doc: Doc, base: int) -> list[tuple[int, int]]:
    spans = []
    for sentence in doc.sents:
        text = sentence.text
        stripped = text.strip()
        if not stripped:
            continue
        offset = text.index(stripped[0])
        start = base + sentence.start_char + offset
        spans.append((start, start + len(stripped)))
    return spans


def _merge_noise(spans: list[tuple[int, int]], text: str) -> list[tuple[int, int]]:
    """Fold a sentence with no words of its own (e.g. "(lacht)") into its neighbour."""
    merged: list[tuple[int, int]] = []
    pending_start: int | None = None
    for start, end in spans:
        if not _LETTER.search(_NOISE.sub("", text[start:end])):
            if merged:
                merged[-1] = (merged[-1][0], end)
            elif pending_start is None:
                pending_start = start
            continue
        if pending_start is not None:
            start, pending_start = pending_start, None
        merged.append((start, end))
    if pending_start is not None:
        merged.append((pending_start, spans[-1][1]))
    return merged


def segment_transcripts(transcripts: Iterable[Transcript], segmenter: Segmenter) -> Iterator[list[Utterance]]:
    """Segment many transcripts, one list of utterances per transcript, in order."""
    for transcript in transcripts:
        yield segment_transcript(transcript, segmenter)


def segment_transcript(transcript: Transcript, segmenter: Segmenter) -> list[Utterance]:
    """Split the respondent (or document) turns of a transcript into utterances.

    Interviewer turns are not coded; the latest one becomes the ``question`` context of the
    utterances that follow it (for documents, the latest heading).
    """
    text = transcript.text
    coded = (Speaker.RESPONDENT, Speaker.DOCUMENT)
    jobs: list[tuple[int, int, int]] = []  # (turn index, paragraph start, paragraph end)
    for turn in transcript.turns:
        if turn.speaker in coded:
            jobs.extend((turn.index, s, e) for s, e in _paragraphs(text, turn.start, turn.end))
    docs = segmenter.nlp.pipe(text[s:e] for _, s, e in jobs)
    sentences_by_turn: dict[int, list[tuple[int, int]]] = {}
    for (turn_index, start, _), doc in zip(jobs, docs, strict=True):
        sentences_by_turn.setdefault(turn_index, []).extend(_sentence_spans(doc, start))

    utterances: list[Utterance] = []
    question = ""
    for turn in transcript.turns:
        if turn.speaker not in coded:
            question = text[turn.start : turn.end]
            continue
        spans = _merge_noise(sentences_by_turn.get(turn.index, []), text)
        for first in range(0, len(spans), segmenter.window):
            group = spans[first : first + segmenter.window]
            start, end = group[0][0], group[-1][1]
            utterances.append(
                Utterance(
                    utterance_id=utterance_id(transcript.content_hash, start, end),
                    transcript_id=transcript.transcript_id,
                    turn=turn.index,
                    position=len(utterances),
                    speaker=turn.speaker,
                    start=start,
                    end=end,
                    text=text[start:end],
                    municipality=transcript.municipality,
                    respondent=transcript.respondent,
                    role=transcript.role,
                    question=question,
                )
            )
    return utterances
