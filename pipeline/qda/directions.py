"""Direction codes: how researchers code the direction of evidence in a QDA program (issue 18).

The thesis coded direction with separate codes, ``Positief`` / ``Negatief``, put on the same
selection as the incentive code (siblings), or as child codes of each incentive
(``Tijd voor evaluatie::Negatief``). This module recognises such codes by name, and decides
which direction a coded selection gets from the direction codes on it or around it:

1. a direction code on the *same* selection applies to every code on that selection;
2. otherwise direction codes the same user put on *overlapping* selections apply, where the
   two overlap by at least half of the shorter one (a clause inside a sentence, a sentence
   inside a paragraph, a selection shifted by a word; not the neighbouring sentence);
3. two different directions from the same rule are a conflict: the coding gets ``0`` (mixed)
   and the conflict is reported.

codeer's own exports write direction codes under a folder ``Richting`` with stable GUIDs, so a
round trip through NVivo, ATLAS.ti, MAXQDA or QualCoder keeps directions even where the
program drops selection descriptions.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.qda.archive import qda_guid

DIRECTIONS = ("+", "-", "0")
# Name and description of the codes codeer writes for each direction.
DIRECTION_CODE_NAMES = {"+": "Positief", "-": "Negatief", "0": "Gemengd"}
DIRECTION_FOLDER_NAME = "Richting"
DIRECTION_FOLDER_GUID = qda_guid("direction", "folder")
DIRECTION_CODE_GUIDS = {direction: qda_guid("direction", direction) for direction in DIRECTIONS}
_DIRECTION_DESCRIPTIONS = {
    "+": "Het fragment laat zien dat de prikkel aanwezig is en leren stimuleert (richting +).",
    "-": "Het fragment laat zien dat de prikkel ontbreekt of leren belemmert (richting -).",
    "0": "Het fragment is gemengd of neutraal over de prikkel (richting 0).",
}
_DIRECTION_WORDS = {
    "+": ("+", "plus", "pos", "positief", "positieve", "positive", "positives", "bevorderend", "bevorderlijk",
          "stimulerend", "helpend", "aanwezig", "present", "pro"),
    "-": ("-", "−", "–", "min", "neg", "negatief", "negatieve", "negative", "negatives", "belemmerend",
          "belemmering", "hinderend", "remmend", "afwezig", "absent", "contra"),
    "0": ("0", "neutraal", "neutral", "gemengd", "mixed", "ambivalent"),
}
_WORD_DIRECTION = {word: direction for direction, words in _DIRECTION_WORDS.items() for word in words}
# Words that may stand beside a direction word in a code's name without changing it.
_FILLER = {"richting", "direction", "code", "bewijs", "evidence", "of", "en", "and", "or", "valentie", "valence"}
# Folders that hold direction codes rather than topics.
_FOLDER_WORDS = {"richting", "richtingen", "direction", "directions", "valentie", "valence", "polariteit",
                 "polarity", "sentiment"}
_TOKEN = re.compile(r"[^\W\d_]+|[+\-−–]|0")


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def direction_of_name(name: str) -> str | None:
    """The direction a code's name stands for, or None when it names a topic.

    ``Positief``, ``negative``, ``+``, ``−``, ``Belemmerend``, ``Positief (+)`` and
    ``Richting: negatief`` name a direction; ``Negatieve werkdruk`` does not (it names a topic).

    Examples
    --------
    >>> direction_of_name("Positief (+)"), direction_of_name("belemmerend"), direction_of_name("Werkdruk")
    ('+', '-', None)
    """
    tokens = [token for token in _TOKEN.findall(_fold(name)) if token not in _FILLER]
    found = {_WORD_DIRECTION.get(token) for token in tokens}
    return found.pop() if len(found) == 1 and None not in found else None


def is_direction_folder(name: str) -> bool:
    """True when a code's name says it groups direction codes (``Richting``, ``Direction`` ...)."""
    return _fold(name).strip() in _FOLDER_WORDS


def direction_code_description(direction: str) -> str:
    """The description codeer writes on its code for ``direction``."""
    return f"{_DIRECTION_DESCRIPTIONS[direction]}\n\n[codeer] direction {direction}"


@dataclass(frozen=True, slots=True)
class DirectionMark:
    """A direction code put on a selection ``[start, end)`` by a user."""

    selection: str
    start: int
    end: int
    direction: str
    annotator: str


@dataclass(frozen=True, slots=True)
class DirectionChoice:
    """The direction a selection's codings get from direction codes.

    ``direction`` is None when no direction code applies; ``conflict`` lists the directions
    found when they disagree (``direction`` is then ``0``); ``marks`` are the selections whose
    direction codes were used.
    """

    direction: str | None
    conflict: tuple[str, ...] = ()
    marks: tuple[str, ...] = ()


def _overlap_applies(start: int, end: int, mark: DirectionMark) -> bool:
    shared = min(end, mark.end) - max(start, mark.start)
    shorter = min(end - start, mark.end - mark.start)
    return shared > 0 and 2 * shared >= shorter


def choose_direction(selection: str, start: int, end: int, annotator: str, own: Sequence[str],
                     marks: Sequence[DirectionMark]) -> DirectionChoice:
    """The direction for the codings of one selection (see the module docstring for the rule).

    Parameters
    ----------
    selection, start, end, annotator
        The coded selection: its GUID, offsets and the user of its codings.
    own
        The directions of direction codes on this same selection.
    marks
        Every direction-coded selection of the same source.
    """
    if own:
        found = tuple(sorted(set(own)))
        return DirectionChoice(found[0], (), (selection,)) if len(found) == 1 else DirectionChoice("0", found, (selection,))
    applying = [m for m in marks if m.selection != selection and m.annotator == annotator and _overlap_applies(start, end, m)]
    if not applying:
        return DirectionChoice(None)
    found = tuple(sorted({m.direction for m in applying}))
    used = tuple(sorted({m.selection for m in applying}))
    return DirectionChoice(found[0], (), used) if len(found) == 1 else DirectionChoice("0", found, used)
