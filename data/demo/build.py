"""Build the fictional demo corpus and its seed annotations from the authoring files.

The writers of the corpus coded each respondent sentence while writing it, with ``[[...]]``
markers (see ``annotations/authoring/GUIDE.md``). This script strips the markers, writes the
transcripts and documents in the formats researchers deliver (txt in several encodings and
speaker conventions, docx, pdf), ingests them with codeer's own reader and segmenter, and
writes one self-contained seed record per utterance of the labelled transcripts.

Run it with ``make corpus``; it is deterministic, so re-running changes nothing.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pipeline.corpus import annotation_record
from pipeline.codebook import load_codebook  # noqa: E402
from pipeline.records import Annotation, Coding  # noqa: E402
from pipeline.resources import holdout_dir, seed_dir  # noqa: E402
from pipeline.corpus import load_segmenter, segment_transcript
from pipeline.corpus import SourceMetadata, load_transcript

AUTHORING = ROOT / "annotations" / "authoring"
DEMO = ROOT / "data" / "demo"
SEED = seed_dir()
HOLDOUT = holdout_dir()
ANNOTATOR = "demo-auteur"
CODED_AT = "2026-11-28T00:00:00+00:00"
# Transcripts left unlabelled for semi-supervised learning and the demo; their authors' codes
# are kept apart in pipeline/resources/annotations/holdout/ as a test set that training never sees.
UNLABELLED = {"MH", "BL", "MR", "BS", "MZ"}
UNLABELLED_DOCUMENTS = {"DH-innovatieagenda", "DL-personeelsnotitie", "DS-visienotitie", "DZ-begroting"}
# How each interview is delivered: the variants researchers produce.
VARIANTS = {
    "ME": "docx", "BS": "docx", "MZ": "docx",
    "BH": "i-r", "MK": "interviewer-crlf-cp1252", "ML": "timestamps-utf16", "BR": "utf8-bom", "RL": "code-label",
}
DOCUMENT_VARIANTS = {"DH-begroting": "pdf", "DE-koersdocument-zelforganisatie": "docx"}
MUNICIPALITIES = {"E": "Eschveld", "H": "Hulsterlo", "K": "Kerkeloo", "L": "Lemmerbroek", "R": "Ravenhorst",
                  "S": "Sonnevelde", "V": "Vennebroek", "Z": "Zandeloo"}
ROLES = {"B": "beleidsmedewerker", "M": "manager", "R": "regio", "D": "document"}
MARKER = re.compile(r"[ \t]*\[\[([^\]]*)\]\]")
FACETS = {"v": "provision", "p": "practice"}


def strip_markers(text: str) -> tuple[str, list[tuple[str, list[Coding]]]]:
    """Return the clean text and, per marker, the sentence text before it and its codings."""
    anchors: list[tuple[str, list[Coding]]] = []
    for line in text.split("\n"):
        previous = 0
        for match in MARKER.finditer(line):
            before = MARKER.sub("", line[previous : match.start()]).strip()
            before = re.sub(r"^(Onderzoeker|Respondent):\s*", "", before)
            previous = match.end()
            codings = []
            for item in match.group(1).split(";"):
                parts = [part.strip() for part in item.split(":")]
                codings.append(Coding(parts[0], parts[1], FACETS.get(parts[2]) if len(parts) > 2 else None))
            anchors.append((before, codings))
    return MARKER.sub("", text), anchors


def apply_variant(text: str, variant: str) -> str:
    if variant == "i-r":
        text = re.sub(r"^Onderzoeker:", "I:", text, flags=re.M)
        return re.sub(r"^Respondent:", "R:", text, flags=re.M)
    if variant.startswith("interviewer"):
        return re.sub(r"^Onderzoeker:", "Interviewer:", text, flags=re.M)
    if variant.startswith("timestamps"):
        lines, seconds = [], 5
        for line in text.split("\n"):
            if line.startswith(("Onderzoeker:", "Respondent:")):
                line = f"[{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}] {line}"
                seconds += 17 + len(line) // 12
            lines.append(line)
        return "\n".join(lines)
    if variant == "code-label":
        return re.sub(r"^Respondent:", "RL:", text, flags=re.M)
    return text


def write_file(clean: str, target: Path, variant: str) -> Path:
    """Write ``clean`` in the delivery format ``variant``; return the path written."""
    text = apply_variant(clean, variant)
    if variant == "docx" or variant == "pdf":
        target = target.with_suffix("." + variant)
        if variant == "docx":
            import docx

            document = docx.Document()
            for line in text.split("\n"):
                document.add_paragraph(line)
            document.core_properties.title = "Fictief demotranscript (codeer)"
            document.core_properties.created = __import__("datetime").datetime(2026, 11, 28)
            document.core_properties.modified = document.core_properties.created
            document.save(target)
        else:
            from fpdf import FPDF

            pdf = FPDF()
            pdf.set_creation_date(__import__("datetime").datetime(2026, 11, 28, tzinfo=__import__("datetime").UTC))
            pdf.add_font("DejaVu", "", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
            pdf.add_page()
            pdf.set_font("DejaVu", size=10)
            for paragraph in text.split("\n"):
                pdf.multi_cell(0, 5, paragraph, align="L", new_x="LMARGIN", new_y="NEXT")
            pdf.output(str(target))
        return target
    target = target.with_suffix(".txt")
    if variant == "interviewer-crlf-cp1252":
        target.write_bytes(text.replace("\n", "\r\n").encode("cp1252"))
    elif variant == "timestamps-utf16":
        target.write_bytes(text.encode("utf-16"))
    elif variant == "utf8-bom":
        target.write_bytes(text.encode("utf-8-sig"))
    else:
        target.write_text(text, encoding="utf-8")
    return target


def anchor(transcript, utterances, anchors, source: str) -> dict[str, list[Coding]]:
    """Attach each marker's codings to the utterance that ends its sentence."""
    by_utterance: dict[str, list[Coding]] = {}
    cursor = 0
    for before, codings in anchors:
        words = before.split()[-8:]
        if not words:
            raise SystemExit(f"{source}: a marker without a sentence before it")
        pattern = r"\s+".join(re.escape(word) for word in words)
        match = re.compile(pattern).search(transcript.text, cursor)
        if match is None:
            raise SystemExit(f"{source}: cannot find the sentence ending {' '.join(words)!r}")
        cursor = match.end()
        position = match.end() - 1
        owner = next((u for u in utterances if u.start <= position < u.end), None)
        if owner is None:
            raise SystemExit(f"{source}: the coded sentence ending at {position} is not respondent speech")
        merged = by_utterance.setdefault(owner.utterance_id, [])
        for coding in codings:
            if all(existing.code != coding.code for existing in merged):
                merged.append(coding)
    return by_utterance


