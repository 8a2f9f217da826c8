"""The exceptions codeer raises. Each names what was wrong, where, and what to do."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

MAX_DETAILS = 25


def error_message(
    path: Path | str,
    problem: str,
    *,
    line: int | None = None,
    code: str | None = None,
    key: str | None = None,
    expected: str = "",
    fix: str = "",
    details: Sequence[str] | None = None,
) -> str:
    """The message of a codeer error: where, what is wrong, what was expected, what to do.

    Parameters
    ----------
    path : Path or str
        The file (or other source) concerned.
    problem : str
        What is wrong, without a final full stop.
    line, code, key : optional
        Where in ``path``: a 1-based line, a codebook code id, a configuration key.
    expected : str
        What was expected, without "Expected" and the final full stop.
    fix : str
        What to do, as a full sentence.
    details : sequence of str, optional
        One line per problem (e.g. per bad cell); the first 25 are listed under ``problem``
        and the rest counted, and ``expected`` and ``fix`` then go on lines of their own.

    Returns
    -------
    str

    Examples
    --------
    >>> print(error_message("data/interviews/BA.txt", "unknown speaker 'Interviewer'", line=14,
    ...                     expected='"Respondent:"', fix="Add it to speaker_aliases."))
    data/interviews/BA.txt, line 14: unknown speaker 'Interviewer'. Expected "Respondent:". Add it to speaker_aliases.
    >>> print(error_message("antwoorden.csv", "2 problem(s)", details=["row 2: 'x'", "row 3: 'y'"], fix="Fix the cells."))
    antwoorden.csv: 2 problem(s):
      row 2: 'x'
      row 3: 'y'
    Fix the cells.
    """
    where = f"{path}"
    if code:
        where += f", code {code!r}"
    if key:
        where += f", key {key!r}"
    if line is not None:
        where += f", line {line}"
    if details is None:
        message = f"{where}: {problem}."
        if expected:
            message += f" Expected {expected}."
        if fix:
            message += f" {fix}"
        return message
    shown = list(details[:MAX_DETAILS])
    message = f"{where}: {problem}:\n  " + "\n  ".join(shown)
    if len(details) > len(shown):
        message += f"\n  ... and {len(details) - len(shown)} more"
    if expected:
        message += f"\nExpected {expected}."
    if fix:
        message += f"\n{fix}"
    return message


class CodeerError(Exception):
    """Base class of every error codeer raises on purpose."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickle's default calls cls(*self.args) with the finished message, which subclasses
        # with their own __init__ do not accept; Dask pickles errors between processes.
        return _restore_error, (type(self), self.args, dict(self.__dict__))


def _restore_error(cls: type[CodeerError], args: tuple[Any, ...], state: dict[str, Any]) -> CodeerError:
    """Rebuild a pickled error from its message and attributes, without calling ``__init__``."""
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error


class ConfigError(CodeerError, ValueError):
    """A setting or configuration file is invalid."""


class WorkspaceNotFoundError(CodeerError, FileNotFoundError):
    """A command that only reads was pointed at a workspace that does not exist."""


class CodebookError(CodeerError, ValueError):
    """A codebook file is invalid (duplicate id, missing parent, cycle, incomplete mapping)."""

    def __init__(self, path: Path | str, problem: str, code: str | None = None, fix: str = "") -> None:
        self.path, self.code, self.problem, self.fix = str(path), code, problem, fix
        super().__init__(error_message(path, problem, code=code, fix=fix))


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
        super().__init__(error_message(path, problem, line=line, expected=expected, fix=fix))


class EmptyTranscriptError(TranscriptFormatError):
    """The file holds no text at all."""

    reason = "empty file"


class UndecodableFileError(TranscriptFormatError):
    """The file is binary or in an encoding codeer cannot read."""

    reason = "binary or undecodable file"


class CorruptDocumentError(TranscriptFormatError):
    """A .docx or .pdf file cannot be opened."""

    reason = "corrupt document"


class ScannedPdfError(TranscriptFormatError):
    """A PDF has pages but no text layer: a scan that needs text recognition first."""

    reason = "scanned PDF without text"


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
        super().__init__(error_message(path, what or f"{len(self.problems)} problem(s)", details=self.problems, fix=fix))


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
        super().__init__(error_message(path, problem, key=key, expected=expected, fix=fix))


class ReviewItemNotFoundError(CodeerError, LookupError):
    """A review item id that is not in the queue."""


class UserExistsError(CodeerError, ValueError):
    """A user name that is already taken."""


class AuthenticationError(CodeerError, PermissionError):
    """Wrong user name or password, or an inactive user."""


class ReviewInputError(CodeerError, ValueError):
    """Predictions or codings handed to the review queue are not what it expects."""


class NotFoundError(CodeerError, LookupError):
    """A transcript or utterance id asked for on a page that is not in the store."""


class InputTooLargeError(CodeerError, ValueError):
    """A file or archive passes a limit of :class:`pipeline.config.InputLimits` (issue 20)."""

    reason = "file too large"

    def __init__(self, path: Path | str, problem: str, *, fix: str = "") -> None:
        self.path, self.problem, self.fix = str(path), problem, fix
        super().__init__(error_message(path, problem, fix=fix))


class ModelFileError(CodeerError, ValueError):
    """A model folder's file cannot be read: damaged, of another format, or of untrusted types."""


class WorkspaceKeyError(CodeerError, OSError):
    """The workspace key (``codeer.key``, which keys respondent pseudonyms) cannot be read or made."""


class ForgetError(CodeerError, LookupError):
    """``codeer forget`` was asked for a respondent or transcript the workspace does not hold."""


class FineTuneError(CodeerError, RuntimeError):
    """Fine-tuning the encoder (``codeer train --fine-tune``) cannot run: torch or the e5 folder is
    missing, or the training texts give no pairs to learn from."""
