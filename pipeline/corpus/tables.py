"""Tables of utterances in and out: .csv, .jsonl and .xlsx, as pandas DataFrames."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd

from pipeline.errors import TableFormatError
from pipeline.hashing import text_hash
from pipeline.records import Role, Speaker, Transcript, Turn, Utterance

TABLE_SUFFIXES = (".csv", ".jsonl", ".xlsx")

logger = logging.getLogger(__name__)

# the roles researchers write in a table's role column, as codeer's (case and spacing ignored);
# the thesis interviewed managers and policy officers per municipality
ROLE_NAMES: dict[str, Role] = {
    "beleidsmedewerker": Role.BELEIDSMEDEWERKER, "beleidsadviseur": Role.BELEIDSMEDEWERKER,
    "manager": Role.MANAGER, "teammanager": Role.MANAGER, "teamleider": Role.MANAGER, "leidinggevende": Role.MANAGER,
    "regio": Role.REGIO, "document": Role.DOCUMENT, "other": Role.OTHER, "": Role.OTHER,
}


def role_of(value: object) -> Role | None:
    """codeer's role for the text of a table's role cell (an empty cell is ``other``); None for a
    role codeer does not know."""
    return ROLE_NAMES.get(" ".join(str(value or "").split()).casefold())


def table_roles(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """``frame`` with its ``role`` column as codeer's roles. A role codeer does not know (a
    wethouder, a consultant) counts as ``other``, with one warning per table that names the values,
    so that one unexpected word never stops a rating."""
    if "role" not in frame.columns:
        return frame
    unknown: Counter[str] = Counter()
    roles = []
    for value in frame["role"]:
        role = role_of(value)
        if role is None:
            unknown[str(value)] += 1
        roles.append((role or Role.OTHER).value)
    if unknown:
        logger.warning("%s: role(s) %s counted as 'other' (codeer's roles: %s)", path.name,
                       ", ".join(f"{value!r} ({n} rows)" for value, n in sorted(unknown.items())),
                       ", ".join(sorted(set(ROLE_NAMES) - {""})))
    return frame.assign(role=roles)


def read_table(path: Path, required: Sequence[str] = ("id", "text")) -> pd.DataFrame:
    """Read a .csv, .jsonl or .xlsx table as strings and check its required columns."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        elif suffix == ".jsonl":
            rows = []
            with open(path, encoding="utf-8-sig") as handle:
                for number, line in enumerate(handle, 1):
                    if line.strip():
                        try:
                            rows.append(json.loads(line))
                        except json.JSONDecodeError as err:
                            raise TableFormatError(f"{path}, line {number}: not valid JSON ({err.msg}). "
                                                   "Each line must be one JSON object.") from err
            # a key some rows lack is None in those rows (JSON null on the way out), never NaN
            frame = pd.DataFrame(rows)
            frame = frame.astype(object).where(frame.notna(), None)
        elif suffix == ".xlsx":
            frame = pd.read_excel(path, dtype=str).fillna("")
        else:
            raise TableFormatError(f"{path}: unsupported table type {suffix!r}; use one of {', '.join(TABLE_SUFFIXES)}.")
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        if isinstance(err, TableFormatError):
            raise
        raise TableFormatError(f"{path}: cannot read the table ({err}).") from err
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise TableFormatError(f"{path}: missing column(s) {', '.join(missing)}; "
                               f"found {', '.join(map(str, frame.columns)) or 'none'}. "
                               f"Required: {', '.join(required)}.")
    for column in ("id", "text"):
        if column in frame.columns:
            frame[column] = frame[column].astype(str)
            empty = frame.index[frame[column].str.strip() == ""]
            if len(empty):
                raise TableFormatError(f"{path}, row {int(empty[0]) + 2}: empty {column!r}. Every row needs an id and a text.")
    if "id" in frame.columns:
        duplicated = frame["id"][frame["id"].duplicated()]
        if len(duplicated):
            raise TableFormatError(f"{path}: id {duplicated.iloc[0]!r} occurs more than once. Ids must be unique.")
    return frame


def transcripts_from_table(frame: pd.DataFrame, path: Path) -> Iterator[tuple[Transcript, list[Utterance]]]:
    """Group pre-segmented rows into synthetic transcripts (one per ``transcript`` value, or
    per municipality and respondent), keeping each row as one utterance with its own id."""
    frame = frame.copy()
    if "transcript" not in frame.columns or (frame["transcript"] == "").all():
        frame["transcript"] = frame["municipality"] + "/" + frame["respondent"]
    for key, group in frame.groupby("transcript", sort=True):
        parts, spans, position = [], [], 0
        for text in group["text"]:
            spans.append((position, position + len(text)))
            parts.append(text)
            position += len(text) + 2
        text = "\n\n".join(parts)
        content_hash = text_hash(f"{path.name}:{key}\n{text}")
        first = group.iloc[0]
        role = role_of(first.get("role")) or Role.OTHER
        speaker = Speaker.DOCUMENT if role == Role.DOCUMENT else Speaker.RESPONDENT
        turns = tuple(Turn(i, speaker, "tabel", s, e, i + 1) for i, (s, e) in enumerate(spans))
        transcript = Transcript(
            source=f"{path.name}#{key}", path=str(path), content_hash=content_hash, text=text,
            municipality=str(first["municipality"]), respondent=str(first["respondent"]), role=role,
            turns=turns, file_format=path.suffix.lstrip("."), encoding="table",
        )
        utterances = [
            Utterance(utterance_id=str(row["id"]), transcript_id=transcript.transcript_id,
                      turn=int(row["turn"]) if str(row.get("turn", "")).strip().isdigit() else index,
                      position=index, speaker=speaker, start=start, end=end, text=str(row["text"]),
                      municipality=str(row["municipality"]), respondent=str(row["respondent"]), role=role)
            for index, ((_, row), (start, end)) in enumerate(zip(group.iterrows(), spans, strict=True))
        ]
        yield transcript, utterances


def utterance_json(utterance: Utterance) -> dict[str, object]:
    """The JSON row of an utterance (``codeer utterances --format jsonl``)."""
    return {
        "id": utterance.utterance_id, "transcript": utterance.transcript_id,
        "municipality": utterance.municipality, "respondent": utterance.respondent,
        "role": utterance.role.value, "turn": utterance.turn, "start": utterance.start,
        "end": utterance.end, "text": utterance.text, "question": utterance.question,
    }
