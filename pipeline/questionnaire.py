"""Questionnaires (appendix 4 of the thesis): definitions, Google Forms exports, evidence.

The questionnaires are data, in ``annotations/questionnaires.yaml``: per version (policy
officers, managers) the items with their question text and answer options as printed, the
incentive each item operationalises and how each option scores for it. :func:`read_questionnaire`
reads a Google Forms export (.csv or .xlsx), tells the version from its headers and checks
every answer against the printed options; :func:`questionnaire_evidence` turns the answers
into the evidence frame the ratings stage consumes; :func:`summarise` counts them the way
the thesis cites them ("7/8 BM").
"""

from __future__ import annotations

import csv
import io
import logging
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import yaml

from pipeline.errors import ConfigError, QuestionnaireFormatError
from pipeline.records import Role

if TYPE_CHECKING:
    from pipeline.store import Store

logger = logging.getLogger(__name__)

QUESTIONNAIRES_FILE = Path(__file__).resolve().parent.parent / "annotations" / "questionnaires.yaml"
EVIDENCE_COLUMNS = ("municipality", "code", "role", "respondent", "item", "answer", "score")
SUMMARY_COUNTS = ("n_positive", "n_neutral", "n_negative", "n_answered")
ROLE_ABBREVIATIONS = {"beleidsmedewerker": "BM", "manager": "M"}
KINDS = ("single", "multiple", "open")
TABLE_SUFFIXES = (".csv", ".xlsx")
FIELDS = ("timestamp", "respondent", "municipality")

_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "`": "'",
                         "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00a0": " "})
_NUMBERED = re.compile(r"^vraag\s*(\d+)\s*[:.)]\s*(.*)$")
_SEPARATOR = re.compile(r"(\s*[;,]\s*)")
_RESPONDENT_CODE = re.compile(r"[A-Za-z0-9_-]{1,40}")
_FIX = ("Correct each answer to one of the printed options (or leave the cell empty for no answer). "
        "If the form itself used other wording, add the option to annotations/questionnaires.yaml.")


def normalise_text(text: str) -> str:
    """Text as codeer compares it: NFC, straight quotes, single spaces, case-folded."""
    text = unicodedata.normalize("NFC", str(text)).translate(_QUOTES)
    return " ".join(text.split()).casefold()


# definitions ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AnswerOption:
    """One printed answer option and its score for the item's incentive (None: descriptive)."""

    text: str
    score: float | None = None
    open: bool = False  # takes free text after it ("Op een andere manier, namelijk: ...")


@dataclass(frozen=True, slots=True)
class QuestionnaireItem:
    """One question of a questionnaire version."""

    item_id: str
    question: str
    kind: str  # single | multiple | open
    number: int | None = None
    code: str | None = None
    options: tuple[AnswerOption, ...] = ()

    @property
    def scored(self) -> bool:
        """Whether any answer to this item is evidence for its incentive."""
        return any(option.score is not None for option in self.options)

    @property
    def header(self) -> str:
        """The column header of a Google Forms export: ``Vraag N: question``."""
        return f"Vraag {self.number}: {self.question}" if self.number is not None else self.question

    def option(self, text: str) -> AnswerOption | None:
        """The option whose printed text matches ``text`` (loosely), or None."""
        wanted = normalise_text(text)
        return next((option for option in self.options if normalise_text(option.text) == wanted), None)


@dataclass(frozen=True, slots=True)
class FieldColumn:
    """A column that identifies the response rather than answering an item."""

    question: str
    aliases: tuple[str, ...] = ()

    def matches(self, header: str) -> bool:
        """Whether a normalised header names this field."""
        return header in {normalise_text(name) for name in (self.question, *self.aliases)}


@dataclass(frozen=True, slots=True)
class QuestionnaireVersion:
    """One questionnaire (e.g. ``beleidsmedewerker``) with its items in printed order."""

    name: str
    title: str
    source: str
    role: Role
    timestamp: FieldColumn
    respondent: FieldColumn
    municipality: FieldColumn
    items: tuple[QuestionnaireItem, ...]

    def item(self, item_id: str) -> QuestionnaireItem:
        """The item with id ``item_id``."""
        for item in self.items:
            if item.item_id == item_id:
                return item
        raise KeyError(f"questionnaire {self.name!r} has no item {item_id!r}")


