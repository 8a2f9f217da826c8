"""Typed, frozen records handed from one stage to the next."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    """Who is speaking or what kind of source a transcript is."""

    BELEIDSMEDEWERKER = "beleidsmedewerker"
    MANAGER = "manager"
    REGIO = "regio"
    DOCUMENT = "document"
    OTHER = "other"


class Speaker(StrEnum):
    """The side of a turn: only respondent (and document) text is coded."""

    INTERVIEWER = "interviewer"
    RESPONDENT = "respondent"
    DOCUMENT = "document"


@dataclass(frozen=True, slots=True)
class Turn:
    """One speaker turn (or document paragraph block) with offsets into the normalised text.

    ``start``/``end`` delimit the spoken words only, after the speaker label.
    """

    index: int
    speaker: Speaker
    label: str
    start: int
    end: int
    line: int


@dataclass(frozen=True, slots=True)
class Transcript:
    """A parsed transcript or document: normalised text (NFC, LF), metadata and turns."""

    source: str
    path: str
    content_hash: str
    text: str
    municipality: str
    respondent: str
    role: Role
    turns: tuple[Turn, ...]
    file_format: str = "txt"
    encoding: str = "utf-8"
    header: tuple[tuple[str, str], ...] = ()
    detection: str = ""  # why a PDF was read as an interview or a document (ingest output; not stored)

    @property
    def transcript_id(self) -> str:
        """Content-addressed id: the first 16 hex digits of the content hash."""
        return self.content_hash[:16]

    @property
    def kind(self) -> str:
        """``document`` for policy documents, ``interview`` otherwise."""
        return "document" if self.role == Role.DOCUMENT else "interview"


@dataclass(frozen=True, slots=True)
class Utterance:
    """One codable unit of respondent (or document) text.

    ``start``/``end`` are code-point offsets into the normalised transcript text, end
    exclusive; ``question`` is the interviewer turn it answers (context, may be empty).
    """

    utterance_id: str
    transcript_id: str
    turn: int
    position: int
    speaker: Speaker
    start: int
    end: int
    text: str
    municipality: str
    respondent: str
    role: Role
    question: str = ""


@dataclass(frozen=True, slots=True)
class Coding:
    """One code on one utterance, with its direction and (for incentives) facet."""

    code: str
    direction: str = "0"
    facet: str | None = None

    def __post_init__(self) -> None:
        if self.direction not in ("+", "-", "0"):
            raise ValueError(f"direction must be '+', '-' or '0', got {self.direction!r}")
        if self.facet not in (None, "provision", "practice"):
            raise ValueError(f"facet must be 'provision', 'practice' or empty, got {self.facet!r}")


@dataclass(frozen=True, slots=True)
class Annotation:
    """A human coding of one utterance, self-contained enough to train from alone."""

    utterance_id: str
    source_file: str
    content_hash: str
    start: int
    end: int
    text: str
    codings: tuple[Coding, ...]
    annotator: str
    created_at: str
    codebook_version: str
    transcript_id: str = ""
    municipality: str = ""
    respondent: str = ""
    role: str = ""
    question: str = ""
    origin: str = "seed"

    @property
    def codes(self) -> tuple[str, ...]:
        """The code ids of this annotation, in order."""
        return tuple(coding.code for coding in self.codings)


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What happened to one file of an ingest batch."""

    path: str
    status: str  # new | changed | unchanged | renamed | duplicate | skipped | failed
    transcript_id: str | None = None
    n_utterances: int = 0
    error: str | None = None
    reason: str | None = None
    note: str | None = None  # what the ingest decided about the file, e.g. a PDF read as an interview


@dataclass(frozen=True, slots=True)
class IngestReport:
    """Outcome of a batch: one result per file, in input order."""

    results: tuple[IngestResult, ...] = field(default_factory=tuple)

    @property
    def failed(self) -> tuple[IngestResult, ...]:
        """Results of the files that could not be ingested."""
        return tuple(r for r in self.results if r.status == "failed")

    def count(self, status: str) -> int:
        """Number of files that ended with ``status``."""
        return sum(1 for r in self.results if r.status == status)


