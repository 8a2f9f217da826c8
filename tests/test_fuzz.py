"""Fuzzing the two readers of untrusted input (issue 20): whatever a transcript or a .qdpx holds,
codeer answers with a transcript or project, or with its own error, never a crash, and its
memory stays bounded."""

from __future__ import annotations

import io
import tracemalloc
import zipfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipeline.config import MB, InputLimits
from pipeline.corpus import parse_transcript
from pipeline.corpus.transcripts import decode_bytes, normalise_text
from pipeline.errors import CodeerError
from pipeline.qda import read_qdpx

SOURCE_GUID = "50C0E000-0000-4000-8000-000000000001"
CODE_GUID = "C0DE0000-0000-4000-8000-000000000001"
VALID_QDE = (
    '<?xml version="1.0" encoding="utf-8"?><Project xmlns="urn:QDA-XML:project:1.0" name="x">'
    '<Users><User guid="0D0E0000-0000-4000-8000-000000000001" name="anna"/></Users>'
    f'<CodeBook><Codes><Code guid="{CODE_GUID}" name="A" isCodable="true"/></Codes></CodeBook>'
    f'<Sources><TextSource guid="{SOURCE_GUID}" name="bron" plainTextPath="internal://{SOURCE_GUID}.txt">'
    '<PlainTextSelection guid="5E1E0000-0000-4000-8000-000000000009" startPosition="0" endPosition="10">'
    f'<Coding guid="C0D10000-0000-4000-8000-000000000009"><CodeRef targetGUID="{CODE_GUID}"/></Coding>'
    '</PlainTextSelection></TextSource></Sources></Project>')
SOURCE_TEXT = "Onderzoeker: Hoe gaat het?\nRespondent: De werkdruk is hoog.\n"
FUZZ_LIMITS = InputLimits(max_unpacked_bytes=4 * MB, max_members=50)

LINES = st.sampled_from([
    "Onderzoeker: Hoe gaat het?", "Respondent: Goed.", "R: ja", "I: nee", "Jan: hallo", "[00:12:31] Respondent: zo",
    "Gemeente: Testerveen", "Titel: Beleid", "Functie: manager", "", "   ", "Kortom: dat", "\ufeff", "\r", "::", "é",
])
TEXTS = st.one_of(st.lists(LINES, max_size=30).map("\n".join), st.text(max_size=400),
                  st.lists(st.one_of(LINES, st.text(max_size=40)), max_size=20).map("\n".join))


def _bounded(function, *args, limit: int = 64 * MB):  # type: ignore[no-untyped-def]
    """Call ``function``; return its result or CodeerError; fail on any other error or a big peak."""
    tracemalloc.start()
    try:
        try:
            result = function(*args)
        except CodeerError as err:
            result = err
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < limit, peak
    return result


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TEXTS)
@example("Respondent:\nRespondent:")
@example("Titel: x\n\n")
def test_fuzz_transcript_parser(text: str) -> None:
    normalised = normalise_text(text)
    result = _bounded(parse_transcript, normalised, Path("fuzz.txt"))
    if isinstance(result, CodeerError):
        return
    positions = [(turn.start, turn.end) for turn in result.turns]
    assert all(0 <= start < end <= len(normalised) for start, end in positions)
    assert positions == sorted(positions)
    assert all(end <= next_start for (_, end), (next_start, _) in zip(positions, positions[1:], strict=False))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_fuzz_transcript_bytes(data: bytes) -> None:
    result = _bounded(decode_bytes, data, "fuzz.txt")
    if not isinstance(result, CodeerError):
        text, encoding = result
        assert isinstance(text, str) and encoding


def _archive(qde: bytes, source: bytes, extra: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("project.qde", qde)
        archive.writestr(f"sources/{SOURCE_GUID}.txt", source)
        for name, data in extra:
            archive.writestr(name, data)
    return buffer.getvalue()


def _mutate(data: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    """Replace ``length`` bytes at each position (modulo the size) with the given bytes."""
    for position, length, replacement in edits:
        at = position % (len(data) + 1)
        data = data[:at] + replacement + data[at + length:]
    return data


EDITS = st.lists(st.tuples(st.integers(0, 5000), st.integers(0, 8),
                           st.one_of(st.binary(max_size=6), st.sampled_from([
                               b"<", b">", b"&amp;", b"&naam;", b'"', b"\x00", b"<!DOCTYPE Project [<!ENTITY naam 'x'>]>",
                               b"-1", b"99999", b"{", b"guid=", b"</Sources>", b"\xff\xfe"]))), max_size=6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(EDITS, st.sampled_from([SOURCE_TEXT.encode(), b"", b"\xef\xbb\xbf" + SOURCE_TEXT.encode(), b"\xff\xfe\x00"]),
       st.lists(st.tuples(st.sampled_from(["sources/x.txt", "../evil", "project.QDE", "a/"]), st.binary(max_size=20)),
                max_size=3))
def test_fuzz_qdpx_project_xml(tmp_path_factory, edits, source: bytes, extra) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "p.qdpx"
    path.write_bytes(_archive(_mutate(VALID_QDE.encode(), edits), source, extra))
    result = _bounded(read_qdpx, path, FUZZ_LIMITS)
    if not isinstance(result, CodeerError):
        for item in result.sources:
            assert all(0 <= s.start <= s.end <= len(item.text) for s in item.selections)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(EDITS)
def test_fuzz_qdpx_archive_bytes(tmp_path_factory, edits) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "p.qdpx"
    path.write_bytes(_mutate(_archive(VALID_QDE.encode(), SOURCE_TEXT.encode(), []), edits))
    _bounded(read_qdpx, path, FUZZ_LIMITS)
