#!/usr/bin/env python3
"""Validate items.jsonl of the real-text development set (stdlib + PyYAML).

usage: python3 check.py [CODEBOOK_YAML] [--items items.jsonl] [--thesis THESIS_TXT]

Checks: valid JSON per line; required fields and allowed values; code ids known in the
codebook (incentive, context and building-block codes, or "none"; group codes and the
quotes flag are not codable); text occurs verbatim in the thesis after whitespace
normalisation (hyphenated line breaks joined) and starts on the given line; one split per
section; no chapter 3.4 item in the yardstick; unique ids; no text twice. Prints counts per
code x split. Exit status 1 when any error is found (coverage shortfalls are warnings)."""
import argparse, collections, json, os, re, sys

from typing import Any

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CODEBOOK = os.path.join(HERE, "..", "codebook", "garvin2008.yaml")
# the thesis excerpt is not shipped with codeer: give its path with --thesis or CODEER_THESIS_TXT
DEFAULT_THESIS = os.environ.get("CODEER_THESIS_TXT", os.path.join(HERE, "..", "..", "..", "shared", "thesis",
                                                                  "scriptie-leren-stimuleren-achterhoek.txt"))
CODABLE_KINDS = {"incentive", "context", "building_block"}
DIRECTIONS = {"+", "-", "0", None}
FACETS = {"provision", "practice", None}
SPLITS = {"train", "yardstick"}
GENRES = {"prose", "recommendation", "definition", "question", "heading", "option", "label"}
REQUIRED = ["id", "text", "code", "direction", "facet", "section", "line", "split"]
MIN_YARDSTICK_PER_INCENTIVE = 5


def thesis_stream(path: str) -> tuple[str, list[int]]:
    """Normalised thesis text (whitespace collapsed, 'woord-\\n vervolg' joined) and the
    1-based source line of every character."""
    out: list[str] = []
    owner: list[int] = []
    prev_hyphen = False
    with open(path, encoding="utf-8") as fh:
        for n, raw in enumerate(fh.read().split("\n"), start=1):
            t = re.sub(r"\s+", " ", raw).strip()
            if not t:
                continue
            if out and not (prev_hyphen and re.match(r"[^\W\d_]", t)):
                out.append(" ")
                owner.append(n)
            out.extend(t)
            owner.extend([n] * len(t))
            prev_hyphen = bool(re.search(r"[^\W\d_]-$", t))
    return "".join(out), owner


