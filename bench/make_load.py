"""Build a scaled, fictional load corpus from the demo corpus (issue 8).

For load only, never for quality claims: N invented municipalities, each with a policy
officer (B) and a manager (M) interview assembled from shuffled demo answers (with the
interviewer question each answered), written as real transcript files in the thesis format
plus a ``metadata.csv``. Deterministic by seed.

Every utterance text and question stays distinct at any scale: the k-th reuse of a demo
sentence gets a spoken opener ("Nou, zeg maar, ..."), so the embedding cache cannot make a
larger corpus look cheaper than it is. At 1x almost every sentence is used once, as written.

Example::

    python -m bench.make_load --municipalities 80 --seed 1 --out /tmp/load-10x
"""

from __future__ import annotations

import argparse
import csv
import logging
import random
import re
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.corpus import Segmenter, find_sources, load_segmenter, load_transcript, metadata_for, segment_transcript
from pipeline.records import Role, Speaker

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEMO_DIR = PROJECT_ROOT / "data" / "demo"
DEMO_MUNICIPALITIES = 8
MARKER = "Opmerking: fictief belastingtranscript voor de benchmark van codeer, samengesteld uit geschudde demo-antwoorden"

# Invented name parts; the combinations are load-data names, not places.
_NAME_STARTS = ("Brammel", "Dukker", "Eppel", "Fransel", "Gummer", "Hokkel", "Immel", "Jorrel", "Kwabbel",
                "Lottel", "Mirrel", "Nobbel", "Oppel", "Rokkel", "Sammel", "Tukkel", "Vonkel", "Wubbel",
                "Zommel", "Bakkel", "Dorrel", "Fikkel", "Gadder", "Knotter")
_NAME_ENDS = ("broek", "dal", "hoven", "kamp", "lo", "mond", "rade", "sloot", "veld", "voorde", "waard",
              "wolde", "horst", "stede", "donk", "laar")
_OPENERS = ("Nou", "Ja", "Kijk", "Tja", "Goed", "Eerlijk gezegd", "Weet je", "Oké", "Zeker", "Hm", "Och", "Nee")
_FILLERS = ("zeg maar", "eigenlijk", "volgens mij", "in de praktijk", "als ik het goed zie", "denk ik", "bij ons",
            "op zich", "in principe", "ook wel", "natuurlijk", "trouwens")
_QUESTION_OPENERS = ("En", "Dan", "Oké", "Goed", "Even terug", "Nog één ding", "Ander punt", "Vervolgvraag",
                     "Mag ik doorvragen", "Tot slot op dit punt", "Aansluitend", "Kort nog")


@dataclass(frozen=True, slots=True)
class Answer:
    """One demo respondent turn: the interviewer question before it and its sentences."""

    question: str
    sentences: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LoadCorpus:
    """What :func:`make_corpus` wrote."""

    out_dir: Path
    metadata_file: Path
    municipalities: tuple[str, ...]
    n_interviews: int
    n_sentences: int


def municipality_names(n_municipalities: int) -> list[str]:
    """``n_municipalities`` distinct invented names (a roman-like suffix once the parts run out)."""
    base = [start + end for start in _NAME_STARTS for end in _NAME_ENDS]
    random.Random(len(base)).shuffle(base)  # fixed order, independent of the corpus seed
    names = []
    for index in range(n_municipalities):
        name = base[index % len(base)]
        round_ = index // len(base)
        names.append(name if round_ == 0 else f"{name} {round_ + 1}")
    return names


