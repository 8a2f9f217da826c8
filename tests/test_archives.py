"""Limits on untrusted files (issue 20): zip bombs in .qdpx and .docx, archives with too many or
too large members, transcripts too large to read, entity references in a .qdpx."""

from __future__ import annotations

import tracemalloc
import zipfile
from pathlib import Path

import pytest

from pipeline.config import MB, InputLimits, Settings
from pipeline.corpus import ingest_paths, load_transcript
from pipeline.errors import InputTooLargeError, QdaFormatError
from pipeline.qda import read_qdpx

SOURCE_GUID = "50C0E000-0000-4000-8000-000000000001"
CODE_GUID = "C0DE0000-0000-4000-8000-000000000001"
INTERVIEW = "Gemeente: Testerveen\n\nOnderzoeker: Hoe gaat het?\n\nRespondent: Goed, de werkdruk is hoog.\n"


def _write_zeros(archive: zipfile.ZipFile, name: str, n_bytes: int) -> None:
    """A member of ``n_bytes`` zeros, written in chunks (never held in memory whole)."""
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    with archive.open(info, "w", force_zip64=True) as handle:
        chunk = bytes(MB)
        for _ in range(n_bytes // MB):
            handle.write(chunk)


def _zip_bomb(path: Path, bomb_member: str, n_bytes: int, others: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, data in others.items():
            archive.writestr(name, data)
        _write_zeros(archive, bomb_member, n_bytes)
    return path


def _qde(content: str = "Respondent: kort.", dtd: str = "", description: str = "") -> str:
    return (f'<?xml version="1.0" encoding="utf-8"?>{dtd}<Project xmlns="urn:QDA-XML:project:1.0" name="x">'
            f'<CodeBook><Codes><Code guid="{CODE_GUID}" name="A" isCodable="true">'
            f'<Description>{description}</Description></Code></Codes></CodeBook>'
            f'<Sources><TextSource guid="{SOURCE_GUID}" name="bron"><PlainTextContent>{content}</PlainTextContent>'
            f'</TextSource></Sources></Project>')


def _peak_of(function, *args, **kwargs) -> tuple[BaseException | None, int]:
    """Run ``function``; return what it raised and the peak of Python memory it allocated."""
    tracemalloc.start()
    raised = None
    try:
        function(*args, **kwargs)
    except BaseException as err:  # noqa: BLE001 - handed back to the test to assert on
        raised = err
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return raised, peak


def test_archives_qdpx_zip_bomb_is_refused_before_unpacking(tmp_path: Path) -> None:
    # the same ratio as the 1 GiB bomb of the issue (about 1000 to 1), 64 MiB to keep the test quick
    bomb = _zip_bomb(tmp_path / "bom.qdpx", "project.qde", 64 * MB, {})
    assert bomb.stat().st_size < MB
    raised, peak = _peak_of(read_qdpx, bomb)
    assert isinstance(raised, InputTooLargeError)
    assert "zip bomb" in str(raised) and "project.qde" in str(raised) and "bom.qdpx" in str(raised)
    assert peak < 8 * MB


def test_archives_qdpx_source_bomb_is_refused(tmp_path: Path) -> None:
    qde = _qde().replace("<PlainTextContent>Respondent: kort.</PlainTextContent>", "").replace(
        'name="bron">', f'name="bron" plainTextPath="internal://{SOURCE_GUID}.txt">')
    bomb = _zip_bomb(tmp_path / "bron.qdpx", f"sources/{SOURCE_GUID}.txt", 16 * MB, {"project.qde": qde.encode()})
    raised, peak = _peak_of(read_qdpx, bomb)
    assert isinstance(raised, InputTooLargeError) and f"sources/{SOURCE_GUID}.txt" in str(raised)
    assert peak < 8 * MB


def test_archives_docx_zip_bomb_fails_its_file_alone(tmp_path: Path, fresh_store, segmenter) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    _zip_bomb(folder / "bom.docx", "word/document.xml", 64 * MB, {"[Content_Types].xml": b"<Types/>"})
    (folder / "BA.txt").write_text(INTERVIEW, encoding="utf-8")
    raised, peak = _peak_of(load_transcript, folder / "bom.docx")
    assert isinstance(raised, InputTooLargeError) and "word/document.xml" in str(raised)
    assert peak < 8 * MB
    report = ingest_paths([folder], fresh_store, segmenter)
    assert [(Path(r.path).name, r.status, r.reason) for r in report.results] == [
        ("BA.txt", "new", None), ("bom.docx", "failed", "file too large")]


def test_archives_members_count_and_total_size_are_limited(tmp_path: Path) -> None:
    many = tmp_path / "veel.qdpx"
    with zipfile.ZipFile(many, "w") as archive:
        archive.writestr("project.qde", _qde())
        for i in range(30):
            archive.writestr(f"sources/{i}.txt", b"x")
    with pytest.raises(InputTooLargeError, match="31 members, more than the 20"):
        read_qdpx(many, InputLimits(max_members=20))
    assert read_qdpx(many).sources[0].text == "Respondent: kort."
    with pytest.raises(InputTooLargeError, match="max_unpacked_mb"):
        read_qdpx(many, InputLimits(max_unpacked_bytes=100))
    with pytest.raises(InputTooLargeError, match="more than the 0.0 MB codeer reads as a project.*CODEER_MAX_FILE_MB"):
        read_qdpx(many, InputLimits(max_file_bytes=10))


def test_archives_large_transcript_is_refused_without_being_read(tmp_path: Path) -> None:
    huge = tmp_path / "groot.txt"
    with open(huge, "wb") as handle:  # 500 MB, sparse: costs no disk
        handle.truncate(500 * MB)
    raised, peak = _peak_of(load_transcript, huge)
    assert isinstance(raised, InputTooLargeError)
    assert "500.0 MB, more than the 10.0 MB" in str(raised) and "CODEER_MAX_TEXT_MB" in str(raised)
    assert peak < MB
    small = tmp_path / "BA.txt"
    small.write_text(INTERVIEW, encoding="utf-8")
    assert load_transcript(small).turns
    with pytest.raises(InputTooLargeError):
        load_transcript(small, limits=InputLimits(max_text_bytes=20))


def test_archives_limits_come_from_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEER_MAX_TEXT_MB", "0.5")
    (tmp_path / "codeer.toml").write_text("max_compression_ratio = 50\n", encoding="utf-8")
    limits = Settings(home=tmp_path).input_limits
    assert limits.max_text_bytes == MB // 2 and limits.max_compression_ratio == 50
    assert limits.max_unpacked_bytes == InputLimits().max_unpacked_bytes


def test_archives_qdpx_predefined_entities_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "amp.qdpx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("project.qde", _qde("Respondent: kosten &amp; baten &lt;b&gt; caf&#233;, verder."))
    project = read_qdpx(path)
    assert project.sources[0].text == "Respondent: kosten & baten <b> café, verder."
    assert project.skipped == ()


def test_archives_qdpx_other_entities_leave_the_source_out_with_a_note(tmp_path: Path) -> None:
    path = tmp_path / "entity.qdpx"
    dtd = '<!DOCTYPE Project [<!ENTITY naam "Jan">]>'
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("project.qde", _qde("Respondent: dat zei &naam; gisteren, en meer tekst.", dtd=dtd))
    project = read_qdpx(path)
    assert project.sources == ()
    assert len(project.skipped) == 1 and "&naam;" in project.skipped[0] and "'bron'" in project.skipped[0]
    assert "left out" in project.skipped[0]
    outside = tmp_path / "outside.qdpx"
    with zipfile.ZipFile(outside, "w") as archive:
        archive.writestr("project.qde", _qde(dtd=dtd, description="code voor &naam; en anderen"))
    with pytest.raises(QdaFormatError, match=r"entity reference &naam; \(line 1\)"):
        read_qdpx(outside)