def norm(s: str) -> str:
    s = re.sub(r"(?<=[^\W\d_])-\s*\n\s*(?=[^\W\d_])", "-", s)
    return re.sub(r"\s+", " ", s).strip()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("codebook", nargs="?", default=DEFAULT_CODEBOOK)
    ap.add_argument("--items", default=os.path.join(HERE, "items.jsonl"))
    ap.add_argument("--thesis", default=DEFAULT_THESIS)
    ap.add_argument("--verdicts", default=os.path.join(HERE, "thesis_verdicts.yaml"),
                    help="also verify the quotes and lines of this verdict file (skipped if absent)")
    a = ap.parse_args()

    cb = yaml.safe_load(open(a.codebook, encoding="utf-8"))
    kinds = {c["id"]: c["kind"] for c in cb["codes"]}
    codable = {k for k, v in kinds.items() if v in CODABLE_KINDS} | {"none"}
    incentives = [c["id"] for c in cb["codes"] if c["kind"] == "incentive"]
    stream, owner = thesis_stream(a.thesis)

    errors: list[str] = []
    items: list[dict[str, Any]] = []
    ids: set[str] = set()
    texts: dict[str, str] = {}
    section_split: dict[str, str] = {}
    for n, raw in enumerate(open(a.items, encoding="utf-8"), start=1):
        if not raw.strip():
            continue
        where = f"items line {n}"
        try:
            it = json.loads(raw)
        except json.JSONDecodeError as e:
            errors.append(f"{where}: invalid JSON ({e})")
            continue
        missing = [k for k in REQUIRED if k not in it]
        if missing:
            errors.append(f"{where}: missing {missing}")
            continue
        where = f"{where} ({it['id']})"
        if it["id"] in ids:
            errors.append(f"{where}: duplicate id")
        ids.add(it["id"])
        if it["code"] not in codable:
            errors.append(f"{where}: unknown or non-codable code {it['code']!r} (kind {kinds.get(it['code'])})")
        for extra in it.get("also", []):
            if extra not in codable or extra == "none" or extra == it["code"]:
                errors.append(f"{where}: bad 'also' code {extra!r}")
        if it["direction"] not in DIRECTIONS:
            errors.append(f"{where}: direction {it['direction']!r}")
        if it["facet"] not in FACETS:
            errors.append(f"{where}: facet {it['facet']!r}")
        if it["facet"] is not None and kinds.get(it["code"]) != "incentive":
            errors.append(f"{where}: facet set on a non-incentive code")
        if it["code"] == "none" and (it["direction"] is not None or it.get("also")):
            errors.append(f"{where}: 'none' item with a direction or extra codes")
        if it["split"] not in SPLITS:
            errors.append(f"{where}: split {it['split']!r}")
        if it.get("genre") is not None and it["genre"] not in GENRES:
            errors.append(f"{where}: genre {it['genre']!r}")
        if it["section"] == "3.4" and it["split"] == "yardstick":
            errors.append(f"{where}: chapter 3.4 (definitions) must not be in the yardstick")
        prev = section_split.setdefault(it["section"], it["split"])
        if prev != it["split"]:
            errors.append(f"{where}: section {it['section']} is in both splits")
        t = norm(it["text"])
        if t != it["text"]:
            errors.append(f"{where}: text not whitespace-normalised")
        if t in texts:
            errors.append(f"{where}: same text as {texts[t]}")
        texts[t] = it["id"]
        starts, k = [], stream.find(t)
        while k >= 0:
            starts.append(owner[k])
            k = stream.find(t, k + 1)
        if not starts:
            errors.append(f"{where}: text not found in the thesis: {t[:80]!r}")
        elif it["line"] not in starts:
            errors.append(f"{where}: text starts on line(s) {starts[:5]}, not {it['line']}")
        items.append(it)

    # ---- verdict file: codes known, verdicts on the scale, quotes verbatim on the given line
    if a.verdicts and os.path.exists(a.verdicts):
        vd = yaml.safe_load(open(a.verdicts, encoding="utf-8"))
        scales = {"verdicts": set(cb["rating_scales"]["incentive"]), "context": set(cb["rating_scales"]["context"])}
        for part, scale in scales.items():
            for v in vd.get(part, []):
                where = f"verdicts {v.get('code')}"
                if v.get("code") not in kinds:
                    errors.append(f"{where}: unknown code")
                if v.get("verdict") is not None and v["verdict"] not in scale:
                    errors.append(f"{where}: verdict {v['verdict']!r} not in {sorted(scale)}")
                quotes = [(v.get("quote"), v.get("line"))] + ([(v["also"]["quote"], v["also"]["line"])] if v.get("also") else [])
                for q, ln in quotes:
                    if q is None:
                        continue
                    k = stream.find(norm(q))
                    if k < 0:
                        errors.append(f"{where}: quote not found in the thesis")
                    elif owner[k] != ln:
                        errors.append(f"{where}: quote starts on line {owner[k]}, not {ln}")
        print(f"verdict file checked: {a.verdicts}")

    # ---- counts
    counts = collections.Counter((it["code"], it["split"]) for it in items)
    also_counts: collections.Counter[tuple[str, str]] = collections.Counter()
    for it in items:
        for c in {it["code"], *it.get("also", [])}:
            also_counts[(c, it["split"])] += 1
    order = [c["id"] for c in cb["codes"] if c["id"] in codable] + ["none"]
    print(f"{len(items)} items; {sum(1 for i in items if i['split']=='yardstick')} yardstick, "
          f"{sum(1 for i in items if i['split']=='train')} train\n")
    print(f"{'code':30s} {'kind':14s} {'train':>5s} {'yard':>5s}   {'train+also':>10s} {'yard+also':>9s}")
    for c in order:
        tr, ya = counts[(c, "train")], counts[(c, "yardstick")]
        if tr or ya or kinds.get(c) == "incentive":
            print(f"{c:30s} {kinds.get(c, '-'):14s} {tr:5d} {ya:5d}   {also_counts[(c, 'train')]:10d} {also_counts[(c, 'yardstick')]:9d}")
    gen = collections.Counter((it.get("genre"), it["split"]) for it in items)
    print("\ngenre x split:", ", ".join(f"{g}/{s}={n}" for (g, s), n in sorted(gen.items(), key=str)))
    print("sections:", ", ".join(f"{s}={sp[0]}" for s, sp in sorted(section_split.items())))

    warnings = []
    for c in incentives:
        if counts[(c, "train")] == 0:
            warnings.append(f"incentive {c} absent from train")
        if counts[(c, "yardstick")] < MIN_YARDSTICK_PER_INCENTIVE:
            warnings.append(f"incentive {c}: {counts[(c, 'yardstick')]} yardstick items as main code "
                            f"(< {MIN_YARDSTICK_PER_INCENTIVE}); {also_counts[(c, 'yardstick')]} counting 'also'")
    for w in warnings:
        print("WARNING:", w)
    for message in errors:
        print("ERROR:", message)
    print("\nOK" if not errors else f"\n{len(errors)} error(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
