"""Segmentation: Dutch sentence boundaries, offsets that lose nothing, stable ids."""

from __future__ import annotations

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pipeline.corpus.segment import load_segmenter, segment_transcript
from pipeline.corpus.transcripts import _LABEL_LINE, parse_transcript
from pipeline.records import Speaker


def sentences(segmenter, text: str) -> list[str]:
    transcript = parse_transcript(f"Onderzoeker: Vraag?\n\nRespondent: {text}\n", "t.txt")
    return [u.text for u in segment_transcript(transcript, segmenter)]


def test_segment_dutch_abbreviations_and_numbers(segmenter) -> None:
    text = ("Dat is bijv. lastig, o.a. door de Wmo. We kregen 2,9 miljard i.p.v. 2.9 mld. in jan. en feb. binnen. "
            "Dat was m.b.t. de jeugdzorg, d.w.z. ca. de helft. Echt waar… Ze zei: “Dat klopt niet.” (lacht) Tja.")
    result = sentences(segmenter, text)
    assert result[0] == "Dat is bijv. lastig, o.a. door de Wmo."
    assert "We kregen 2,9 miljard i.p.v. 2.9 mld. in jan. en feb. binnen." in result
    assert "Dat was m.b.t. de jeugdzorg, d.w.z. ca. de helft." in result
    assert "Ze zei: “Dat klopt niet.”" in result
    assert result[-1] == "(lacht) Tja."


def test_segment_newline_is_a_boundary_and_noise_is_folded(segmenter) -> None:
    assert sentences(segmenter, "Eerste gedachte zonder punt\nTweede regel. (lacht)") == [
        "Eerste gedachte zonder punt", "Tweede regel. (lacht)"]


def test_segment_context_ids_and_window(segmenter, interview_text: str) -> None:
    transcript = parse_transcript(interview_text, "BQ.txt")
    utterances = segment_transcript(transcript, segmenter)
    assert utterances[0].question == "Hoe zou u uw team omschrijven?"
    assert utterances[-1].question == "En nieuwe ideeën?"
    assert [u.utterance_id for u in utterances] == [u.utterance_id for u in segment_transcript(transcript, segmenter)]
    assert len({u.utterance_id for u in utterances}) == len(utterances)
    windowed = segment_transcript(transcript, load_segmenter(window=3, model=None))
    assert len(windowed) < len(utterances)
    assert all(u.turn == transcript.turns[u.turn].index for u in windowed)


WORD = st.text(alphabet=st.sampled_from("abcdeéëxyzABC0123,;'-()[]…“”\"?!.: "), min_size=1, max_size=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(paragraphs=st.lists(st.lists(WORD, min_size=1, max_size=25).map(" ".join), min_size=1, max_size=4),
       window=st.integers(1, 3))
def test_segment_offsets_reproduce_respondent_words(segmenter, paragraphs: list[str], window: int) -> None:
    # a paragraph that starts like "Naam:" is a speaker label, not speech
    assume(not any(_LABEL_LINE.match(paragraph) for paragraph in paragraphs))
    body = "\n".join(paragraphs)
    text = f"Onderzoeker: Vertel eens?\n\nRespondent: {body}\n\nOnderzoeker: Dank u.\n"
    if not body.strip():
        return
    transcript = parse_transcript(text, "t.txt")
    segmenter_n = segmenter if window == 1 else load_segmenter(window=window, model=None)
    utterances = segment_transcript(transcript, segmenter_n)
    for turn in transcript.turns:
        if turn.speaker != Speaker.RESPONDENT:
            continue
        own = [u for u in utterances if u.turn == turn.index]
        assert all(u.text == transcript.text[u.start : u.end] for u in own)
        assert all(a.end <= b.start for a, b in zip(own, own[1:]))  # in order, no overlap
        # joined with what lies between them, the utterances reproduce the turn exactly
        covered = "".join(transcript.text[u.start : u.end] for u in own)
        turn_text = transcript.text[turn.start : turn.end]
        assert "".join(turn_text.split()) == "".join(covered.split())
        gaps = [transcript.text[a.end : b.start] for a, b in zip(own, own[1:])]
        assert all(not gap.strip() for gap in gaps)
