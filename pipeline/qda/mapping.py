"""Mapping a QDA program's codes to codebook ids: the mapping file, and proposals for it."""

from __future__ import annotations

import json
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pipeline.codebook import Codebook
from pipeline.errors import QdaMappingError
from pipeline.qda.archive import _GUID, QdaCode, _norm_guid, qda_guid
from pipeline.qda.directions import DIRECTION_CODE_GUIDS, direction_of_name, is_direction_folder
from pipeline.qda.reader import read_qdpx
from pipeline.records import Speaker

VARIABLE_NAMES = {"municipality": ("municipality", "gemeente"), "respondent": ("respondent", "respondentcode"),
                   "role": ("role", "rol", "functie")}


@dataclass(frozen=True, slots=True)
class MappedCode:
    """Where a QDA code goes: a codebook id, and a direction/facet where the code stands for one.

    A *direction code* (``Positief``, ``Negatief`` beside the incentive codes) has no codebook
    id (``code`` is empty) and only a direction: it gives its direction to the codes on the
    same or an overlapping selection (see :mod:`pipeline.qda.directions`).
    """

    code: str
    direction: str | None = None
    facet: str | None = None

    @property
    def is_direction(self) -> bool:
        """True for a direction code: a direction without a codebook id."""
        return not self.code and self.direction is not None


@dataclass(frozen=True)
class QdaMapping:
    """A researcher's mapping file: QDA codes (by GUID, ``Parent::Child`` name or name) to
    codebook ids (``None`` = ignore on purpose), variable names and speaker labels."""

    path: str = ""
    codes: Mapping[str, MappedCode | None] = field(default_factory=dict)
    variables: Mapping[str, str] = field(default_factory=dict)
    speakers: Mapping[str, Speaker] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MappingSuggestion:
    """A proposed mapping line, with its similarity score and the runner-up.

    ``code`` None with a ``direction`` proposes a direction code (``{direction: '+'}``).
    """

    key: str
    name: str
    code: str | None
    direction: str | None
    score: float
    alternative: str | None
    alternative_score: float
    n_codings: int


