"""Print the markdown tables of ``results.md`` from the device's ``results.json``.

Run: ``python bench/gpu/report.py [results.json [more.json ...]]``; the fine-tuning runs of
every file are pooled (a rerun for more seeds), frozen and throughput figures come from the first.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

HEADS = (("zero_shot", "zero-shot (cosine to prototypes)"), ("lr_know", "LR on knowledge"),
         ("lr_seed_know", "LR on seed + knowledge"))


def main() -> None:
    here = Path(__file__).resolve().parent
    paths = [Path(p) for p in sys.argv[1:]] or [here / "results.json", here / "results_seeds.json"]
    files = [json.loads(p.read_text(encoding="utf-8")) for p in paths if p.is_file()]
    r = dict(files[0], fine_tuned=[x for f in files for x in f["fine_tuned"]])
    print("| encoder | head | top-1 | top-1 lenient | top-3 | macro-F1 |")
    print("|---|---|---|---|---|---|")
    for key, head in HEADS:
        s = r["frozen"][key]
        print(f"| frozen | {head} | {s['top1']:.3f} | {s['top1_lenient']:.3f} | {s['top3']:.3f} | {s['macro_f1']:.3f} |")
    for material in ("know", "seed_know"):
        runs = [x for x in r["fine_tuned"] if x["material"] == material]
        for key, head in HEADS:
            cells = []
            for metric in ("top1", "top1_lenient", "top3", "macro_f1"):
                values = [x["scores"][key][metric] for x in runs]
                spread = f" ± {statistics.stdev(values):.3f}" if len(values) > 1 else ""
                cells.append(f"{statistics.mean(values):.3f}{spread} ({' / '.join(f'{v:.3f}' for v in values)})")
            label = {"know": "fine-tuned on knowledge", "seed_know": "fine-tuned on seed + knowledge"}[material]
            print(f"| {label} | {head} | " + " | ".join(cells) + " |")
    print()
    print("| fine-tune | seed | pairs | steps | GPU s | s/step | loss first → last |")
    print("|---|---|---|---|---|---|---|")
    for x in r["fine_tuned"]:
        t = x["train"]
        print(f"| {x['material']} | {x['seed']} | {t['pairs']} | {t['steps']} | {t['seconds']:.1f} | {t['s_per_step']:.4f} "
              f"| {t['loss'][0][1]} → {t['loss'][-1][1]} |")
    print()
    print("| dtype | batch | sorted | texts/s | tokens/s | s for 2,547 | peak MiB | cos to fp32 (min) |")
    print("|---|---|---|---|---|---|---|---|")
    for t in r["throughput"]:
        print(f"| {t['dtype']} | {t['batch']} | {'yes' if t['sorted'] else 'no'} | {t['texts_per_s']:,.0f} | "
              f"{t['tokens_per_s']:,} | {t['seconds']:.3f} | {t['peak_mem_mib']} | {t['cos_to_fp32_min']} |")


if __name__ == "__main__":
    main()
