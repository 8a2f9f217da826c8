"""The rating rules: thresholds and weights that turn coded fragments into verdicts.

The rules live in a documented, versioned YAML file (``pipeline/resources/annotations/rating_rules.yaml``) and are
validated once, on load, into frozen pydantic models. :mod:`pipeline.rating.verdicts` applies them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pipeline.errors import RatingRulesError
from pipeline.resources import rules_file

ROLES = ("beleidsmedewerker", "manager", "regio", "document", "other")


class _Rules(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _check_below(low_name: str, low: float, high_name: str, high: float) -> None:
    """Refuse a lower threshold that does not lie below the upper one."""
    if low >= high:
        raise ValueError(f"{low_name} ({low}) must lie below {high_name} ({high})")


class FacetWeights(_Rules):
    """How much a practice and a provision fragment weigh."""

    practice: float = Field(ge=0, le=1)
    provision: float = Field(ge=0, le=1)

    @model_validator(mode="after")
    def _practice_outweighs_provision(self) -> FacetWeights:
        if self.provision > self.practice:
            raise ValueError("provision must not weigh more than practice (practice outweighs provision)")
        return self


class SourceWeights(_Rules):
    """Weight of each kind of source relative to one interviewed respondent."""

    beleidsmedewerker: float = Field(ge=0)
    manager: float = Field(ge=0)
    other: float = Field(ge=0)
    document: float = Field(ge=0)
    questionnaire: float = Field(ge=0)
    regio: float = Field(ge=0)

    def of(self, role: str) -> float:
        """The weight of a role or ``questionnaire``."""
        return float(getattr(self, role))


class SelfAssessment(_Rules):
    """Discount for a role judging its own behaviour (managers on leadership)."""

    role: Literal["beleidsmedewerker", "manager", "regio", "document", "other"]
    building_blocks: tuple[str, ...]
    weight: float = Field(ge=0, le=1)


class EvidenceRules(_Rules):
    """What counts as evidence and how much."""

    min_predicted_weight: float = Field(ge=0, le=1)
    facet_weights: FacetWeights
    missing_facet: Literal["practice", "provision"]
    source_weights: SourceWeights
    source_presence: Literal["noisy_or", "max"]
    self_assessment: SelfAssessment


class MinSources(_Rules):
    """Effective number of sources a verdict needs, per level (issue 17)."""

    municipality: float = Field(ge=0)
    region: float = Field(ge=0)

    def of(self, level: str) -> float:
        """The minimum of ``municipality`` or ``region``."""
        return float(getattr(self, level))


class Thresholds(_Rules):
    """Minimum evidence for a verdict and the score cut-offs."""

    min_sources: MinSources
    min_interview_respondents: int = Field(ge=0)
    voldoende: float = Field(gt=-1, le=1)
    onvoldoende: float = Field(ge=-1, lt=1)

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        _check_below("onvoldoende", self.onvoldoende, "voldoende", self.voldoende)
        return self


class PracticeRules(_Rules):
    """The gate that keeps provision-only evidence from making voldoende."""

    voldoende_min_practice_sources: float = Field(ge=0)
    voldoende_min_practice_score: float = Field(ge=-1, lt=1)


class RoleAgreementRules(_Rules):
    """When managers and policy officers contradict each other."""

    contested_gap: float = Field(gt=0, le=2)
    pull_to_matig: bool


class DivergenceRules(_Rules):
    """When municipalities differ so much that a regional extreme verdict is misleading."""

    min_each_side: int = Field(ge=1)
    min_spread: float = Field(ge=0, le=2)


class RegionRules(_Rules):
    """Region rows per incentive."""

    default_name: str = Field(min_length=1)
    divergence: DivergenceRules


class ContextRules(_Rules):
    """Bevorderend / belemmerend / gemengd for the rated context codes."""

    codes: tuple[str, ...] = Field(min_length=1)
    bevorderend: float = Field(gt=-1, le=1)
    belemmerend: float = Field(ge=-1, lt=1)
    min_utterances: int = Field(ge=1)
    min_respondents: int = Field(ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> ContextRules:
        _check_below("belemmerend", self.belemmerend, "bevorderend", self.bevorderend)
        return self


class DifferenceRules(_Rules):
    """Stand-outs and learning pairs between municipalities."""

    stand_out: float = Field(gt=0, le=2)
    learning_pair_min_gap: float = Field(ge=0, le=2)
    max_pairs_per_code: int = Field(ge=0)


class ConfidenceRules(_Rules):
    """Parameters of the confidence of a rating."""

    evidence_scale: float = Field(gt=0)
    full_respondents: int = Field(ge=1)
    contested_penalty: float = Field(ge=0, le=1)
    margin_scale: float = Field(gt=0)


class RatingRules(_Rules):
    """The complete, validated rating rules (one YAML file)."""

    version: str = Field(min_length=1)
    evidence: EvidenceRules
    thresholds: Thresholds
    practice: PracticeRules
    role_agreement: RoleAgreementRules
    region: RegionRules
    context: ContextRules
    differences: DifferenceRules
    confidence: ConfidenceRules
    path: str = ""


_FIXES = {
    "extra_forbidden": "Remove the key or correct its spelling; the valid keys are documented in "
                       "pipeline/resources/annotations/rating_rules.yaml.",
    "missing": "Add the key; pipeline/resources/annotations/rating_rules.yaml shows every key with its meaning.",
}


def parse_rating_rules(data: Any, path: Path | str) -> RatingRules:
    """Validate parsed YAML as :class:`RatingRules`.

    Parameters
    ----------
    data : Any
        The parsed YAML document.
    path : Path or str
        The file it came from, named in errors.

    Returns
    -------
    RatingRules

    Raises
    ------
    RatingRulesError
        Naming the file, the dotted key, what was expected, what was found and the fix.
    """
    if not isinstance(data, dict):
        raise RatingRulesError(path, "", "not a rules file", expected="a mapping with 'version:', 'evidence:', "
                               "'thresholds:' and the other sections", fix="Start from pipeline/resources/annotations/rating_rules.yaml.")
    try:
        return RatingRules.model_validate({**data, "path": str(path)})
    except ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        message, got = first["msg"].removeprefix("Value error, "), first.get("input")
        expected = ""
        if first["type"] == "extra_forbidden":
            problem = "unknown key"
        elif first["type"] == "missing":
            problem = "missing key"
        elif message.startswith("Input should be "):
            problem, expected = f"invalid value {got!r}", message.removeprefix("Input should be ")
        else:
            problem = message
        fix = _FIXES.get(first["type"], "Correct the value; the comments in pipeline/resources/annotations/rating_rules.yaml "
                                        "explain each key.")
        raise RatingRulesError(path, key, problem, expected=expected, fix=fix) from err


def load_rating_rules(path: Path | str | None = None) -> RatingRules:
    """Load and validate a rating rules file.

    Parameters
    ----------
    path : Path or str, optional
        The YAML file; default ``pipeline/resources/annotations/rating_rules.yaml`` of the project.

    Returns
    -------
    RatingRules

    Raises
    ------
    RatingRulesError
        If the file is missing, is not valid YAML, or a key is missing, unknown or out of range.

    Examples
    --------
    >>> rules = load_rating_rules()
    >>> rules.thresholds.onvoldoende < rules.thresholds.voldoende
    True
    """
    path = Path(path) if path is not None else rules_file()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RatingRulesError(path, "", "no such file", fix="Pass the path of a rules file, or copy "
                               "pipeline/resources/annotations/rating_rules.yaml from the project.") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise RatingRulesError(path, "", f"invalid YAML{where}", fix="Fix the YAML syntax.") from err
    return parse_rating_rules(data, path)
