"""De-identification, the stage between reading a transcript and storing it (issue 19).

Names of people, e-mail addresses, phone numbers, URLs and long numbers (BSN, other
identifiers) in the text are replaced by tags that are stable within a transcript: the first
person mentioned becomes ``[PERSOON-1]`` wherever they are named ("Pieter Bakker", later
"Pieter" or "Bakker"), the respondent's own name becomes ``[RESPONDENT]``. The header's
``Naam respondent:`` value becomes the respondent's code, and speaker labels that are names
(``Marieke de Vries:``) become ``Respondent:`` or ``Onderzoeker:``, so the stored text keeps the
transcript format. Organisations and places (gemeente Aalten, GGD, Wmo-loket) stay: the analysis
needs them.

Detection is `deduce <https://github.com/vmenger/deduce>`_ (rule- and list-based Dutch
de-identification; its lookup lists ship in its wheel, so it works offline) with its location,
institution, date and age annotators switched off, plus the names codeer knows from the header
and the speaker labels, less an allow-list of words that are not names in this domain
(``pipeline/resources/privacy/allow_list.txt``, the transcript's municipality, and the
researcher's own list). What replaced what is never kept: only the de-identified text is stored.
"""

from __future__ import annotations

import bisect
import functools
import logging
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pipeline.corpus.transcripts import (
    _CODE_LIKE,
    _LABEL_LINE,
    _STAMP_ONLY,
    HEADER_KEYS,
    INTERVIEWER_LABELS,
    RESPONDENT_LABELS,
)
from pipeline.errors import ConfigError
from pipeline.hashing import text_hash
from pipeline.records import Speaker, Transcript, Utterance

logger = logging.getLogger(__name__)

RESPONDENT_TAG = "[RESPONDENT]"
# deduce's tags -> ours; everything else deduce finds (places, institutions, dates, ages) is kept
_KINDS = {
    "persoon": "PERSOON", "patient": "PERSOON", "emailadres": "EMAIL", "telefoonnummer": "TELEFOON",
    "url": "URL", "bsn": "BSN", "id": "ID",
}
# deduce annotator groups switched off: places and organisations are what the analysis is about;
# dates and ages of an interview about an organisation do not identify a person
_DISABLED_GROUPS = frozenset({"locations", "institutions", "dates", "ages"})
_INTERFIXES = frozenset({"de", "der", "den", "van", "von", "het", "ten", "ter", "te", "la", "le", "du", "op", "in", "'t"})
_DOCUMENT_LABELS = frozenset({"kop", "tekst", "alinea"})
_COMPASS = frozenset({"noord", "oost", "zuid", "west", "midden", "noordoost", "noordwest", "zuidoost", "zuidwest"})
_WORD = re.compile(r"[^\W\d_][\w'’-]*")


@dataclass(frozen=True, slots=True)
class Replacement:
    """One span of the original text and the tag that replaces it."""

    start: int
    end: int
    tag: str
    kind: str  # PERSOON, EMAIL, TELEFOON, URL, BSN, ID, RESPONDENT, HEADER, LABEL


@dataclass(frozen=True, slots=True)
class OffsetMap:
    """Maps offsets in the original text to offsets in the de-identified text."""

    starts: tuple[int, ...] = ()
    ends: tuple[int, ...] = ()
    new_starts: tuple[int, ...] = ()
    new_ends: tuple[int, ...] = ()

    def __call__(self, offset: int) -> int:
        """The new offset of ``offset``; an offset inside a replaced span maps to that span's start."""
        index = bisect.bisect_right(self.starts, offset) - 1
        if index < 0:
            return offset
        if offset < self.ends[index]:
            return self.new_starts[index]
        return self.new_ends[index] + offset - self.ends[index]


@dataclass(frozen=True, slots=True)
class Deidentified:
    """A de-identified transcript and what was done to it (counts only, never the names)."""

    transcript: Transcript
    counts: dict[str, int] = field(default_factory=dict)
    offsets: OffsetMap = field(default_factory=OffsetMap)

    @property
    def n_replaced(self) -> int:
        """Spans replaced in all."""
        return sum(self.counts.values())


