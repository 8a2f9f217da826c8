"""How far a report can be trusted, said in plain Dutch on its first screen (issue 21).

Two figures decide it: how much of the evidence a person has coded or checked
(:class:`pipeline.report.fragments.CheckedShare`), and how well the model codes real text, the
yardstick scores on its model card (thesis sentences it never trained on; docs/evaluation.md).
:func:`render_evaluation_page` writes the short evaluation page beside the report from the same
card: no retraining.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.rating import Rating
from pipeline.report.dutch import nl_number, nl_percent
from pipeline.report.fragments import CheckedShare

EVALUATION_PAGE = "evaluatie.html"


@dataclass(frozen=True, slots=True)
class ModelQuality:
    """The model card's figures a reader needs; None where the card has none.

    ``yardstick_*`` are scores on real thesis sentences never trained on (the 13 incentives);
    ``cv_macro_f1`` the grouped cross-validation on the fictional demo corpus.
    """

    model_id: str
    yardstick_n: int | None = None
    yardstick_top1: float | None = None
    yardstick_top3: float | None = None
    yardstick_macro_f1: float | None = None
    direction_accuracy: float | None = None
    review_share: float | None = None
    review_precision: float | None = None
    wrong_share: float | None = None
    all_codes_top1: float | None = None
    cv_macro_f1: float | None = None
    cv_direction_accuracy: float | None = None
    n_trained: int | None = None

    @property
    def has_yardstick(self) -> bool:
        return self.yardstick_top1 is not None


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def model_quality(card: Mapping[str, Any]) -> ModelQuality:
    """Read the figures of a model card (``card.json``; see :func:`pipeline.coding.load_model_folder`)."""
    metrics = card.get("metrics") or {}
    yardstick = metrics.get("yardstick") or {}
    incentives, review = yardstick.get("incentives") or {}, yardstick.get("needs_review") or {}
    n = incentives.get("n")
    return ModelQuality(
        model_id=str(card.get("model_id", "")), yardstick_n=int(n) if isinstance(n, int) else None,
        yardstick_top1=_float(incentives.get("top1")), yardstick_top3=_float(incentives.get("top3")),
        yardstick_macro_f1=_float(incentives.get("macro_f1")),
        direction_accuracy=_float((yardstick.get("direction") or {}).get("accuracy_incentives")),
        review_share=_float(review.get("share")), review_precision=_float(review.get("precision")),
        wrong_share=_float(review.get("wrong_share")),
        all_codes_top1=_float((yardstick.get("all_codes") or {}).get("top1")),
        cv_macro_f1=_float(metrics.get("macro_f1")), cv_direction_accuracy=_float(metrics.get("direction_accuracy")),
        n_trained=card.get("n_utterances") if isinstance(card.get("n_utterances"), int) else None)


def checked_sentence(checked: CheckedShare, *, with_share: bool = True) -> str:
    """'Een mens heeft 412 van de 1930 fragmenten ... gecontroleerd (21%); ...' (the share left out
    where the page shows it in large type already)."""
    if not checked.n_fragments:
        return "Er zijn geen gecodeerde fragmenten: de oordelen berusten alleen op de vragenlijst, als die er is."
    unchecked = checked.n_fragments - checked.n_checked
    share = f" ({nl_percent(checked.share)})" if with_share else ""
    return (f"Een mens heeft {checked.n_checked} van de {checked.n_fragments} fragmenten achter deze oordelen "
            f"gecodeerd of gecontroleerd{share}; de andere {unchecked} zijn codes van het model die nog niemand "
            "heeft nagekeken.")


def quality_sentences(quality: ModelQuality | None) -> list[str]:
    """The model's real-text scores in plain Dutch, most important first."""
    if quality is None or not quality.has_yardstick:
        return ["Voor dit model zijn geen scores op echte tekst bekend (het is niet op de meetlat getoetst); "
                "behandel zijn codes als ongetoetst."]
    lines = [f"Op {quality.yardstick_n} echte zinnen uit de scriptie, waarop het model nooit is getraind, kiest het "
             f"bij {nl_percent(quality.yardstick_top1)} de juiste prikkel als eerste keus; bij "
             f"{nl_percent(quality.yardstick_top3)} staat de juiste prikkel bij de eerste drie."]
    if quality.direction_accuracy is not None:
        lines.append(f"Of een fragment het leren stimuleert of belemmert (de richting), ziet het model bij "
                     f"{nl_percent(quality.direction_accuracy)} van de zinnen goed.")
    if quality.wrong_share is not None and quality.review_share is not None:
        lines.append(f"Ongeveer {nl_percent(quality.wrong_share)} van de zinnen krijgt een verkeerde code; het model "
                     f"legt {nl_percent(quality.review_share)} van de zinnen voor aan een mens, en daarvan is "
                     f"{nl_percent(quality.review_precision)} inderdaad fout.")
    if quality.cv_macro_f1 is not None:
        lines.append(f"Op het fictieve democorpus haalt het een macro-F1 van {nl_number(quality.cv_macro_f1)} "
                     "(kruisvalidatie per transcript); de cijfers op echte tekst zeggen meer.")
    return lines


