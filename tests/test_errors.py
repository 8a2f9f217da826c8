"""The exception tree: message shape, and every error surviving pickle (Dask ships errors)."""

from __future__ import annotations

import doctest
import inspect
import pickle
import types

import pytest

from pipeline import errors
from pipeline.errors import CodeerError

# A value per constructor parameter name; a new error class with a parameter not listed
# here fails test_errors_every_subclass_survives_pickle until one is added.
SAMPLES = {
    "path": "data/interviews/BA.txt",
    "problem": "unknown speaker 'Interviewer'",
    "problems": [f"row {n}: option 'misschien' not allowed" for n in range(2, 30)],
    "line": 14,
    "code": "psychologische_veiligheid",
    "key": "evidence.min_utterances",
    "what": "28 problem(s) in the answers",
    "expected": '"Onderzoeker:" or "Respondent:"',
    "fix": "Rename the speaker or add it to speaker_aliases.",
}


def all_subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *all_subclasses(sub)]
    return found


def make_error(cls: type[CodeerError]) -> CodeerError:
    """An instance with every constructor argument given (optional ones too)."""
    if not isinstance(cls.__init__, types.FunctionType):  # the builtin exception constructor
        return cls(f"{cls.__name__}: something went wrong. Do something else.")
    positional, keywords = [], {}
    for name, parameter in list(inspect.signature(cls.__init__).parameters.items())[1:]:
        assert name in SAMPLES, f"add a sample value for {cls.__name__}({name}=...) to SAMPLES"
        if parameter.kind is parameter.KEYWORD_ONLY:
            keywords[name] = SAMPLES[name]
        else:
            positional.append(SAMPLES[name])
    return cls(*positional, **keywords)


SUBCLASSES = all_subclasses(CodeerError)


def test_errors_subclasses_are_discovered() -> None:
    names = {cls.__name__ for cls in SUBCLASSES}
    assert {"TranscriptFormatError", "UnknownSpeakerError", "QuestionnaireFormatError", "RatingRulesError",
            "CodebookError", "UnknownCodeError", "ModelNotFoundError"} <= names


@pytest.mark.parametrize("cls", SUBCLASSES, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("protocol", [0, pickle.DEFAULT_PROTOCOL, pickle.HIGHEST_PROTOCOL])
def test_errors_every_subclass_survives_pickle(cls: type[CodeerError], protocol: int) -> None:
    error = make_error(cls)
    restored = pickle.loads(pickle.dumps(error, protocol=protocol))
    assert type(restored) is cls
    assert str(restored) == str(error) and str(error)
    assert restored.args == error.args
    assert vars(restored) == vars(error)
    with pytest.raises(cls):
        raise restored


def test_errors_pickled_error_keeps_attributes_of_the_location() -> None:
    error = errors.UnknownSpeakerError("BA.txt", "unknown speaker 'Interviewer'", line=14, fix="Rename it.")
    restored = pickle.loads(pickle.dumps(error))
    assert (restored.path, restored.line, restored.problem, restored.reason) == \
        ("BA.txt", 14, "unknown speaker 'Interviewer'", "unknown speaker label")


@pytest.mark.parametrize(("error", "message"), [
    (errors.TranscriptFormatError("BA.txt", "unknown speaker 'Interviewer'", line=14, expected='"Respondent:"',
                                  fix="Rename it."),
     "BA.txt, line 14: unknown speaker 'Interviewer'. Expected \"Respondent:\". Rename it."),
    (errors.EmptyTranscriptError("BA.txt", "the file is empty"), "BA.txt: the file is empty."),
    (errors.CodebookError("cb.yaml", "parent 'b' does not exist", "a", "Fix the parent."),
     "cb.yaml, code 'a': parent 'b' does not exist. Fix the parent."),
    (errors.CodebookError("cb.yaml", "no such file"), "cb.yaml: no such file."),
    (errors.RatingRulesError("rules.yaml", "evidence", "not a number", expected="a number from 0 to 1"),
     "rules.yaml, key 'evidence': not a number. Expected a number from 0 to 1."),
    (errors.RatingRulesError("rules.yaml", "", "no such file", fix="Pass a rules file."),
     "rules.yaml: no such file. Pass a rules file."),
    (errors.QuestionnaireFormatError("a.csv", ["row 2: 'x'", "row 3: 'y'"], fix="Fix the cells."),
     "a.csv: 2 problem(s):\n  row 2: 'x'\n  row 3: 'y'\nFix the cells."),
    (errors.QuestionnaireFormatError("a.csv", [f"row {n}" for n in range(30)], what="cannot read"),
     "a.csv: cannot read:\n  " + "\n  ".join(f"row {n}" for n in range(25)) + "\n  ... and 5 more"),
])
def test_errors_message_names_where_what_expected_and_fix(error: CodeerError, message: str) -> None:
    assert str(error) == message


def test_errors_docstring_examples_run() -> None:
    result = doctest.testmod(errors)
    assert result.attempted > 0 and result.failed == 0
