"""Check an authoring file of the fictional demo corpus: marker syntax and coverage.

Usage: python annotations/authoring/check.py annotations/authoring/BE.txt [...]
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

INCENTIVES = (
    "psychologische_veiligheid waardering_verschillen openheid_nieuwe_ideeen tijd_evaluatie "
    "informatieoverdracht experimenteren informatie_verzamelen analyse onderwijs_training "
    "visie_op_leren actief_bevragen_luisteren belang_van_leren ondersteunen_perspectieven"
).split()
CONTEXT = (
    "cultuur strategie structuur omgeving centrale_rol inspelen_veranderingen soort_veranderingen "
    "decentralisaties documenten college verschillen_organisatorisch verschillen_inhoudelijk "
    "verbeterpunten_team verbeterpunten_organisatie teamomschrijving regionale_samenwerking"
).split()
MARKER = re.compile(r"\[\[(.*?)\]\]")


def check(path: Path) -> int:
    text = path.read_text(encoding="utf-8")
    problems = []
    counts: Counter[str] = Counter()
    directions: Counter[tuple[str, str]] = Counter()
    n_sentences = 0
    in_respondent = False
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("Onderzoeker:"):
            in_respondent = False
            if "[[" in line:
                problems.append(f"line {number}: marker in an interviewer turn")
            continue
        if line.startswith("Respondent:"):
            in_respondent = True
        if not in_respondent and not path.parent.name == "documents":
            continue
        body = MARKER.sub("", line)
        n_sentences += len(re.findall(r"[.?!…](?=\s|$)", body))
        for match in MARKER.finditer(line):
            before = line[: match.start()].rstrip()
            if not before or before[-1] not in ".?!…)":
                problems.append(f"line {number}: marker not right after a sentence end")
            for coding in match.group(1).split(";"):
                parts = [part.strip() for part in coding.strip().split(":")]
                code = parts[0]
                if code in INCENTIVES:
                    if len(parts) != 3 or parts[1] not in "+-0" or parts[2] not in ("v", "p"):
                        problems.append(f"line {number}: incentive coding {coding.strip()!r} must be code:+|-|0:v|p")
                        continue
                elif code in CONTEXT:
                    if len(parts) != 2 or parts[1] not in "+-0":
                        problems.append(f"line {number}: context coding {coding.strip()!r} must be code:+|-|0")
                        continue
                else:
                    problems.append(f"line {number}: unknown code {code!r}")
                    continue
                counts[code] += 1
                directions[(code, parts[1])] += 1
        if "[[" in MARKER.sub("", line) or "]]" in MARKER.sub("", line):
            problems.append(f"line {number}: unbalanced marker brackets")
    print(f"{path}: ~{n_sentences} sentences, {sum(counts.values())} codings")
    for code in INCENTIVES + CONTEXT:
        dirs = " ".join(f"{d}{directions[(code, d)]}" for d in "+-0")
        print(f"  {code:28s} {counts[code]:3d}   {dirs}")
    for problem in problems:
        print("  PROBLEM", problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(max(check(Path(arg)) for arg in sys.argv[1:]))