@dataclass(frozen=True, slots=True)
class Prediction:
    """The model's view of one code on one utterance."""

    utterance_id: str
    model_id: str
    code: str
    probability: float
    predicted: bool
    direction: str | None = None
    direction_p: float | None = None
    facet: str | None = None


# review queue and annotators (issue 6) ----------------------------------------------


class ReviewStatus(StrEnum):
    """Where a review item stands. Claimed items whose claim expired count as pending."""

    PENDING = "pending"
    CLAIMED = "claimed"
    ACCEPTED = "accepted"
    CORRECTED = "corrected"
    SKIPPED = "skipped"
    RETIRED = "retired"
    WAITING = "waiting"  # open, but outside tonight's review budget: not handed out (issue 18)


class UserRole(StrEnum):
    """What a person may do: annotators see the queue, admins also users and audit."""

    ANNOTATOR = "annotator"
    ADMIN = "admin"


# The model id of the review items through which a person codes an utterance by hand
# (the transcript page): they go through the same decisions and audit trail as model items.
MANUAL_MODEL_ID = "manual"


@dataclass(frozen=True, slots=True)
class ReviewItem:
    """One utterance, as one model coded it, waiting for (or past) a human decision.

    ``version`` grows with every change; a decision names the version it was made on, so
    two annotators can never silently overwrite each other.
    """

    item_id: str
    utterance_id: str
    model_id: str
    status: ReviewStatus
    priority: float
    reasons: tuple[str, ...]
    uncertainty: float
    impact: float
    version: int
    created_at: str
    claimed_by: str | None = None
    claimed_until: str | None = None
    decided_by: str | None = None
    decided_at: str | None = None
    batch: int | None = None  # the batch of tonight's queue it is planned in (1 = first); None: unplanned
    effect: str = ""  # in plain words, what deciding it could do to the ratings


@dataclass(frozen=True, slots=True)
class RatingEffect:
    """What a correction of one utterance's coding of one code could do to the verdict of its
    municipality on that code (issue 18): the review queue puts such items first.

    ``effect`` is 1 when some correction (the code removed, its direction turned, or the code
    confirmed or added by a person) changes the verdict; otherwise ``move / (move + distance)``:
    the largest score change a correction makes, against the distance of the score to the
    nearest cut-off.
    """

    utterance_id: str
    municipality: str
    code: str
    rating: str
    score: float | None
    distance: float | None
    move: float
    could_become: str | None
    effect: float

    def words(self) -> str:
        """The effect in plain (Dutch) words, as the annotator reads it.

        Examples
        --------
        >>> RatingEffect("u1", "Eschveld", "analyse", "matig", 0.3, 0.05, 0.1, "voldoende", 1.0).words()
        'kan het oordeel over analyse in Eschveld veranderen van matig in voldoende'
        """
        if self.could_become is not None:
            return (f"kan het oordeel over {self.code} in {self.municipality} veranderen van {self.rating} "
                    f"in {self.could_become}")
        if self.score is None or self.distance is None:
            return f"verandert het oordeel over {self.code} in {self.municipality} ({self.rating}) niet"
        return (f"verschuift de score van {self.code} in {self.municipality} ({self.rating}, {self.score:+.2f}) "
                f"hooguit {self.move:.2f}; de grens ligt {self.distance:.2f} verder")


@dataclass(frozen=True, slots=True)
class ReviewDecision:
    """One row of the audit trail: who did what to which item, and when."""

    decision_id: int
    item_id: str
    utterance_id: str
    action: str  # accept | correct | skip | undo | retire
    user: str
    at: str
    codings: tuple[Coding, ...]
    status_before: str
    status_after: str
    version_after: int
    undone: bool = False
    note: str = ""
    codebook_version: str = ""


@dataclass(frozen=True, slots=True)
class User:
    """A person who may log in to the review page (the hash never leaves the store)."""

    name: str
    role: UserRole
    created_at: str
    active: bool = True


# questionnaires (read in pipeline.corpus.questionnaire) -------------------------------
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
