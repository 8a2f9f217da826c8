"""De-identification (issue 19): names, e-mail and phone numbers become stable tags, the
header's name never reaches the store, places and organisations stay, the demo is untouched."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.corpus import (
    RESPONDENT_TAG,
    Deidentifier,
    Pseudonymizer,
    deidentify_transcript,
    find_sources,
    load_deidentifier,
    load_transcript,
    metadata_for,
    metadata_places,
    parse_transcript,
)
from pipeline.records import Speaker

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"

NAMED = """Naam respondent: Marieke Jansen-de Vries
Functie: beleidsmedewerker Wmo
Werkend bij: gemeente Aalten
Tijd interview: 3 april 2026, 14.00 uur

Onderzoeker: Hoe werkt u samen met andere organisaties?

Marieke Jansen-de Vries: Mijn collega Pieter Bakker van de GGD belt ons elke week. Met Sandra Wolters van het Wmo-loket deel ik alles, en Pieter stuurt dan een mail naar p.bakker@ggd.nl of belt 06-12345678.

Onderzoeker: En binnen de gemeente?

Marieke Jansen-de Vries: Daar is Kees Hendriksen onze teamleider. Ik, Marieke, vind dat de gemeente Aalten veel leert. Kees weet dat.
"""
NAMES = ("Marieke", "Jansen", "Vries", "Pieter", "Bakker", "Sandra", "Wolters", "Kees", "Hendriksen",
         "p.bakker@ggd.nl", "06-12345678")


@pytest.fixture(scope="module")
def deidentifier() -> Deidentifier:
    return load_deidentifier()


@pytest.fixture(scope="module")
def named(deidentifier: Deidentifier):  # type: ignore[no-untyped-def]
    transcript = parse_transcript(NAMED, "interview.txt", pseudonyms=Pseudonymizer.ephemeral())
    return transcript, deidentify_transcript(transcript, deidentifier)


def test_names_contacts_header_and_speaker_labels_are_replaced(named) -> None:  # type: ignore[no-untyped-def]
    original, result = named
    text = result.transcript.text
    for name in NAMES:
        assert name not in text, name
    assert text.startswith(f"Naam respondent: {original.respondent}\n")
    assert original.respondent.startswith("R")
    # speaker labels that are names become the standard labels, so the format stays parseable
    assert "\nRespondent: Mijn collega [PERSOON-1] van de GGD" in text
    assert "[EMAIL-1]" in text and "[TELEFOON-1]" in text
    assert f"Ik, {RESPONDENT_TAG}, vind" in text
    assert result.counts["HEADER"] == 1 and result.counts["LABEL"] == 2


def test_one_person_keeps_one_tag_within_a_transcript(named) -> None:  # type: ignore[no-untyped-def]
    text = named[1].transcript.text
    # "Pieter Bakker" and later "Pieter" are one person; Kees Hendriksen and "Kees" another
    assert text.count("[PERSOON-1]") == 2
    assert "Daar is [PERSOON-3] onze teamleider" in text and "[PERSOON-3] weet dat" in text
    assert "[PERSOON-4]" not in text


def test_places_and_organisations_stay(named) -> None:  # type: ignore[no-untyped-def]
    text = named[1].transcript.text
    for kept in ("gemeente Aalten", "GGD", "van het Wmo-loket", "Werkend bij: gemeente Aalten"):
        assert kept in text


def test_turn_offsets_point_into_the_new_text(named) -> None:  # type: ignore[no-untyped-def]
    original, result = named
    new = result.transcript
    assert [t.speaker for t in new.turns] == [t.speaker for t in original.turns]
    bodies = [new.text[t.start:t.end] for t in new.turns]
    assert bodies[0] == "Hoe werkt u samen met andere organisaties?"
    assert bodies[1].startswith("Mijn collega [PERSOON-1]") and bodies[1].endswith("belt [TELEFOON-1].")
    assert bodies[3].endswith("[PERSOON-3] weet dat.")
    assert new.content_hash != original.content_hash
    assert dict(new.header)["employer"] == "gemeente Aalten"
    # the de-identified text parses back to the same turns (a .qdpx round trip)
    again = parse_transcript(new.text, "interview.txt", pseudonyms=Pseudonymizer.ephemeral())
    assert again.respondent == original.respondent
    assert [(t.speaker, t.start, t.end) for t in again.turns] == [(t.speaker, t.start, t.end) for t in new.turns]


def test_deidentification_is_deterministic(deidentifier: Deidentifier, named) -> None:  # type: ignore[no-untyped-def]
    original, result = named
    assert deidentify_transcript(original, deidentifier).transcript == result.transcript


def test_the_municipality_of_the_transcript_is_not_a_name(deidentifier: Deidentifier) -> None:
    text = "Onderzoeker: Hoe gaat het?\n\nRespondent: Lindeveen doet dat goed, zegt Jan de Boer.\n"
    transcript = parse_transcript(text, "x.txt", pseudonyms=Pseudonymizer.ephemeral())
    assert deidentifier.find("Lindeveen doet dat goed.", frozenset({"lindeveen"})) == []
    new = deidentify_transcript(transcript, deidentifier, allow=["Lindeveen"]).transcript.text
    assert "Lindeveen doet dat goed" in new and "Jan de Boer" not in new


def test_the_demo_corpus_is_not_changed(deidentifier: Deidentifier) -> None:
    """The demo has no real names: de-identifying it changes nothing, so the packaged seed
    annotations (keyed by content hash) still attach. A change here is a false positive."""
    sidecars: dict = {}
    changed = []
    for path, source in find_sources([DEMO]):
        transcript = load_transcript(path, source=source, metadata=metadata_for(path, sidecars, None))
        result = deidentify_transcript(transcript, deidentifier, allow=metadata_places(path, sidecars))
        if result.transcript.text != transcript.text:
            changed.append((source, result.counts))
    assert changed == []


def test_speaker_label_names_are_respondent_or_interviewer(deidentifier: Deidentifier) -> None:
    text = ("Naam respondent: BQ\n\nPetra Smit: Hoe is het team?\n\nBQ: Goed, Petra Smit vroeg dat al eerder.\n\n"
            "Petra Smit: Dank u.\n")
    transcript = parse_transcript(text, "BQ.txt", pseudonyms=Pseudonymizer.ephemeral())
    assert [t.speaker for t in transcript.turns] == [Speaker.INTERVIEWER, Speaker.RESPONDENT, Speaker.INTERVIEWER]
    new = deidentify_transcript(transcript, deidentifier).transcript.text
    assert "Petra" not in new and "Smit" not in new
    assert "Onderzoeker: Hoe is het team?" in new and "Goed, [PERSOON-1] vroeg" in new


def test_a_registry_code_does_not_make_a_regional_respondent() -> None:
    text = "Naam respondent: Jan de Vries\n\nOnderzoeker: Vraag?\n\nRespondent: Antwoord.\n"
    transcript = parse_transcript(text, "x.txt", pseudonyms=Pseudonymizer.ephemeral())
    assert transcript.respondent == "R0001" and transcript.role.value == "other"