@dataclass(frozen=True, slots=True)
class QuestionnaireDefinitions:
    """All questionnaire versions of a definitions file."""

    path: str
    codebook: str
    versions: tuple[QuestionnaireVersion, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """The version names, in file order."""
        return tuple(version.name for version in self.versions)

    def version(self, name: str) -> QuestionnaireVersion:
        """The version called ``name``; a :class:`ConfigError` names the known ones."""
        for version in self.versions:
            if version.name == name:
                return version
        raise ConfigError(f"unknown questionnaire version {name!r}; {self.path} defines "
                          f"{', '.join(self.names)}. Use one of those with --version.")


def load_questionnaires(path: Path | str | None = None) -> QuestionnaireDefinitions:
    """Load and validate questionnaire definitions (default ``annotations/questionnaires.yaml``).

    Parameters
    ----------
    path : Path or str, optional
        A definitions YAML file.

    Returns
    -------
    QuestionnaireDefinitions

    Raises
    ------
    ConfigError
        The file is missing, not YAML, or an item is invalid (duplicate id, unknown kind,
        a code that is not an incentive of the codebook, a score outside [-1, 1]).
    """
    path = Path(path) if path is not None else QUESTIONNAIRES_FILE
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such questionnaire definitions file.") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: invalid YAML. Fix the YAML syntax.") from err
    return parse_questionnaires(data, path)


def parse_questionnaires(data: Any, path: Path | str) -> QuestionnaireDefinitions:
    """Validate the parsed YAML of a definitions file (see :func:`load_questionnaires`)."""
    from pipeline.codebook import load_codebook

    def fail(where: str, problem: str) -> ConfigError:
        return ConfigError(f"{path}, {where}: {problem}")

    if not isinstance(data, dict) or not isinstance(data.get("versions"), dict) or not data["versions"]:
        raise ConfigError(f"{path}: expected a mapping with 'codebook' and a non-empty 'versions' mapping.")
    codebook = load_codebook(str(data.get("codebook", "garvin2008")))
    incentives = set(codebook.incentives)
    seen_ids: set[str] = set()
    versions = []
    for name, raw in data["versions"].items():
        if not isinstance(raw, dict) or not isinstance(raw.get("items"), list):
            raise fail(f"version {name!r}", "expected a mapping with a list of 'items'")
        role_value = str(raw.get("role", name))
        if role_value not in {role.value for role in Role}:
            raise fail(f"version {name!r}", f"unknown role {role_value!r}; use one of {', '.join(r.value for r in Role)}")
        fields = {}
        for field_name, default in (("timestamp", "Tijdstempel"), ("respondent", "Respondentcode"),
                                    ("municipality", "Gemeente")):
            spec = raw.get(field_name) or {}
            fields[field_name] = FieldColumn(str(spec.get("question", default)),
                                             tuple(str(a) for a in spec.get("aliases", ()) or ()))
        items = []
        numbers: set[int] = set()
        for index, raw_item in enumerate(raw["items"]):
            item = _parse_item(raw_item, f"version {name!r}, item {index + 1}", fail, incentives, codebook.version)
            if item.item_id in seen_ids:
                raise fail(f"version {name!r}", f"item id {item.item_id!r} is used twice; ids must be unique across versions")
            if item.number is not None and item.number in numbers:
                raise fail(f"version {name!r}", f"question number {item.number} is used twice")
            seen_ids.add(item.item_id)
            if item.number is not None:
                numbers.add(item.number)
            items.append(item)
        versions.append(QuestionnaireVersion(
            name=str(name), title=str(raw.get("title", name)), source=str(raw.get("source", "")),
            role=Role(role_value), items=tuple(items), **fields))
    return QuestionnaireDefinitions(str(path), codebook.version, tuple(versions))