def _fold(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


class Deidentifier:
    """Finds identifiers in text. Load once with :func:`load_deidentifier` (it reads deduce's
    lookup lists, about a second) and reuse it for every transcript."""

    def __init__(self, deduce_model: Any, allow: Iterable[str] = (), *, places: Iterable[str] = (),
                 common_words: Iterable[str] = ()) -> None:
        self._deduce = deduce_model
        self.allow = frozenset(_fold(word) for word in allow if word.strip())
        self.places = frozenset(_fold(word) for word in places if word.strip())
        self.common_words = frozenset(_fold(word) for word in common_words if word.strip())
        self.name = f"deduce-{_deduce_version()}+allow{len(self.allow)}"

    def find(self, text: str, allow: frozenset[str] = frozenset()) -> list[tuple[int, int, str]]:
        """``(start, end, kind)`` of every identifier deduce finds in ``text``; what looks like a
        name but is allow-listed, a place or a common word is left out (see :meth:`is_name`)."""
        if not text.strip():
            return []
        document = self._deduce.deidentify(text, disabled=set(_DISABLED_GROUPS))
        found = []
        for annotation in document.annotations:
            kind = _KINDS.get(annotation.tag) or next(
                (ours for theirs, ours in _KINDS.items() if theirs in annotation.tag.split("+")), None)
            if kind is None:
                continue
            start, end = annotation.start_char, annotation.end_char
            if kind == "PERSOON":
                start = _trim_leading_words(text, start, end)
                end = self._trim_trailing_words(text, start, end, allow)
                if start >= end or not self.is_name(text[start:end], allow):
                    continue
            found.append((start, end, kind))
        return found

    def _trim_trailing_words(self, text: str, start: int, end: int, allow: frozenset[str]) -> int:
        """deduce reads "Sandra Wolters van het Wmo-loket" as one surname with an interfix; cut
        the span before an interfix that only allow-listed words or places follow, or before a
        word that continues as a compound ("Wmo-loket")."""
        words = list(_WORD.finditer(text, start, end))
        allowed = self.allow | allow
        if words and end < len(text) and text[end] == "-" and text[end + 1:end + 2].isalpha():
            words = words[:-1]  # the last word is the start of a compound, not a name
            end = words[-1].end() if words else start
        for index in range(1, len(words)):
            if _fold(words[index].group()) not in _INTERFIXES:
                continue
            rest = [_fold(w.group()) for w in words[index:] if _fold(w.group()) not in _INTERFIXES]
            if len(rest) < len(words) - index and all(word in allowed or word in self.places for word in rest):
                return words[index - 1].end()
        return end

    def is_name(self, span: str, allow: frozenset[str] = frozenset()) -> bool:
        """Whether a span deduce took for a person's name is one. Not a name: a span on an
        allow-list (packaged, the researcher's, this transcript's municipality); a span whose
        words are all places the analysis needs (municipalities, provinces, regions) or domain
        words, unless it starts with an interfix ("van Buren" is a person); one capitalised
        common word ("Geven", "Mooi" at the start of a sentence)."""
        allowed = self.allow | allow
        folded = _fold(span)
        if folded in allowed:
            return False
        words = [_fold(word) for word in _WORD.findall(span)]
        if folded in self.places:  # "Hollandse Kroon", "Oude IJsselstreek"
            return False
        # interfixes and lone capitals ("B Vragenlijst": the questionnaire of B) do not make a name
        core = [word for word in words if word not in _INTERFIXES and len(word) > 1]
        if not core or all(word in allowed for word in core):
            return False
        if words[0] not in _INTERFIXES and all(
                word in allowed or all(part in self.places or part in _COMPASS for part in word.split("-"))
                for word in core):
            return False  # "Gelderland", "Oost-Gelderland", "gemeente Aalten"
        return not (len(words) == 1 and words[0] in self.common_words)


def _trim_leading_words(text: str, start: int, end: int) -> int:
    """deduce includes a preceding noun in a name ("collega Pieter Bakker"); the noun stays."""
    while True:
        match = _WORD.match(text, start, end)
        if match is None or not match.group().islower() or match.group().casefold() in _INTERFIXES:
            return start
        rest = text[match.end():end]
        if not rest[:1].isspace() or text[match.end():match.end() + 1] == ".":
            return start
        start = match.end() + len(rest) - len(rest.lstrip())


def _deduce_version() -> str:
    from importlib.metadata import version

    return version("deduce")


def load_allow_list() -> list[str]:
    """The packaged allow-list: words that look like names to deduce but are not in this domain."""
    from pipeline.resources import privacy_allow_list_file

    lines = privacy_allow_list_file().read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def load_deidentifier(extra_allow: Iterable[str] = ()) -> Deidentifier:
    """Load deduce (its lookup lists ship in its wheel; nothing is fetched) with the packaged
    allow-list plus ``extra_allow`` (e.g. :attr:`pipeline.config.Settings.privacy_allow`), and
    deduce's own lists of Dutch municipalities, provinces and regions and of common words.

    Raises :class:`~pipeline.errors.ConfigError` when deduce is not installed."""
    try:
        import deduce
    except ImportError as err:
        raise ConfigError("de-identification needs deduce, which is not installed. Run 'make install', or "
                          "'pip install --no-deps deduce==3.0.6' in codeer's environment.") from err
    from pathlib import Path

    lookup = Path(deduce.__file__).parent / "data" / "lookup" / "src"
    places = [*_lines(lookup / "locations" / "lst_placename" / "lst_municipality" / "items.txt"),
              *_lines(lookup / "locations" / "lst_placename" / "lst_province" / "items.txt"),
              *_lines(lookup / "locations" / "lst_placename" / "lst_region" / "items.txt")]
    common = [*_lines(lookup / "whitelist" / "lst_common_word" / "items.txt"),
              *_lines(lookup / "whitelist" / "lst_stop_word" / "items.txt")]
    return Deidentifier(_deduce_model(), [*load_allow_list(), *extra_allow], places=places, common_words=common)


@functools.lru_cache(maxsize=1)
def _deduce_model() -> Any:
    """deduce's de-identifier, once per process: it reads ~80 MB of lookup structures (seconds)
    and is stateless after that, so every ingest, flow task and test in a process shares it."""
    from deduce import Deduce

    return Deduce()


def _lines(path: Any) -> list[str]:
    if not path.is_file():  # a later deduce may move its lists: then only the allow-list applies
        logger.warning("deduce's list %s is missing; de-identification uses the allow-list only", path.name)
        return []
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# the transcript stage ------------------------------------------------------------------------
def _header_value_spans(text: str, first_turn_start: int) -> list[tuple[str, int, int]]:
    """``(field, value start, value end)`` of the header lines before the first turn."""
    spans, position = [], 0
    for line in text[:first_turn_start].split("\n"):
        stripped = line.strip()
        key, sep, value = stripped.partition(":")
        if stripped and sep and key.strip().lower() in HEADER_KEYS and not _STAMP_ONLY.match(line):
            value_start = position + line.index(":") + 1
            value_start += len(line[line.index(":") + 1:]) - len(line[line.index(":") + 1:].lstrip())
            spans.append((HEADER_KEYS[key.strip().lower()], value_start, position + len(line.rstrip())))
        position += len(line) + 1
    return spans


def _is_name_label(label: str, respondent: str) -> bool:
    key = label.strip().casefold()
    if key in INTERVIEWER_LABELS or key in RESPONDENT_LABELS or key in _DOCUMENT_LABELS:
        return False
    return not (_CODE_LIKE.match(label.strip()) or label.strip() == respondent)


def _name_parts(name: str) -> list[str]:
    """The full name and the parts a speaker may use alone: first name, surname (with and
    without its interfix), each part of a double surname."""
    words = name.split()
    parts = {name.strip()}
    if len(words) >= 2:
        parts.add(words[0])
        rest = words[1:]
        parts.add(" ".join(rest))
        core = [w for w in rest if w.casefold() not in _INTERFIXES]
        if core:
            parts.add(" ".join(core))
        for piece in re.split(r"-", " ".join(rest)):
            piece_words = [w for w in piece.split() if w.casefold() not in _INTERFIXES]
            if piece_words:
                parts.add(" ".join(piece_words))
    return sorted((p for p in parts if len(p) >= 3 and p[:1].isupper()), key=len, reverse=True)


class _Tags:
    """Stable tags within one transcript: one per person, numbered by first mention."""

    def __init__(self) -> None:
        self.people: list[tuple[frozenset[str], str]] = []
        self.others: dict[tuple[str, str], str] = {}
        self.counts: Counter[str] = Counter()

    def person(self, name: str) -> str:
        words = frozenset(w for w in (_fold(x) for x in _WORD.findall(name)) if w not in _INTERFIXES)
        for known, tag in self.people:
            if words and (words == known or words <= known):
                return tag
        matches = [tag for known, tag in self.people if words and known < words]
        if len(matches) == 1:  # "Bakker" first, "Pieter Bakker" later: one person
            return matches[0]
        self.counts["PERSOON"] += 1
        tag = f"[PERSOON-{self.counts['PERSOON']}]"
        self.people.append((words, tag))
        return tag

    def other(self, kind: str, value: str) -> str:
        key = (kind, _fold(value))
        if key not in self.others:
            self.counts[kind] += 1
            self.others[key] = f"[{kind}-{self.counts[kind]}]"
        return self.others[key]


def _known_name_spans(body: str, offset: int, names: Sequence[tuple[str, str]]) -> list[tuple[int, int, str, str]]:
    spans = []
    for name, tag in names:
        for part in _name_parts(name):
            for match in re.finditer(rf"(?<![\w-]){re.escape(part)}(?![\w-])", body):
                spans.append((offset + match.start(), offset + match.end(), tag, "RESPONDENT" if tag == RESPONDENT_TAG else "PERSOON"))
    return spans


def deidentify_transcript(transcript: Transcript, deidentifier: Deidentifier, *,
                          allow: Iterable[str] = ()) -> Deidentified:
    """The transcript with every identifier replaced by its tag, turns and header moved along.

    ``allow``: words never taken for names in this transcript (its municipality is added).
    The result's :attr:`Transcript.content_hash` is that of the de-identified text, so the same
    file ingested again gives the same transcript id.
    """
    text = transcript.text
    local_allow = frozenset(_fold(w) for w in (*allow, transcript.municipality) if w and w.strip())
    tags = _Tags()
    replacements: list[tuple[int, int, str, str]] = []
    first_start = min((turn.start for turn in transcript.turns), default=len(text))
    header_end = text.rfind("\n", 0, transcript.turns[0].start) + 1 if transcript.turns else len(text)
    header_end = min(header_end, first_start)

    # 1. the header: the respondent's name becomes the code; other values are searched below
    known: list[tuple[str, str]] = []
    searched: list[tuple[int, int]] = []
    for field_name, start, end in _header_value_spans(text, header_end):
        value = text[start:end]
        if field_name == "respondent":
            if value and value != transcript.respondent and not _CODE_LIKE.match(value):
                replacements.append((start, end, transcript.respondent, "HEADER"))
                known.append((value, RESPONDENT_TAG))
        elif start < end:
            searched.append((start, end))

    # 2. speaker labels that are names become the standard labels
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
    for turn in transcript.turns:
        if not _is_name_label(turn.label, transcript.respondent) or turn.line - 1 >= len(line_starts):
            continue
        line_start = line_starts[turn.line - 1]
        match = _LABEL_LINE.match(text[line_start:turn.start])
        if match is None or match.group("label").strip() != turn.label:
            continue
        standard = "Respondent" if turn.speaker == Speaker.RESPONDENT else "Onderzoeker"
        label_start = line_start + match.start("label")
        replacements.append((label_start, label_start + len(turn.label), standard, "LABEL"))
        if turn.speaker == Speaker.RESPONDENT:
            known.append((turn.label, RESPONDENT_TAG))
        elif all(name != turn.label for name, _ in known):
            known.append((turn.label, tags.person(turn.label)))

    # 3. the words: known names first, then what deduce finds
    searched.extend((turn.start, turn.end) for turn in transcript.turns)
    for start, end in searched:
        body = text[start:end]
        spans = _known_name_spans(body, start, known)
        for found_start, found_end, kind in deidentifier.find(body, local_allow):
            spans.append((start + found_start, start + found_end, "", kind))
        for span_start, span_end, tag, kind in spans:
            replacements.append((span_start, span_end, tag, kind))

    chosen = _without_overlaps(replacements)
    resolved = []
    for start, end, tag, kind in chosen:
        if not tag:
            tag = tags.person(text[start:end]) if kind == "PERSOON" else tags.other(kind, text[start:end])
        resolved.append(Replacement(start, end, tag, kind))
    return _apply(transcript, resolved)


def _without_overlaps(spans: list[tuple[int, int, str, str]]) -> list[tuple[int, int, str, str]]:
    """Keep, of overlapping spans, the one that starts first (then the longest; known names
    before deduce's guesses)."""
    ordered = sorted(spans, key=lambda s: (s[0], -(s[1] - s[0]), s[2] == ""))
    kept: list[tuple[int, int, str, str]] = []
    for span in ordered:
        if kept and span[0] < kept[-1][1]:
            continue
        kept.append(span)
    return kept


def _apply(transcript: Transcript, replacements: Sequence[Replacement]) -> Deidentified:
    text = transcript.text
    pieces, position = [], 0
    starts, ends, new_starts, new_ends = [], [], [], []
    length = 0
    for item in replacements:
        pieces.append(text[position:item.start])
        length += item.start - position
        starts.append(item.start)
        ends.append(item.end)
        new_starts.append(length)
        pieces.append(item.tag)
        length += len(item.tag)
        new_ends.append(length)
        position = item.end
    pieces.append(text[position:])
    new_text = "".join(pieces)
    offsets = OffsetMap(tuple(starts), tuple(ends), tuple(new_starts), tuple(new_ends))
    turns = tuple(replace(turn, start=offsets(turn.start), end=offsets(turn.end)) for turn in transcript.turns)
    header = tuple((key, _apply_to_value(value, text, replacements)) for key, value in transcript.header)
    counts = Counter(item.kind for item in replacements)
    result = replace(transcript, text=new_text, content_hash=text_hash(new_text), turns=turns, header=header)
    return Deidentified(result, dict(sorted(counts.items())), offsets)


def _apply_to_value(value: str, text: str, replacements: Sequence[Replacement]) -> str:
    """A header value with the replacements made in its line of the text."""
    for item in sorted(replacements, key=lambda r: r.end - r.start, reverse=True):
        original = text[item.start:item.end]
        if original and original in value:
            value = value.replace(original, item.tag)
    return value


def deidentify_rows(transcript: Transcript, utterances: Sequence[Utterance], deidentifier: Deidentifier, *,
                    allow: Iterable[str] = ()) -> tuple[Transcript, list[Utterance]]:
    """:func:`deidentify_transcript` for a pre-segmented table's transcript: each utterance gets
    its de-identified text and offsets (its id, given by the table, stays)."""
    result = deidentify_transcript(transcript, deidentifier, allow=allow)
    new, moved = result.transcript, result.offsets
    rows = []
    for utterance in utterances:
        start, end = moved(utterance.start), moved(utterance.end)
        rows.append(replace(utterance, transcript_id=new.transcript_id, start=start, end=end, text=new.text[start:end]))
    return new, rows