def load_qda_mapping(path: Path | str, codebook: Codebook) -> QdaMapping:
    """Read and check a mapping file (YAML) against ``codebook``.

    The file has ``codes:`` (key: a code's GUID, ``Parent::Child`` name or name; value: a
    code id, ``{code: ID, direction: "-", facet: practice}``, ``{direction: "+"}`` for a
    direction code such as ``Positief`` that gives its direction to the codes on the same
    selection, or ``null`` to ignore the code),
    and optionally ``codebook_version:``, ``variables:`` (``municipality``/``respondent``/
    ``role``: the name of the case or source variable holding it) and ``speakers:``
    (speaker label: ``interviewer`` or ``respondent``).

    Raises
    ------
    QdaMappingError
        Naming the file and key of an unknown code id, direction, facet or field.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as err:
        raise QdaMappingError(f"{path}: cannot be read ({err.strerror}).") from err
    except yaml.YAMLError as err:
        raise QdaMappingError(f"{path}: invalid YAML ({err}).") from err
    if not isinstance(data, dict) or not isinstance(data.get("codes", {}), dict):
        raise QdaMappingError(f"{path}: expected a mapping with 'codes:' (QDA code -> codebook id). "
                              "Run 'codeer import-qdpx FILE --suggest-mapping' for a start.")
    version = data.get("codebook_version")
    if version and version != codebook.version:
        raise QdaMappingError(f"{path}: written for codebook {version!r}, but the project uses {codebook.version!r}.")
    codes: dict[str, MappedCode | None] = {}
    for key, value in (data.get("codes") or {}).items():
        where = f"{path}, code {str(key)!r}"
        if value is None:
            target = None
        else:
            raw = {"code": value} if isinstance(value, str) else value if isinstance(value, dict) else {}
            target = MappedCode(str(raw.get("code") or ""), _opt(raw.get("direction")), _opt(raw.get("facet")))
            if not target.code and target.direction is None:
                raise QdaMappingError(f"{where}: gives neither a code id nor a direction. Write a code id, "
                                      "{direction: '+'} (or '-', '0') for a direction code, or null to ignore it.")
            if target.is_direction and target.facet is not None:
                raise QdaMappingError(f"{where}: a direction code cannot carry a facet; give a code id with it.")
            if target.code and (target.code not in codebook or not codebook[target.code].codable):
                raise QdaMappingError(f"{where}: {target.code!r} is not a codable code of codebook {codebook.version!r}. "
                                      f"Run 'codeer codebook show --version {codebook.version}' for the ids, or use null.")
            if target.direction not in (None, "+", "-", "0"):
                raise QdaMappingError(f"{where}: direction {target.direction!r} must be '+', '-' or '0'.")
            if target.facet not in (None, "provision", "practice"):
                raise QdaMappingError(f"{where}: facet {target.facet!r} must be 'provision' or 'practice'.")
        codes[_mapping_key(str(key))] = target
    variables = {str(k): str(v) for k, v in (data.get("variables") or {}).items()}
    for key in variables:
        if key not in VARIABLE_NAMES:
            raise QdaMappingError(f"{path}, variables: {key!r} is not one of {', '.join(VARIABLE_NAMES)}.")
    speakers = {}
    for label, side in (data.get("speakers") or {}).items():
        if str(side).lower() not in ("interviewer", "respondent"):
            raise QdaMappingError(f"{path}, speakers: {label!r} must map to 'interviewer' or 'respondent'.")
        speakers[str(label)] = Speaker(str(side).lower())
    return QdaMapping(str(path), codes, variables, speakers)


def _opt(value: object) -> str | None:
    return None if value in (None, "") else str(value)


def _mapping_key(key: str) -> str:
    return _norm_guid(key) if _GUID.match(key.strip()) else key.strip().casefold()


def resolve_codes(
    codes: Sequence[QdaCode], mapping: QdaMapping, codebook: Codebook
) -> tuple[dict[str, MappedCode | None], tuple[str, ...]]:
    """Targets of the QDA codes (by GUID; ``None`` = ignored) and the mapping keys that matched nothing.

    A code is looked up by GUID, then ``Parent::Child`` name, then plain name (when unique).
    Codes exported by codeer (its direction codes too) are recognised by their GUIDs without any
    mapping. Codes found
    in neither are absent from the result: they are unmapped.
    """
    own = {qda_guid("code", code.id): MappedCode(code.id) for code in codebook.codes if code.codable}
    own.update({guid: MappedCode("", direction) for direction, guid in DIRECTION_CODE_GUIDS.items()})
    names = Counter(code.name.casefold() for code in codes)
    targets: dict[str, MappedCode | None] = {}
    used: set[str] = set()
    for code in codes:
        keys = [code.guid, code.full_name.casefold()] + ([code.name.casefold()] if names[code.name.casefold()] == 1 else [])
        key = next((k for k in keys if k in mapping.codes), None)
        if key is not None:
            targets[code.guid] = mapping.codes[key]
            used.add(key)
        elif code.guid in own:
            targets[code.guid] = own[code.guid]
    return targets, tuple(key for key in mapping.codes if key not in used)


def suggest_mapping(codes: Sequence[QdaCode], codebook: Codebook, n_codings: Mapping[str, int] | None = None,
                    threshold: float = 0.35) -> list[MappingSuggestion]:
    """Propose a codebook id for every codable QDA code, by name and definition similarity.

    Names are compared with character n-grams (accents and case folded) against each code's
    id, Dutch and English label; descriptions against its definition and guidance, and the
    two similarities combine as ``1 - (1 - name) * (1 - definition)``. Below ``threshold``
    the proposal is ``None`` (ignore), with the best candidate named for the researcher to judge.

    Codes whose name is a direction (``Positief``, ``negative``, ``+``, ``belemmerend`` ...,
    see :func:`pipeline.qda.directions.direction_of_name`):

    - as the child of a topic code (``Tijd voor evaluatie::Negatief``, or a folder holding only
      direction codes) they are matched by their parent's name and get that direction;
    - elsewhere (siblings of the incentive codes in a folder, top-level codes, children of a
      folder such as ``Richting``) they become direction codes, ``{direction: '+'}``, which give
      their direction to the codes on the same or an overlapping selection.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    candidates = [code for code in codebook.codes if code.codable]
    qda_codes = [code for code in codes if code.codable]
    if not candidates or not qda_codes:
        return []
    full_names = Counter(code.full_name.casefold() for code in codes)

    def key_of(code: QdaCode) -> str:
        return code.full_name if full_names[code.full_name.casefold()] == 1 else code.guid

    by_path = {code.path: code for code in codes}
    # folders that hold topic codes (not only direction codes): direction codes there are their siblings
    with_topics = {code.path[:-1] for code in qda_codes if direction_of_name(code.path[-1]) is None}
    # (code, direction, name to match, description)
    subjects: list[tuple[QdaCode, str | None, str, str]] = []
    direction_codes: list[tuple[QdaCode, str]] = []
    for code in qda_codes:
        direction = direction_of_name(code.path[-1])
        if direction is None:
            subjects.append((code, None, code.path[-1], code.description))
            continue
        parent_name = code.path[-2] if len(code.path) > 1 else ""
        parent = by_path.get(code.path[:-1]) if parent_name else None
        if not parent_name or is_direction_folder(parent_name) or direction_of_name(parent_name) or (
                code.path[:-1] in with_topics and (parent is None or not parent.codable)):
            # top level, a direction folder, or beside topic codes in a folder: a direction code
            direction_codes.append((code, direction))
        else:  # Topic::Positief (or a folder holding only direction codes): the topic with a direction
            subjects.append((code, direction, parent_name, parent.description if parent else ""))
    names = [[_fold(code.id.replace("_", " ")), _fold(code.label_nl), _fold(code.label_en)] for code in candidates]
    suggestions = []
    if subjects:
        flat = [name for triple in names for name in triple]
        vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4)).fit(flat + [_fold(s[2]) for s in subjects])
        similarity = (vectorizer.transform([_fold(s[2]) for s in subjects]) @ vectorizer.transform(flat).T).toarray()
        name_scores = similarity.reshape(len(subjects), len(candidates), 3).max(axis=2)
        definitions = [_fold(f"{code.label_nl} {code.definition_nl} {code.include}") for code in candidates]
        described = [_fold(s[3]) for s in subjects]
        definition_vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(4, 5)).fit(definitions + described)
        definition_scores = (definition_vectorizer.transform(described)
                             @ definition_vectorizer.transform(definitions).T).toarray()
    for i, (code, direction, name, description) in enumerate(subjects):
        scores = []
        for j, candidate in enumerate(candidates):
            exact = _fold(name) in names[j]
            score = 1.0 if exact else float(name_scores[i][j])
            if description and not exact:  # either signal alone can carry a match (noisy-or)
                score = 1 - (1 - score) * (1 - float(definition_scores[i][j]))
            scores.append((score, candidate.id))
        scores.sort(key=lambda item: -item[0])
        (best_score, best), (second_score, second) = scores[0], scores[1] if len(scores) > 1 else (0.0, None)
        suggestions.append(MappingSuggestion(
            key_of(code), code.full_name, best if best_score >= threshold else None,
            direction if best_score >= threshold else None, round(best_score, 2),
            best if best_score < threshold else second,
            round(best_score if best_score < threshold else second_score, 2), (n_codings or {}).get(code.guid, 0)))
    for code, direction in direction_codes:
        suggestions.append(MappingSuggestion(key_of(code), code.full_name, None, direction, 1.0, None, 0.0,
                                             (n_codings or {}).get(code.guid, 0)))
    order = {code.guid: i for i, code in enumerate(codes)}
    by_key = {key_of(code): code.guid for code in qda_codes}
    return sorted(suggestions, key=lambda s: order[by_key[s.key]])