def _parse_item(raw: Any, where: str, fail: Any, incentives: set[str], codebook: str) -> QuestionnaireItem:
    if not isinstance(raw, dict) or not raw.get("id") or not raw.get("question"):
        raise fail(where, "every item needs an 'id' and a 'question'")
    where = f"{where.rsplit(',', 1)[0]}, item {raw['id']!r}"
    kind = str(raw.get("kind", "single"))
    if kind not in KINDS:
        raise fail(where, f"unknown kind {kind!r}; use one of {', '.join(KINDS)}")
    options = []
    for raw_option in raw.get("options") or ():
        if not isinstance(raw_option, dict) or not str(raw_option.get("text", "")).strip():
            raise fail(where, "every option needs a 'text'")
        score = raw_option.get("score")
        if score is not None:
            try:
                score = float(score)
            except (TypeError, ValueError):
                raise fail(where, f"option {raw_option['text']!r}: score must be a number or null, got {score!r}") from None
            if not -1.0 <= score <= 1.0:
                raise fail(where, f"option {raw_option['text']!r}: score must lie in [-1, 1], got {score}")
        options.append(AnswerOption(str(raw_option["text"]).strip(), score, bool(raw_option.get("open", False))))
    if kind == "open" and options:
        raise fail(where, "an open item has no options")
    if kind != "open" and len(options) < 2:
        raise fail(where, f"a {kind} item needs at least two options")
    texts = [normalise_text(option.text) for option in options]
    if len(set(texts)) != len(texts):
        raise fail(where, "two options have the same text")
    code = raw.get("code")
    if code is not None and code not in incentives:
        raise fail(where, f"code {code!r} is not an incentive of codebook {codebook}")
    if code is None and any(option.score is not None for option in options):
        raise fail(where, "scored options need the item's incentive 'code'")
    number = raw.get("number")
    return QuestionnaireItem(str(raw["id"]), str(raw["question"]).strip(), kind,
                             int(number) if number is not None else None, code, tuple(options))


# responses ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class QuestionnaireAnswer:
    """One answered item.

    ``answer`` is the printed option text (checkbox answers joined with ``"; "``; an open
    option keeps the respondent's words after it) or, for open items, the free text;
    ``options`` the printed options chosen; ``score`` the item's score for ``code``.
    """

    item_id: str
    answer: str
    options: tuple[str, ...] = ()
    score: float | None = None
    code: str | None = None


@dataclass(frozen=True, slots=True)
class QuestionnaireResponse:
    """One respondent's submitted form (``row``: the spreadsheet row, header = row 1)."""

    respondent: str
    municipality: str
    row: int
    submitted: str
    answers: tuple[QuestionnaireAnswer, ...]

    def answer(self, item_id: str) -> QuestionnaireAnswer | None:
        """The answer to ``item_id``, or None when the respondent left it empty."""
        return next((answer for answer in self.answers if answer.item_id == item_id), None)


@dataclass(frozen=True, slots=True)
class QuestionnaireResponses:
    """The validated responses of one export file to one questionnaire version."""

    path: str
    version: str
    role: Role
    responses: tuple[QuestionnaireResponse, ...]
    ignored_columns: tuple[str, ...] = ()

    @property
    def respondents(self) -> tuple[str, ...]:
        """Respondent codes in file order."""
        return tuple(response.respondent for response in self.responses)

    @property
    def n_answers(self) -> int:
        """Number of answered items over all respondents."""
        return sum(len(response.answers) for response in self.responses)


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
            item = candidate if candidate is not None and normalise_text(candidate.question) == numbered.group(2) else None
        else:
            # repeated questions ("Zo ja, op welke manier?") are matched in printed order
            item = next((c for c in by_text.get(norm, []) if c.item_id not in used), None)
        if item is not None and item.item_id not in used:
            assigned[index] = item.item_id
            used.add(item.item_id)
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
            fix="Check that this is a Google Forms export of a questionnaire in annotations/questionnaires.yaml.")
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
               "match annotations/questionnaires.yaml.")
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
    if not chosen or any(choice is None for choice in chosen):
        return None
    options = [option for option, _ in chosen]  # type: ignore[misc]
    texts = tuple(dict.fromkeys(option.text for option in options))
    answer = "; ".join(dict.fromkeys(f"{option.text} {extra}".strip() for option, extra in chosen))  # type: ignore[misc]
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


def combine_scores(options: Iterable[AnswerOption]) -> float | None:
    """The score of an answer: the highest score among its options (None if none is scored)."""
    scores = [option.score for option in options if option.score is not None]
    return max(scores) if scores else None