def stability_sentence(ratings: Sequence[Rating]) -> str:
    """How many municipal verdicts hold when one source is left out."""
    judged = [r for r in ratings if r.level == "municipality" and r.stability is not None
              and r.rating != "onvoldoende_bewijs"]
    if not judged:
        return "Geen enkel oordeel berust op genoeg bronnen om de stabiliteit te meten."
    stable = sum(r.stability == 1.0 for r in judged)
    thin = sum(r.rating == "onvoldoende_bewijs" for r in ratings if r.level == "municipality")
    return (f"{stable} van de {len(judged)} oordelen per gemeente blijven gelijk als één bron wordt weggelaten "
            f"(stabiliteit 100%); {thin} cellen hebben onvoldoende bewijs. Klik op een cel voor de steun, de "
            "stabiliteit en de fragmenten.")


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def render_evaluation_page(quality: ModelQuality, *, report_name: str = "rapport.html") -> str:
    """A short self-contained HTML page on how good the model is, from its card's figures."""
    rows: list[tuple[str, str]] = []
    if quality.has_yardstick:
        rows += [("Juiste prikkel als eerste keus (top-1)", nl_percent(quality.yardstick_top1, 1)),
                 ("Juiste prikkel bij de eerste drie (top-3)", nl_percent(quality.yardstick_top3, 1)),
                 ("Macro-F1 over de 13 prikkels", nl_number(quality.yardstick_macro_f1)),
                 ("Richting goed (bij de juiste prikkel)", nl_percent(quality.direction_accuracy, 1)),
                 ("Alle codes, ook contextcodes: top-1", nl_percent(quality.all_codes_top1, 1)),
                 ("Zinnen met een verkeerde code", nl_percent(quality.wrong_share, 1)),
                 ("Voorgelegd aan een mens", nl_percent(quality.review_share, 1)),
                 ("…daarvan inderdaad fout (precisie)", nl_percent(quality.review_precision, 1))]
    demo = [("Macro-F1, kruisvalidatie per transcript", nl_number(quality.cv_macro_f1)),
            ("Richting goed", nl_percent(quality.cv_direction_accuracy, 1)),
            ("Geannoteerde fragmenten om van te leren", str(quality.n_trained or "–"))]
    table = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    demo_table = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in demo)
    summary = "".join(f"<p>{_e(line)}</p>" for line in quality_sentences(quality))
    yardstick = (f"<h2>Echte tekst: de meetlat ({quality.yardstick_n} zinnen)</h2><table>{table}</table>"
                 if quality.has_yardstick else "<p>Dit model is niet op echte tekst getoetst.</p>")
    return f"""<!DOCTYPE html>
<html lang="nl"><head><meta charset="utf-8"><title>Hoe goed codeert het model? {_e(quality.model_id)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;line-height:1.45}}
table{{border-collapse:collapse}}th,td{{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}}
th{{background:#f4f4f4;font-weight:600}}</style></head><body>
<h1>Hoe goed codeert het model?</h1>
<p>Model <code>{_e(quality.model_id)}</code>. Alle cijfers komen van de modelkaart (card.json); er is niets
opnieuw getraind. <a href="{_e(report_name)}">Terug naar het rapport</a>.</p>
{summary}
{yardstick}
<h2>Het fictieve democorpus</h2>
<p>Het democorpus en zijn annotaties zijn naar dezelfde sleutel geschreven; deze cijfers zeggen weinig over
echte interviews. Een eenvoudige TF-IDF-basislijn scoort daar even hoog (zie docs/evaluation.md in de
codeer-repository, ook voor de cijfers per code).</p>
<table>{demo_table}</table>
<h2>Wat betekent dit voor het rapport?</h2>
<p>Een oordeel is zo goed als het bewijs eronder. Codes van het model die niemand heeft nagekeken zijn
ongeveer zo vaak fout als hierboven staat; kijk de fragmenten van een cel na voor u een oordeel citeert, en laat
twijfelgevallen controleren in de reviewpagina (<code>codeer serve-review</code>).</p>
</body></html>
"""
