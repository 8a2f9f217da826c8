#!/usr/bin/env python3
"""Validate extra.jsonl against the codebook and the seed annotations.

Checks (errors make the exit status 1):
  - every line is a JSON object with the fields id, text, code, direction, facet, register
  - ids unique and of the form x-NNNN
  - code exists in the codebook YAML and is codable (not kind: group), or is 'none'
  - direction in {+, -, 0}; facet in {provision, practice, null}; facet is null for
    non-incentive codes; register in the allowed set
  - text length 6-40 words
  - no text equals (after normalisation: lowercase, punctuation stripped, whitespace
    collapsed) a codebook example or a seed annotation text, and no duplicate texts
Warnings (no failure): near-duplicates (difflib ratio >= 0.85) of seed/codebook texts.
Prints counts per code x register and per code x direction / facet.

Usage: python3 check.py [extra.jsonl] [--codebook PATH] [--seed-dir DIR]
"""
import argparse
import collections
import difflib
import glob
import json
import os
import re
import sys
import unicodedata
from typing import Any

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REGISTERS = ["spoken", "negation", "mixed", "policy", "summary", "questionnaire"]
DIRECTIONS = {"+", "-", "0"}
FACETS = {"provision", "practice", None}
FIELDS = {"id", "text", "code", "direction", "facet", "register"}


def norm(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"[^\w\s]", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def load_codebook(path: str) -> tuple[dict[str, str | None], list[str]]:
    with open(path, encoding="utf-8") as f:
        cb = yaml.safe_load(f)
    kinds: dict[str, str | None] = {}
    examples: list[str] = []
    for c in cb["codes"]:
        kinds[c["id"]] = c.get("kind")
        for ex in c.get("examples") or []:
            examples.append(ex["text"])
    return kinds, examples


def load_seed(seed_dir: str) -> list[str]:
    texts: list[str] = []
    for p in sorted(glob.glob(os.path.join(seed_dir, "*.jsonl"))):
        with open(p, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                t = json.loads(line).get("text")
                if t:
                    texts.append(t)
    return texts


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("file", nargs="?", default=os.path.join(HERE, "extra.jsonl"))
    ap.add_argument("--codebook", default=os.path.join(HERE, "..", "codebook", "garvin2008.yaml"))
    ap.add_argument("--seed-dir", default=os.path.join(HERE, "..", "seed"))
    ap.add_argument("--fuzzy", type=float, default=0.85)
    args = ap.parse_args()

    kinds, cb_examples = load_codebook(args.codebook)
    seed = load_seed(args.seed_dir)
    forbidden: dict[str, str] = {}
    for t in cb_examples:
        forbidden.setdefault(norm(t), "codebook example")
    for t in seed:
        forbidden.setdefault(norm(t), "seed annotation")
    ref_norms = list(forbidden)

    errors: list[str] = []
    warnings: list[str] = []
    ids: set[object] = set()
    texts: dict[str, object] = {}
    items: list[dict[str, Any]] = []
    with open(args.file, encoding="utf-8") as f:
        for ln, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                it = json.loads(line)
            except json.JSONDecodeError as e:
                errors.append(f"line {ln}: invalid JSON ({e})")
                continue
            items.append(it)
            where = f"line {ln} ({it.get('id')})"
            if set(it) != FIELDS:
                errors.append(f"{where}: fields {sorted(it)} != {sorted(FIELDS)}")
            i = it.get("id")
            if not isinstance(i, str) or not re.fullmatch(r"x-\d{4}", i):
                errors.append(f"{where}: bad id")
            if i in ids:
                errors.append(f"{where}: duplicate id")
            ids.add(i)
            code = it.get("code")
            if code != "none":
                if code not in kinds:
                    errors.append(f"{where}: unknown code {code!r}")
                elif kinds[code] == "group":
                    errors.append(f"{where}: {code!r} is a group code, not codable")
            if it.get("direction") not in DIRECTIONS:
                errors.append(f"{where}: bad direction {it.get('direction')!r}")
            if it.get("facet") not in FACETS:
                errors.append(f"{where}: bad facet {it.get('facet')!r}")
            if kinds.get(code) != "incentive" and it.get("facet") is not None:
                errors.append(f"{where}: facet must be null for non-incentive code {code!r}")
            if kinds.get(code) == "incentive" and it.get("facet") is None:
                warnings.append(f"{where}: incentive without facet")
            if it.get("register") not in REGISTERS:
                errors.append(f"{where}: bad register {it.get('register')!r}")
            text = it.get("text") or ""
            nw = len(text.split())
            if not 6 <= nw <= 40:
                errors.append(f"{where}: {nw} words (want 6-40)")
            n = norm(text)
            if n in forbidden:
                errors.append(f"{where}: duplicates a {forbidden[n]}: {text!r}")
            if n in texts:
                errors.append(f"{where}: same text as {texts[n]}")
            texts[n] = i
            # near-duplicates
            sm = difflib.SequenceMatcher(autojunk=False)
            sm.set_seq2(n)
            for r in ref_norms:
                sm.set_seq1(r)
                if sm.real_quick_ratio() >= args.fuzzy and sm.quick_ratio() >= args.fuzzy \
                        and sm.ratio() >= args.fuzzy:
                    warnings.append(f"{where}: near-duplicate ({sm.ratio():.2f}) of {forbidden[r]}: {r!r}")

    # counts
    by_reg = collections.Counter((it.get("code"), it.get("register")) for it in items)
    by_dir = collections.Counter((it.get("code"), it.get("direction")) for it in items)
    by_fac = collections.Counter((it.get("code"), it.get("facet")) for it in items)
    codes = list(dict.fromkeys(it.get("code") for it in items))
    head = f"{'code':28s}" + "".join(f"{r[:6]:>7s}" for r in REGISTERS) + "   tot |   +   -   0 | prov prac"
    print(head)
    for c in codes:
        row = f"{c:28s}" + "".join(f"{by_reg[(c, r)]:7d}" for r in REGISTERS)
        tot = sum(by_reg[(c, r)] for r in REGISTERS)
        row += f"{tot:6d} |{by_dir[(c, '+')]:4d}{by_dir[(c, '-')]:4d}{by_dir[(c, '0')]:4d} |"
        row += f"{by_fac[(c, 'provision')]:5d}{by_fac[(c, 'practice')]:5d}"
        print(row)
    reg_tot = collections.Counter(it.get("register") for it in items)
    print(f"{'TOTAL':28s}" + "".join(f"{reg_tot[r]:7d}" for r in REGISTERS) + f"{len(items):6d}")
    print(f"\nreference texts: {len(cb_examples)} codebook examples, {len(seed)} seed annotations")
    for w in warnings:
        print("WARNING:", w)
    for message in errors:
        print("ERROR:", message)
    print("FAIL" if errors else "OK", f"({len(errors)} errors, {len(warnings)} warnings)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