# evidence ---------------------------------------------------------------------------
def questionnaire_evidence(
    responses: QuestionnaireResponses | Iterable[QuestionnaireResponses],
    definitions: QuestionnaireDefinitions | None = None,
) -> pd.DataFrame:
    """The evidence frame of questionnaire answers, one row per scored answer.

    Parameters
    ----------
    responses : QuestionnaireResponses or an iterable of them
        E.g. the policy-officer and the manager file of a study.
    definitions : QuestionnaireDefinitions, optional
        Score with these definitions (e.g. after changing a score); default: the scores
        given when the file was read.

    Returns
    -------
    pandas.DataFrame
        Columns ``municipality, code, role, respondent, item, answer, score`` (score a float
        in [-1, 1]: 1 the incentive present, -1 absent, 0 neutral or mixed), sorted by
        municipality, code, role, respondent and item. Unanswered, open and descriptive
        (unscored) items have no row. This is the frame the ratings stage consumes.
    """
    batches = [responses] if isinstance(responses, QuestionnaireResponses) else list(responses)
    rows = []
    for batch in batches:
        version = definitions.version(batch.version) if definitions is not None else None
        for response in batch.responses:
            for answer in response.answers:
                code, score = answer.code, answer.score
                if version is not None:
                    item = version.item(answer.item_id)
                    options = [item.option(text) for text in answer.options]
                    if any(option is None for option in options):
                        raise ConfigError(f"{definitions.path}: item {item.item_id} no longer has the option(s) "  # type: ignore[union-attr]
                                          f"{', '.join(repr(t) for t in answer.options)} that {batch.path} used. "
                                          "Read the file again or restore the option.")
                    code, score = item.code, combine_scores(o for o in options if o is not None)
                if code is None or score is None:
                    continue
                rows.append({"municipality": response.municipality, "code": code, "role": batch.role.value,
                             "respondent": response.respondent, "item": answer.item_id, "answer": answer.answer,
                             "score": float(score)})
    frame = pd.DataFrame(rows, columns=list(EVIDENCE_COLUMNS))
    frame["score"] = frame["score"].astype(float)
    return frame.sort_values(["municipality", "code", "role", "respondent", "item"], kind="stable").reset_index(drop=True)


def stored_questionnaire_evidence(store: Store) -> pd.DataFrame:
    """The evidence frame (as :func:`questionnaire_evidence`) of all answers in the store."""
    frame = store.questionnaire_frame()
    frame = frame[frame["code"].notna() & frame["score"].notna()]
    return (frame[list(EVIDENCE_COLUMNS)]
            .sort_values(["municipality", "code", "role", "respondent", "item"], kind="stable").reset_index(drop=True))


def summarise(
    evidence: pd.DataFrame,
    by: Sequence[str] = ("item", "role"),
    definitions: QuestionnaireDefinitions | None = None,
) -> pd.DataFrame:
    """Count positive, neutral and negative answers the way the thesis cites them.

    Parameters
    ----------
    evidence : pandas.DataFrame
        A frame from :func:`questionnaire_evidence`.
    by : sequence of str
        Columns of ``evidence`` to group by; default per item and role.
    definitions : QuestionnaireDefinitions, optional
        When given and grouping by item, adds the printed ``question``.

    Returns
    -------
    pandas.DataFrame
        The ``by`` columns (plus ``code`` when grouping by item), ``n_positive`` (score > 0),
        ``n_neutral``, ``n_negative``, ``n_answered`` and ``label``: ``"7/8 BM"`` is 7
        positive answers out of 8 from policy officers (``M``: managers).

    Examples
    --------
    >>> summary = summarise(questionnaire_evidence(read_questionnaire("data/demo/questionnaires/managers.csv")))
    >>> summary.set_index("item").loc["m15", "label"]
    '8/8 M'
    """
    by = list(by)
    extra = ["code"] if "item" in by and "code" not in by else []
    columns = by + extra + list(SUMMARY_COUNTS) + ["label"]
    if evidence.empty:
        return pd.DataFrame(columns=columns)
    scores = evidence["score"].astype(float)
    counts = evidence.assign(n_positive=(scores > 0).astype(int), n_neutral=(scores == 0).astype(int),
                             n_negative=(scores < 0).astype(int), n_answered=1)
    aggregations: dict[str, Any] = {name: "sum" for name in SUMMARY_COUNTS}
    aggregations.update({name: "first" for name in extra})
    table = counts.groupby(by, sort=True).agg(aggregations).reset_index()

    def label(row: pd.Series) -> str:
        text = f"{row.n_positive}/{row.n_answered}"
        return f"{text} {ROLE_ABBREVIATIONS.get(row.role, row.role)}" if "role" in by else text

    table["label"] = table.apply(label, axis=1)
    table = table[columns]
    if definitions is not None and "item" in by:
        questions = {item.item_id: item.question for version in definitions.versions for item in version.items}
        table.insert(len(by) + len(extra), "question", table["item"].map(questions))
    return table


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
