"""The exceptions codeer raises. Each names what was wrong, where, and what to do."""

from __future__ import annotations

from pathlib import Path


class CodeerError(Exception):
    """Base class of every error codeer raises on purpose."""


class ConfigError(CodeerError, ValueError):
    """A setting or configuration file is invalid."""


class CodebookError(CodeerError, ValueError):
    """A codebook file is invalid (duplicate id, missing parent, cycle, incomplete mapping)."""

    def __init__(self, path: Path | str, problem: str, code: str | None = None, fix: str = "") -> None:
        self.path, self.code, self.problem, self.fix = str(path), code, problem, fix
        where = f"{path}" + (f", code {code!r}" if code else "")
        super().__init__(f"{where}: {problem}." + (f" {fix}" if fix else ""))


class UnknownCodeError(CodeerError, KeyError):
    """A code id is not in the active codebook version."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


class TranscriptFormatError(CodeerError, ValueError):
    """A transcript cannot be read or parsed.

    Carries ``path`` and ``line`` (1-based, or None when the whole file is concerned), the
    problem, what was expected and what to do.
    """

    reason = "unreadable transcript"

    def __init__(
        self,
        path: Path | str,
        problem: str,
        *,
        line: int | None = None,
        expected: str = "",
        fix: str = "",
    ) -> None:
        self.path, self.line, self.problem, self.expected, self.fix = str(path), line, problem, expected, fix
        where = f"{path}" + (f", line {line}" if line is not None else "")
        message = f"{where}: {problem}."
        if expected:
            message += f" Expected {expected}."
        if fix:
            message += f" {fix}"
        super().__init__(message)


class EmptyTranscriptError(TranscriptFormatError):
    """The file holds no text at all."""

    reason = "empty file"


class UndecodableFileError(TranscriptFormatError):
    """The file is binary or in an encoding codeer cannot read."""

    reason = "binary or undecodable file"


class CorruptDocumentError(TranscriptFormatError):
    """A .docx or .pdf file cannot be opened."""

    reason = "corrupt document"


class NoRespondentTurnsError(TranscriptFormatError):
    """The transcript has no respondent speech to code."""

    reason = "no respondent turns"


class UnknownSpeakerError(TranscriptFormatError):
    """A turn starts with a speaker label codeer cannot place."""

    reason = "unknown speaker label"


class TableFormatError(CodeerError, ValueError):
    """A table of utterances, annotations or questionnaire answers is invalid."""


class AnnotationError(CodeerError, ValueError):
    """A seed annotation does not match the codebook or the stored transcripts."""


class ModelNotFoundError(CodeerError, FileNotFoundError):
    """No trained model was found where one was asked for."""


class ModelCardMismatchError(CodeerError, ValueError):
    """A model was trained on another codebook version or encoder than the one in use."""


class ReviewConflictError(CodeerError, RuntimeError):
    """Another annotator decided a review item first."""


class QuestionnaireFormatError(TableFormatError):
    """Questionnaire answers (a Google Forms export) do not match the questionnaire.

    Carries ``path`` and ``problems``: one line per bad cell or column, each naming the row,
    the column and what was allowed.
    """

    def __init__(self, path: Path | str, problems: list[str], *, what: str = "", fix: str = "") -> None:
        self.path, self.problems, self.fix = str(path), list(problems), fix
        shown = self.problems[:25]
        more = len(self.problems) - len(shown)
        message = f"{path}: {what or f'{len(self.problems)} problem(s)'}:\n  " + "\n  ".join(shown)
        if more:
            message += f"\n  ... and {more} more"
        if fix:
            message += f"\n{fix}"
        super().__init__(message)


class QdaFormatError(CodeerError, ValueError):
    """A REFI-QDA project (.qdpx) or codebook (.qdc) is corrupt, incomplete or inconsistent."""


class QdaMappingError(CodeerError, ValueError):
    """A mapping from a QDA program's codes to codebook ids is invalid."""


class QdaExportError(CodeerError, ValueError):
    """Stored data cannot be exported to REFI-QDA without moving codings onto other words."""
class RatingRulesError(ConfigError):
    """The rating rules file is invalid: names the file, the key, what was expected and the fix."""

    def __init__(self, path: Path | str, key: str, problem: str, *, expected: str = "", fix: str = "") -> None:
        self.path, self.key, self.problem, self.expected, self.fix = str(path), key, problem, expected, fix
        message = f"{path}, key {key!r}: {problem}." if key else f"{path}: {problem}."
        if expected:
            message += f" Expected {expected}."
        if fix:
            message += f" {fix}"
        super().__init__(message)
class ReviewItemNotFoundError(CodeerError, LookupError):
    """A review item id that is not in the queue."""


class UserExistsError(CodeerError, ValueError):
    """A user name that is already taken."""


class AuthenticationError(CodeerError, PermissionError):
    """Wrong user name or password, or an inactive user."""


class ReviewInputError(CodeerError, ValueError):
    """Predictions or codings handed to the review queue are not what it expects."""
