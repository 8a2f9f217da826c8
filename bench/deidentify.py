"""De-identification figures for docs/privacy.md (issue 19): what deduce flags on the demo
corpus and on the thesis excerpt, bare (names, contacts, identifiers; places, institutions,
dates and ages off) and with codeer's filters (allow-lists, places, common words), and the time
per transcript.

    .venv/bin/python -m bench.deidentify [--thesis PATH]

Prints every flagged span with its count: what is a person and what is not is judged by
reading them (docs/privacy.md lists the judgement).
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

from pipeline.corpus import (
    deidentify_transcript,
    find_sources,
    load_deidentifier,
    load_transcript,
    metadata_for,
    metadata_places,
)

ROOT = Path(__file__).resolve().parents[1]
THESIS = Path("/work/shared/thesis/scriptie-leren-stimuleren-achterhoek.txt")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--thesis", type=Path, default=THESIS)
    args = parser.parse_args()
    started = time.perf_counter()
    filtered = load_deidentifier()
    print(f"load: {time.perf_counter() - started:.1f} s")
    bare = type(filtered)(filtered._deduce)  # no allow-list, no places, no common words

    sidecars: dict = {}
    timings, flagged_bare, flagged, n_turns = [], Counter(), Counter(), 0
    for path, source in find_sources([ROOT / "data" / "demo"]):
        transcript = load_transcript(path, source=source, metadata=metadata_for(path, sidecars, None))
        places = metadata_places(path, sidecars)
        started = time.perf_counter()
        deidentify_transcript(transcript, filtered, allow=places)
        timings.append(time.perf_counter() - started)
        for turn in transcript.turns:
            n_turns += 1
            body = transcript.text[turn.start:turn.end]
            flagged_bare.update((kind, body[s:e]) for s, e, kind in bare.find(body))
            flagged.update((kind, body[s:e]) for s, e, kind in filtered.find(body, frozenset(p.casefold() for p in places)))
    print(f"demo: {len(timings)} files, {n_turns} turns; de-identification {sum(timings):.2f} s in all, "
          f"{sum(timings) / len(timings) * 1000:.0f} ms per file on average, max {max(timings) * 1000:.0f} ms")
    _show("demo, bare deduce", flagged_bare)
    _show("demo, codeer", flagged)

    if args.thesis.is_file():
        bare_thesis, thesis = Counter(), Counter()
        for paragraph in args.thesis.read_text(encoding="utf-8").split("\n"):
            bare_thesis.update((kind, paragraph[s:e]) for s, e, kind in bare.find(paragraph))
            thesis.update((kind, paragraph[s:e]) for s, e, kind in filtered.find(paragraph))
        _show("thesis, bare deduce", bare_thesis)
        _show("thesis, codeer", thesis)


def _show(title: str, counts: Counter) -> None:  # type: ignore[type-arg]
    print(f"\n{title}: {sum(counts.values())} span(s), {len(counts)} distinct")
    for (kind, text), n in counts.most_common():
        print(f"  {n:>3}  {kind:<9} {text!r}")


if __name__ == "__main__":
    main()