def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).replace("_", " ").split())


def propose_mapping(path: Path | str, codebook: Codebook) -> tuple[str, int, int]:
    """Read a ``.qdpx`` and propose a mapping file for it.

    Returns
    -------
    tuple
        The YAML text (see :func:`mapping_yaml`), the number of codes, and how many got a proposal.
    """
    project = read_qdpx(path)
    n_codings: Counter[str] = Counter(c.code for s in project.sources for sel in s.selections for c in sel.codings)
    suggestions = suggest_mapping(project.codes, codebook, n_codings)
    text = mapping_yaml(suggestions, codebook, Path(path).name)
    return text, len(suggestions), sum(1 for s in suggestions if s.code is not None or s.direction is not None)


def mapping_yaml(suggestions: Sequence[MappingSuggestion], codebook: Codebook, source: str = "") -> str:
    """The proposed mapping as a commented YAML file for the researcher to check and complete."""
    lines = [
        f"# Mapping proposed by 'codeer import-qdpx --suggest-mapping'{' for ' + source if source else ''}.",
        "# Check every line before importing: the proposals come from name and definition similarity.",
        "# Value: a code id, {code: ID, direction: '+'|'-'|'0', facet: provision|practice}, null to ignore,",
        "# or {direction: '+'|'-'|'0'} for a direction code (Positief/Negatief beside the incentive codes).",
        f"codebook_version: {codebook.version}",
        "variables:   # the case or source variables holding these (defaults shown)",
        "  municipality: municipality",
        "  respondent: respondent",
        "  role: role",
        "codes:",
    ]
    for s in suggestions:
        used = f"{s.n_codings} coding(s); " if s.n_codings else ""
        if s.code is None and s.direction is not None:
            lines.append(f"  # {used}direction code: gives '{s.direction}' to the codes on the same or an "
                         "overlapping selection")
            value = f'{{direction: "{s.direction}"}}'
        elif s.code is None:
            lines.append(f"  # {used}no confident match (best: {s.alternative} {s.alternative_score:.2f}): map it or keep null")
            value = "null"
        else:
            runner_up = f"; next: {s.alternative} {s.alternative_score:.2f}" if s.alternative else ""
            lines.append(f"  # {used}score {s.score:.2f}{runner_up}")
            value = s.code if s.direction is None else f'{{code: {s.code}, direction: "{s.direction}"}}'
        if s.key != s.name:
            lines.append(f"  # GUID key: the name {s.name!r} is not unique")
        lines.append(f"  {json.dumps(s.key, ensure_ascii=False)}: {value}")
    return "\n".join(lines) + "\n"
