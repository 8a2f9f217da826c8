"""Questionnaire responses: reading Google Forms exports and storing their answers.

:func:`read_questionnaire` reads a Google Forms export (.csv or .xlsx), tells the version from
its headers and checks every answer against the printed options (the definitions are in
:mod:`pipeline.corpus.questionnaire_forms`); :func:`ingest_questionnaire` stores them.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from pipeline.errors import QuestionnaireFormatError

logger = logging.getLogger(__name__)
from pipeline.corpus.questionnaire_forms import (
    _FIX,
    _NUMBERED,
    _RESPONDENT_CODE,
    _SEPARATOR,
    FIELDS,
    TABLE_SUFFIXES,
    AnswerOption,
    QuestionnaireDefinitions,
    QuestionnaireItem,
    QuestionnaireVersion,
    combine_scores,
    load_questionnaires,
    normalise_text,
)
from pipeline.records import (
    QuestionnaireAnswer,
    QuestionnaireResponse,
    QuestionnaireResponses,
)

if TYPE_CHECKING:
    from pipeline.store import Store


def read_questionnaire(
    path: Path | str, version: str | None = None, *, definitions: QuestionnaireDefinitions | None = None
) -> QuestionnaireResponses:
    """Read and validate a Google Forms export of a questionnaire.

    The first row holds the questions (with or without the ``Vraag N:`` prefix), each further
    row one respondent; a respondent-code and a municipality column are required, a
    ``Tijdstempel`` column is kept when present, columns that are no question of the
    version are ignored (and listed). Checkbox answers are separated by commas or
    semicolons. An empty cell is an unanswered item.

    Parameters
    ----------
    path : Path or str
        A ``.csv`` (comma, semicolon or tab separated; UTF-8) or ``.xlsx`` file.
    version : str, optional
        ``beleidsmedewerker`` or ``manager`` (any version of the definitions); default: the
        version whose questions the headers match.
    definitions : QuestionnaireDefinitions, optional
        Default :func:`load_questionnaires`.

    Returns
    -------
    QuestionnaireResponses

    Raises
    ------
    QuestionnaireFormatError
        Naming every problem: unknown answer options (row, column, item and the allowed
        options), missing columns, empty or duplicate respondent codes, an undetectable version.
    ConfigError
        ``version`` is not defined.

    Examples
    --------
    >>> responses = read_questionnaire("data/demo/questionnaires/managers.csv")
    >>> responses.version, len(responses.responses)
    ('manager', 8)
    """
    path = Path(path)
    definitions = definitions or load_questionnaires()
    headers, rows = _read_cells(path)
    if version is not None:
        chosen = definitions.version(version)
        columns = _map_columns(headers, chosen)
    else:
        chosen, columns = _detect_version(headers, definitions, path)
    _check_columns(headers, columns, chosen, path, explicit=version is not None)
    index_of = {key: index for index, key in columns.items()}
    problems: list[str] = []
    responses: list[QuestionnaireResponse] = []
    first_row: dict[str, int] = {}
    for offset, cells in enumerate(rows):
        row_number = offset + 2
        if not any(cell.strip() for cell in cells):
            continue
        respondent = cells[index_of["respondent"]].strip()
        where = f"row {row_number}" + (f" (respondent {respondent})" if respondent else "")
        if not respondent:
            problems.append(f"{where}: empty respondent code in column {headers[index_of['respondent']]!r}. "
                            "Every row needs the respondent's code (e.g. BA, MOIJ), never a name.")
        elif not _RESPONDENT_CODE.fullmatch(respondent):
            problems.append(f"{where}: {respondent[:40]!r} is not a respondent code; use letters and digits "
                            "only (e.g. BA, MOIJ), never a name.")
        elif respondent in first_row:
            problems.append(f"{where}: respondent {respondent} also answered in row {first_row[respondent]}. "
                            "Keep one submission per respondent.")
        else:
            first_row[respondent] = row_number
        municipality = re.sub(r"^gemeente\s+", "", cells[index_of["municipality"]].strip(), flags=re.IGNORECASE)
        if not municipality:
            problems.append(f"{where}: empty municipality in column {headers[index_of['municipality']]!r}.")
        answers = []
        for item in chosen.items:
            index = index_of.get(item.item_id)
            if index is None or not cells[index].strip():
                continue
            answer = _parse_answer(cells[index].strip(), item)
            if answer is None:
                listed = ", ".join(f'"{option.text}"' for option in item.options)
                how = "any of " if item.kind == "multiple" else ""
                problems.append(f'{where}, column "{headers[index]}" (item {item.item_id}): unknown answer '
                                f'"{_shorten(cells[index].strip())}". Allowed: {how}{listed}'
                                + (" (separated by commas)." if item.kind == "multiple" else "."))
                continue
            answers.append(answer)
        submitted = cells[index_of["timestamp"]].strip() if "timestamp" in index_of else ""
        responses.append(QuestionnaireResponse(respondent, municipality, row_number, submitted, tuple(answers)))
    if problems:
        raise QuestionnaireFormatError(path, problems, what=f"{len(problems)} problem(s) in the answers to the "
                                       f"{chosen.name} questionnaire", fix=_FIX)
    if not responses:
        raise QuestionnaireFormatError(path, ["the file has a header row but no responses"],
                                       what="no responses", fix="Export the responses again from Google Forms.")
    ignored = tuple(header for index, header in enumerate(headers) if index not in columns and header.strip())
    if ignored:
        logger.info("%s: ignored %d column(s) that are no question of the %s questionnaire", path, len(ignored), chosen.name)
    logger.info("%s: %s questionnaire, %d respondent(s)", path, chosen.name, len(responses))
    return QuestionnaireResponses(str(path), chosen.name, chosen.role, tuple(responses), ignored)


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _read_cells(path: Path) -> tuple[list[str], list[list[str]]]:
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise QuestionnaireFormatError(path, [f"unsupported file type {suffix or '(none)'!r}"], what="cannot read",
                                       fix=f"Export the responses as {' or '.join(TABLE_SUFFIXES)}.")
    try:
        if suffix == ".xlsx":
            frame = pd.read_excel(path, header=None, dtype=str).fillna("")
            table = [[str(cell) for cell in row] for row in frame.itertuples(index=False)]
        else:
            raw = path.read_bytes()
            try:
                text = raw.decode("utf-8-sig")
            except UnicodeDecodeError:
                text = raw.decode("cp1252")  # a CSV saved again by Excel on Windows
                logger.info("%s: not UTF-8, read as cp1252", path)
            try:
                dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
                delimiter = dialect.delimiter
            except csv.Error:
                delimiter = ","
            table = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except (OSError, ValueError, csv.Error) as err:
        raise QuestionnaireFormatError(path, [f"the file cannot be read ({err})"], what="cannot read",
                                       fix="Export the responses again from Google Forms as .csv.") from err
    if not table or not any(cell.strip() for cell in table[0]):
        raise QuestionnaireFormatError(path, ["the file is empty or has no header row"], what="cannot read",
                                       fix="Export the responses again from Google Forms as .csv.")
    width = max(len(row) for row in table)
    padded = [row + [""] * (width - len(row)) for row in table]
    return padded[0], padded[1:]


def _map_columns(headers: Sequence[str], version: QuestionnaireVersion) -> dict[int, str]:
    """Column index -> ``timestamp``/``respondent``/``municipality`` or an item id."""
    by_number = {item.number: item for item in version.items if item.number is not None}
    by_text: dict[str, list[QuestionnaireItem]] = {}
    for item in version.items:
        by_text.setdefault(normalise_text(item.question), []).append(item)
    assigned: dict[int, str] = {}
    used: set[str] = set()
    for index, header in enumerate(headers):
        norm = normalise_text(header)
        if not norm:
            continue
        field = next((name for name in FIELDS if name not in used and getattr(version, name).matches(norm)), None)
        if field is not None:
            assigned[index] = field
            used.add(field)
            continue
        numbered = _NUMBERED.match(norm)
        if numbered:
            candidate = by_number.get(int(numbered.group(1)))
            match = candidate if candidate is not None and normalise_text(candidate.question) == numbered.group(2) else None
        else:
            # repeated questions ("Zo ja, op welke manier?") are matched in printed order
            match = next((c for c in by_text.get(norm, []) if c.item_id not in used), None)
        if match is not None and match.item_id not in used:
            assigned[index] = match.item_id
            used.add(match.item_id)
    return assigned


def _n_closed(columns: dict[int, str], version: QuestionnaireVersion) -> int:
    return sum(1 for key in columns.values() if key not in FIELDS and version.item(key).kind != "open")


def _detect_version(
    headers: Sequence[str], definitions: QuestionnaireDefinitions, path: Path
) -> tuple[QuestionnaireVersion, dict[int, str]]:
    ranked = sorted(((_n_closed(columns, version), version, columns)
                     for version in definitions.versions
                     for columns in [_map_columns(headers, version)]), key=lambda entry: -entry[0])
    best_n, best, columns = ranked[0]
    if best_n == 0:
        shown = ", ".join(repr(_shorten(h, 40)) for h in headers[:4])
        raise QuestionnaireFormatError(
            path, [f"no column header is a closed question of the {' or '.join(definitions.names)} questionnaire "
                   f"(first headers: {shown})"],
            what="cannot tell which questionnaire this is",
            fix="Check that this is a Google Forms export of a questionnaire in pipeline/resources/annotations/questionnaires.yaml.")
    if len(ranked) > 1 and ranked[1][0] == best_n:
        raise QuestionnaireFormatError(
            path, [f"the headers fit the {best.name} and the {ranked[1][1].name} questionnaire equally well"],
            what="cannot tell which questionnaire this is", fix="Name it with --version.")
    return best, columns


def _check_columns(headers: Sequence[str], columns: dict[int, str], version: QuestionnaireVersion,
                   path: Path, *, explicit: bool) -> None:
    present = set(columns.values())
    problems = []
    for name, label in (("respondent", "respondent code"), ("municipality", "municipality")):
        if name not in present:
            spec = getattr(version, name)
            names = ", ".join(f'"{n}"' for n in (spec.question, *spec.aliases))
            problems.append(f"no {label} column; expected a column headed {names}")
    for item in version.items:
        if item.kind != "open" and item.item_id not in present:
            problems.append(f'no column for question {item.number} (item {item.item_id}): "{item.header}"')
    if problems:
        fix = ("Check that the file is an export of this questionnaire version, or that the form's questions "
               "match pipeline/resources/annotations/questionnaires.yaml.")
        if explicit:
            fix = "Check --version: " + fix
        raise QuestionnaireFormatError(path, problems, what=f"missing column(s) of the {version.name} questionnaire", fix=fix)


def _parse_answer(raw: str, item: QuestionnaireItem) -> QuestionnaireAnswer | None:
    """The validated answer, or None when ``raw`` is no (combination of) printed option(s)."""
    if item.kind == "open":
        return QuestionnaireAnswer(item.item_id, raw, (), None, None)
    if item.kind == "single":
        chosen = [_match_whole(raw, item)]
    else:
        chosen = _split_choices(raw, item)
    matched = [choice for choice in chosen if choice is not None]
    if not chosen or len(matched) < len(chosen):
        return None
    options = [option for option, _ in matched]
    texts = tuple(dict.fromkeys(option.text for option in options))
    answer = "; ".join(dict.fromkeys(f"{option.text} {extra}".strip() for option, extra in matched))
    return QuestionnaireAnswer(item.item_id, answer, texts, combine_scores(options), item.code)


def _match_whole(text: str, item: QuestionnaireItem) -> tuple[AnswerOption, str] | None:
    option = item.option(text)
    if option is not None:
        return option, ""
    for option in item.options:
        if option.open:
            extra = _after_open_option(text, option)
            if extra is not None:
                return option, extra
    return None


def _after_open_option(text: str, option: AnswerOption) -> str | None:
    """The respondent's words after an open option ("..., namelijk: teamapp"), or None."""
    wanted = normalise_text(option.text)
    for end in range(len(text) + 1):
        if normalise_text(text[:end]) == wanted and (end == len(text) or not text[end].isalnum() or wanted.endswith(":")):
            return text[end:].strip()
    return None