def respondent_suffix(index: int) -> str:
    """Upper-case letters for municipality ``index`` (AA, AB, ...; three letters past 676)."""
    letters = ""
    value = index
    width = 2 if index < 26 * 26 else 3
    for _ in range(width):
        value, rest = divmod(value, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def demo_answers(demo_dir: Path, segmenter: Segmenter) -> tuple[dict[Role, list[Answer]], int, tuple[str, ...]]:
    """Demo interview answers by respondent role (the regional respondent counts as a manager).

    Returns ``(answers, n_demo_utterances, demo municipality names)``; the count includes the
    documents, so a 1x corpus has about as many utterances as the demo.
    """
    pools: dict[Role, list[Answer]] = {Role.BELEIDSMEDEWERKER: [], Role.MANAGER: []}
    n_utterances = 0
    municipalities: set[str] = set()
    sidecars: dict[Path, dict] = {}  # type: ignore[type-arg]
    for path, source in find_sources([demo_dir]):
        transcript = load_transcript(path, source=source, metadata=metadata_for(path, sidecars, None))
        utterances = segment_transcript(transcript, segmenter)
        n_utterances += len(utterances)
        municipalities.add(transcript.municipality)
        if transcript.role == Role.DOCUMENT:
            continue
        role = Role.BELEIDSMEDEWERKER if transcript.role == Role.BELEIDSMEDEWERKER else Role.MANAGER
        by_turn: dict[int, list[str]] = {}
        questions: dict[int, str] = {}
        for utterance in utterances:
            if utterance.speaker != Speaker.RESPONDENT:
                continue
            by_turn.setdefault(utterance.turn, []).append(utterance.text)
            questions[utterance.turn] = utterance.question
        pools[role].extend(Answer(_one_line(questions[turn]), tuple(_one_line(s) for s in sentences))
                           for turn, sentences in sorted(by_turn.items()) if questions[turn].strip())
    return pools, n_utterances, tuple(sorted(municipalities))


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _lower_first(text: str, keep: Sequence[str]) -> str:
    first = text.split(" ", 1)[0]
    if len(first) > 1 and first[1:].islower() and first.strip(".,;:!?") not in keep:
        return text[0].lower() + text[1:]
    return text


def _variant(text: str, k: int, openers: Sequence[str], joint: str, keep: Sequence[str]) -> str:
    """The ``k``-th distinct variant of ``text``: an opener, repeated openers, a filler, the text."""
    if k == 0:
        return text
    k -= 1
    opener = openers[k % len(openers)]
    filler = _FILLERS[(k // len(openers)) % len(_FILLERS)]
    repeat = k // (len(openers) * len(_FILLERS))
    extra = f"{openers[repeat % len(openers)].lower()}, " * repeat
    return f"{opener}, {extra}{filler}{joint} {_lower_first(text, keep)}"


def sentence_variant(text: str, k: int, keep: Sequence[str] = ()) -> str:
    """The ``k``-th distinct spoken variant of a sentence (``k = 0``: as written)."""
    return _variant(text, k, _OPENERS, ",", keep)


def question_variant(text: str, k: int, keep: Sequence[str] = ()) -> str:
    """The ``k``-th distinct variant of an interviewer question (``k = 0``: as written)."""
    return _variant(text, k, _QUESTION_OPENERS, ":", keep)


def _rename(text: str, pattern: re.Pattern[str] | None, name: str) -> str:
    return pattern.sub(name, text) if pattern else text


class _Deck:
    """Answers of one role dealt in shuffled order; reshuffled when used up."""

    def __init__(self, answers: list[Answer], rng: random.Random) -> None:
        self.answers = answers
        self.rng = rng
        self.order: list[Answer] = []

    def draw(self) -> Answer:
        if not self.order:
            self.order = list(self.answers)
            self.rng.shuffle(self.order)
        return self.order.pop()


def make_corpus(
    n_municipalities: int,
    out_dir: Path,
    *,
    seed: int = 0,
    demo_dir: Path = DEMO_DIR,
    segmenter: Segmenter | None = None,
    utterances_per_interview: int | None = None,
    overwrite: bool = False,
) -> LoadCorpus:
    """Write a load corpus of ``n_municipalities`` fictional municipalities to ``out_dir``.

    Parameters
    ----------
    n_municipalities : int
        Municipalities to invent; each gets a B and an M interview. 8 is the demo's size.
    out_dir : Path
        Target folder: ``interviews/*.txt``, ``metadata.csv`` and a ``README.md``.
    seed : int
        Seed for the order of the answers; the same seed writes the same files.
    demo_dir : Path
        The demo corpus the answers come from.
    segmenter : Segmenter, optional
        Splits demo answers into sentences (default: the blank Dutch fallback, so the output
        does not depend on which spaCy model is installed).
    utterances_per_interview : int, optional
        Respondent sentences per interview (default: the demo's utterances / 16).
    overwrite : bool
        Replace a corpus this module wrote earlier in ``out_dir``.

    Returns
    -------
    LoadCorpus

    Raises
    ------
    FileExistsError
        When ``out_dir`` holds files and ``overwrite`` is false.
    """
    if n_municipalities < 1:
        raise ValueError(f"n_municipalities must be 1 or more, got {n_municipalities}")
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out_dir} is not empty; choose an empty folder or pass --overwrite.")
        shutil.rmtree(out_dir / "interviews", ignore_errors=True)
    segmenter = segmenter or load_segmenter(model=None)
    pools, n_demo_utterances, demo_names = demo_answers(demo_dir, segmenter)
    target = utterances_per_interview or max(1, round(n_demo_utterances / (2 * DEMO_MUNICIPALITIES)))
    rng = random.Random(seed)
    decks = {role: _Deck(answers, rng) for role, answers in pools.items()}
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, demo_names)) + r")\b") if demo_names else None
    names = municipality_names(n_municipalities)
    sentence_uses: dict[str, int] = {}
    question_uses: dict[str, int] = {}
    (out_dir / "interviews").mkdir(parents=True, exist_ok=True)
    rows = []
    n_sentences = 0
    for index, name in enumerate(names):
        suffix = respondent_suffix(index)
        for role, letter, function in ((Role.BELEIDSMEDEWERKER, "B", "beleidsmedewerker sociaal domein"),
                                       (Role.MANAGER, "M", "manager sociaal domein")):
            code = letter + suffix
            lines = [f"Naam respondent: {code}", f"Functie: {function}", f"Werkend bij: gemeente {name}",
                     f"Tijd interview: {1 + index % 28} maart 2026, {9 + index % 8}.00 uur",
                     "Tijdsduur interview: 60 minuten", MARKER, ""]
            n_written = 0
            while n_written < target:
                answer = decks[role].draw()
                k = question_uses.get(answer.question, 0)
                question_uses[answer.question] = k + 1
                question = question_variant(_rename(answer.question, pattern, name), k, names)
                sentences = []
                for sentence in answer.sentences[: target - n_written]:
                    k = sentence_uses.get(sentence, 0)
                    sentence_uses[sentence] = k + 1
                    sentences.append(sentence_variant(_rename(sentence, pattern, name), k, names))
                n_written += len(sentences)
                lines += [f"Onderzoeker: {question}", "", f"Respondent: {' '.join(sentences)}", ""]
            n_sentences += n_written
            relative = f"interviews/{code}.txt"
            (out_dir / relative).write_text("\n".join(lines), encoding="utf-8")
            rows.append((relative, name, code, role.value))
    metadata_file = out_dir / "metadata.csv"
    with open(metadata_file, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["file", "municipality", "respondent", "role"])
        writer.writerows(rows)
    (out_dir / "README.md").write_text(
        f"# Load corpus (fictional)\n\nWritten by `bench/make_load.py` (seed {seed}) from the fictional demo corpus: "
        f"{n_municipalities} invented municipalities, {len(rows)} interviews assembled from shuffled demo answers. "
        "For load tests only: it says nothing about how well codeer codes.\n", encoding="utf-8")
    return LoadCorpus(out_dir, metadata_file, tuple(names), len(rows), n_sentences)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m bench.make_load --municipalities N --seed S --out DIR``."""
    parser = argparse.ArgumentParser(prog="python -m bench.make_load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--municipalities", type=int, default=DEMO_MUNICIPALITIES, help="how many (8 = demo size)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="output folder (empty or new)")
    parser.add_argument("--overwrite", action="store_true", help="replace a load corpus written there before")
    args = parser.parse_args(argv)
    try:
        corpus = make_corpus(args.municipalities, args.out, seed=args.seed, overwrite=args.overwrite)
    except (FileExistsError, ValueError) as err:
        print(f"Error: {err}", file=sys.stderr)
        return 1
    print(f"{corpus.n_interviews} interviews, {corpus.n_sentences} respondent sentences, "
          f"{len(corpus.municipalities)} municipalities -> {corpus.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
