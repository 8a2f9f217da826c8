"""Questionnaire definitions (appendix 4 of the thesis): versions, items, printed options, scores.

The questionnaires are data, in the shipped ``questionnaires.yaml``: per version (policy
officers, managers) the items with their question text and answer options as printed, the
incentive each item operationalises and how each option scores for it.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import ConfigError
from pipeline.records import Role
from pipeline.resources import questionnaires_file

logger = logging.getLogger(__name__)


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
        "If the form itself used other wording, add the option to pipeline/resources/annotations/questionnaires.yaml.")


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
    """Load and validate questionnaire definitions (default ``pipeline/resources/annotations/questionnaires.yaml``).

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
    path = Path(path) if path is not None else questionnaires_file()
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


def combine_scores(options: Iterable[AnswerOption]) -> float | None:
    """The score of an answer: the highest score among its options (None if none is scored)."""
    scores = [option.score for option in options if option.score is not None]
    return max(scores) if scores else None