def _split_choices(raw: str, item: QuestionnaireItem) -> list[tuple[AnswerOption, str] | None]:
    # options may themselves contain commas ("Op een andere manier, namelijk:"), so the longest
    # run of comma/semicolon-separated pieces that is an option wins; an open option takes the rest
    parts = _SEPARATOR.split(raw)
    pieces, separators = parts[0::2], parts[1::2]

    def joined(start: int, stop: int) -> str:
        return "".join(piece + (separators[k] if k < stop - 1 else "") for k, piece in enumerate(pieces[start:stop], start))

    chosen: list[tuple[AnswerOption, str] | None] = []
    start = 0
    while start < len(pieces):
        if not pieces[start].strip():
            start += 1
            continue
        for stop in range(len(pieces), start, -1):
            option = item.option(joined(start, stop))
            if option is not None:
                chosen.append((option, ""))
                start = stop
                break
        else:
            rest = joined(start, len(pieces))
            chosen.append(next(((option, extra) for option in item.options if option.open
                                for extra in [_after_open_option(rest, option)] if extra is not None), None))
            break
    return chosen


# storing ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class QuestionnaireImport:
    """What ``ingest_questionnaire`` read and stored."""

    responses: QuestionnaireResponses
    n_added: int
    n_updated: int


def ingest_questionnaire(
    path: Path | str, store: Store, version: str | None = None,
    *, definitions: QuestionnaireDefinitions | None = None,
) -> QuestionnaireImport:
    """Read, validate and store a questionnaire export; importing it twice changes nothing.

    Parameters
    ----------
    path : Path or str
        A Google Forms export (see :func:`read_questionnaire`).
    store : Store
    version : str, optional
        The questionnaire version; default: detected from the headers.
    definitions : QuestionnaireDefinitions, optional

    Returns
    -------
    QuestionnaireImport
        The responses and how many answers were added and updated.

    Raises
    ------
    QuestionnaireFormatError
        Nothing is stored when any answer is invalid.
    """
    responses = read_questionnaire(path, version, definitions=definitions)
    added, updated = store.save_questionnaire(responses)
    return QuestionnaireImport(responses, added, updated)