def main() -> None:
    codebook = load_codebook("garvin2008")
    segmenter = load_segmenter(model=None)
    (DEMO / "interviews").mkdir(parents=True, exist_ok=True)
    (DEMO / "documents").mkdir(parents=True, exist_ok=True)
    for folder in (SEED, HOLDOUT):
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.jsonl"):
            old.unlink()
    metadata_rows = []
    sources = sorted(AUTHORING.glob("*.txt")) + sorted((AUTHORING / "documents").glob("*.txt"))
    for authoring in sources:
        name = authoring.stem
        code = name.split("-")[0]
        is_document = authoring.parent.name == "documents"
        suffix = code[1:]
        municipality = MUNICIPALITIES.get(suffix, "regio Lindeland")
        role = ROLES["D"] if is_document else ROLES[code[0]]
        clean, anchors = strip_markers(authoring.read_text(encoding="utf-8"))
        folder = DEMO / ("documents" if is_document else "interviews")
        for old in folder.glob(name + ".*"):
            old.unlink()
        variant = (DOCUMENT_VARIANTS if is_document else VARIANTS).get(name, "utf8")
        written = write_file(clean, folder / name, variant)
        relative = written.relative_to(DEMO).as_posix()
        metadata_rows.append({"file": relative, "municipality": municipality, "respondent": code, "role": role})
        transcript = load_transcript(written, source=relative,
                                     metadata=SourceMetadata(municipality, code, role))
        utterances = segment_transcript(transcript, segmenter)
        coded = anchor(transcript, utterances, anchors, relative)
        for codings in coded.values():
            for coding in codings:
                codebook[coding.code]  # raises on a misspelt code
        labelled = name not in (UNLABELLED_DOCUMENTS if is_document else UNLABELLED)
        target = (SEED if labelled else HOLDOUT) / f"{name}.jsonl"
        with open(target, "w", encoding="utf-8") as handle:
            for utterance in utterances:
                record = Annotation(
                    utterance_id=utterance.utterance_id, source_file=relative, content_hash=transcript.content_hash,
                    start=utterance.start, end=utterance.end, text=utterance.text,
                    codings=tuple(coded.get(utterance.utterance_id, ())), annotator=ANNOTATOR, created_at=CODED_AT,
                    codebook_version=codebook.version, transcript_id=transcript.transcript_id,
                    municipality=municipality, respondent=code, role=role, question=utterance.question,
                    origin="seed" if labelled else "holdout",
                )
                handle.write(json.dumps(annotation_record(record), ensure_ascii=False) + "\n")
        print(f"{relative:45s} {variant:24s} {len(utterances):4d} utterances, {len(coded):4d} coded"
              f"{'' if labelled else '  (held out)'}")
    with open(DEMO / "metadata.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["file", "municipality", "respondent", "role"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(sorted(metadata_rows, key=lambda row: row["file"]))


if __name__ == "__main__":
    main()
