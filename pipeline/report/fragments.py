"""The fragments behind each verdict, for the report's "evidence one click away" (issue 21).

Every cell of the municipality x incentive grid opens the fragments that carry it: the quote,
its direction and facet, the respondent's code, whether a person coded or checked it or the
model did, and the model's confidence. Each fragment links to its place in the web app's
transcript view when the report knows the app's address (``Settings.review_url``), and names
the transcript and turn otherwise. :func:`checked_share` counts how much of the evidence a
person has coded or checked, the first figure the report shows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote

import pandas as pd

from pipeline.rating import Rating

FRAGMENT_LENGTH = 320  # characters of a fragment shown in a cell (the whole report stays a few MB at most)
FRAGMENTS_PER_CELL = 12  # municipal cells; a region's cell shows the same number of its best fragments


@dataclass(frozen=True, slots=True)
class CellFragment:
    """One coded fragment as a report cell shows it.

    ``source`` is ``human`` (coded or checked by a person) or ``predicted`` (the model's code,
    unchecked); ``confidence`` is the model's probability of the code (1.0 for a person's);
    ``turn`` the turn in the transcript (None when unknown).
    """

    utterance_id: str
    transcript_id: str
    respondent: str
    role: str
    text: str
    direction: str
    facet: str
    source: str
    confidence: float
    turn: int | None = None

    def __post_init__(self) -> None:
        if self.source not in ("human", "predicted"):
            raise ValueError(f"CellFragment.source: expected 'human' or 'predicted', got {self.source!r}")

    @property
    def checked(self) -> bool:
        """Coded or checked by a person."""
        return self.source == "human"


@dataclass(frozen=True, slots=True)
class CheckedShare:
    """How much of the evidence behind the verdicts a person has coded or checked."""

    n_fragments: int
    n_checked: int

    @property
    def share(self) -> float | None:
        """``n_checked / n_fragments``; None without fragments."""
        return self.n_checked / self.n_fragments if self.n_fragments else None


def _text(value: object) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def _turn(value: object) -> int | None:
    try:
        number = int(float(str(value)))
    except (TypeError, ValueError):
        return None
    return number


def fragment_index(codings: pd.DataFrame | None) -> dict[tuple[str, str], CellFragment]:
    """``(utterance id, code) -> CellFragment`` of a codings table, a person's coding first.

    Where an utterance has both, the human row wins (as in rating); among predictions of one
    code the most probable. Rows without text or code are left out.
    """
    if codings is None or codings.empty or "text" not in codings.columns:
        return {}
    frame = codings.dropna(subset=["text", "code"])
    columns = {name: frame[name].tolist() if name in frame.columns else [None] * len(frame)
               for name in ("utterance_id", "transcript_id", "respondent", "role", "text", "direction", "facet", "source",
                            "weight", "turn", "code")}
    index: dict[tuple[str, str], CellFragment] = {}
    for i in range(len(frame)):
        source = "human" if _text(columns["source"][i]) == "human" else "predicted"
        weight = pd.to_numeric(columns["weight"][i], errors="coerce")
        confidence = 1.0 if source == "human" else (0.0 if pd.isna(weight) else float(weight))
        fragment = CellFragment(
            utterance_id=_text(columns["utterance_id"][i]), transcript_id=_text(columns["transcript_id"][i]),
            respondent=_text(columns["respondent"][i]), role=_text(columns["role"][i]), text=_text(columns["text"][i]),
            direction=_text(columns["direction"][i]), facet=_text(columns["facet"][i]), source=source,
            confidence=confidence, turn=_turn(columns["turn"][i]))
        key = (fragment.utterance_id, _text(columns["code"][i]))
        known = index.get(key)
        if known is None or (fragment.checked, fragment.confidence) > (known.checked, known.confidence):
            index[key] = fragment
    return index


def cell_fragments(rating: Rating, index: Mapping[tuple[str, str], CellFragment], *,
                   limit: int = FRAGMENTS_PER_CELL) -> tuple[list[CellFragment], int]:
    """The fragments of one verdict in the order rating gives them (best support first), up to
    ``limit``, and how many it has in all."""
    found = [index[(u, rating.code)] for u in rating.evidence if (u, rating.code) in index]
    return found[:limit], len(found)


def checked_share(ratings: Sequence[Rating], index: Mapping[tuple[str, str], CellFragment]) -> CheckedShare:
    """The share of the evidence behind the municipal verdicts that a person coded or checked.

    Counts each (utterance, incentive) fragment once, over every municipality's verdicts.
    """
    keys = {(u, r.code) for r in ratings if r.level == "municipality" for u in r.evidence}
    known = [index[key] for key in keys if key in index]
    return CheckedShare(len(known), sum(f.checked for f in known))


def transcript_link(fragment: CellFragment, base_url: str | None) -> str | None:
    """The fragment's address in the web app's transcript view, or None without a base URL.

    ``<base>/transcripts/<transcript id>#u<utterance id>``.
    """
    if not base_url or not fragment.transcript_id:
        return None
    return (f"{base_url.rstrip('/')}/transcripts/{quote(fragment.transcript_id, safe='')}"
            f"#u{quote(fragment.utterance_id, safe='')}")


def short_text(text: str, length: int = FRAGMENT_LENGTH) -> str:
    """``text`` cut at a word boundary to about ``length`` characters, with an ellipsis."""
    text = " ".join(text.split())
    return text if len(text) <= length else text[:length].rsplit(" ", 1)[0] + " …"
