"""``codeer evaluate``: the real-text yardstick first, then grouped cross-validation on the
demo annotations with baselines on the same folds, and the held-out transcripts; written to
``evaluation.md`` and ``evaluation.json``."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.codebook import Codebook
from pipeline.coding import evaluate as ev
from pipeline.coding import yardstick as ys
from pipeline.coding.classify import QUESTION_WEIGHT, featurize, training_set
from pipeline.coding.embed import DEFAULT_ENCODER, EmbeddingCacheLike, embed_texts, load_encoder
from pipeline.coding.sources import SOURCES_CODEBOOK, yardstick_items
from pipeline.coding.training import (
    TrainingConfig,
    drop_rare_codes,
    holdout_scores,
    model_fitter,
    yardstick_report,
)
from pipeline.progress import stage
from pipeline.records import Annotation


def run_evaluation(
    annotations: Sequence[Annotation],
    codebook: Codebook,
    *,
    out_dir: Path,
    cache: EmbeddingCacheLike | None = None,
    encoders: Sequence[str] = (DEFAULT_ENCODER,),
    config: TrainingConfig = TrainingConfig(),
    holdout: Sequence[Annotation] = (),
    learning_curve: bool = False,
    show_progress: bool = False,
) -> dict[str, Any]:
    """Score the model of each encoder on the real-text yardstick (zero-shot baselines beside
    it); score the chosen configuration with grouped CV (TF-IDF and zero-shot baselines on the
    same folds) and on held-out transcripts; write ``evaluation.md`` and ``evaluation.json``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    data, skipped = drop_rare_codes(training_set(annotations, codebook), config.min_examples)
    report: dict[str, Any] = {"n_utterances": len(data.texts), "n_transcripts": len(set(data.groups)),
                              "codes": data.codes, "skipped_codes": skipped, "config": asdict(config),
                              "encoders": {}, "created_at": datetime.now(UTC).isoformat(timespec="seconds")}
    chosen = config.encoder if config.encoder != "default" else DEFAULT_ENCODER
    loaded, models, fitted = {}, {}, {}
    for name in dict.fromkeys([chosen, *encoders]):
        started = time.perf_counter()
        loaded[name] = load_encoder(name)
        X, _, _ = featurize(data.texts, loaded[name], questions=data.questions, cache=cache, show_progress=show_progress)
        fit, _ = model_fitter(codebook, data.codes, loaded[name], config, cache=cache)
        fitted[name] = (X, fit)
        with stage(f"evaluate: train and score {name} on the yardstick", enabled=show_progress):
            models[name] = fit(X, data)
            real = yardstick_report(models[name], codebook, loaded[name], cache=cache, baselines=False)
        report["encoders"][name] = {"encoder_id": loaded[name].encoder_id,
                                    "yardstick": real["model"] if real else None,
                                    "seconds": round(time.perf_counter() - started, 1)}
    report["chosen_encoder"] = chosen
    encoder = loaded[chosen]
    X, fit = fitted[chosen]  # the chosen encoder's features and fitter, made once above
    if codebook.version == SOURCES_CODEBOOK:
        items = yardstick_items(codebook)
        report["yardstick"] = {"n_items": len(items), "model": report["encoders"][chosen]["yardstick"],
                               "baselines": ys.zero_shot_scores(items, codebook, load_encoder("e5"), cache=cache)}
    folds = ev.grouped_cross_validation(X, data, fit, n_splits=config.n_splits, show_progress=show_progress)
    report["model"] = ev.code_scores(data.Y, folds.predicted, data.codes)
    report["model"]["krippendorff_alpha"] = ev.krippendorff_alpha(data.Y, folds.predicted)
    report["model"]["direction_accuracy"] = ev.direction_accuracy(folds)
    report["calibration"] = ev.calibration(data.Y, folds.proba)
    ev.plot_reliability(report["calibration"]["reliability"], out_dir / "evaluation-reliability.png",
                        f"reliability, ECE {report['calibration']['ece']}")
    with stage("evaluate: baselines on the same folds", enabled=show_progress):
        report["baselines"] = {"tfidf_logreg": ev.tfidf_baseline(data, n_splits=config.n_splits)}
    code_vectors, _ = embed_texts(ev.code_descriptions(codebook, data.codes), encoder, cache=cache)
    report["baselines"]["zero_shot"] = ev.zero_shot_baseline(X.vectors, code_vectors, data)
    if learning_curve:
        with stage("evaluate: learning curve (20 trainings)", enabled=show_progress):
            report["learning_curve"] = ev.learning_curve(X, data, fit, n_splits=config.n_splits)
        ev.plot_learning_curve(report["learning_curve"], out_dir / "evaluation-learning-curve.png")
    if holdout:
        test, _ = drop_rare_codes(training_set(holdout, codebook), 0)
        X_test, _, _ = featurize(test.texts, encoder, questions=test.questions, cache=cache)
        report["holdout"] = holdout_scores(models[chosen], data, X_test, test)
        report["holdout"]["n_utterances"] = len(test.texts)
        report["holdout"]["n_transcripts"] = len(set(test.groups))
    ev.write_json(report, out_dir / "evaluation.json")
    (out_dir / "evaluation.md").write_text(evaluation_markdown(report), encoding="utf-8")
    return report


def evaluation_markdown(report: dict[str, Any]) -> str:
    """The evaluation report as Markdown: the real-text yardstick first."""
    lines = ["# Evaluation", ""]
    if "yardstick" in report:
        lines += ys.markdown(report["yardstick"])
    if len(report["encoders"]) > 1:
        lines += ["### Encoders on the yardstick", "", "| encoder | id | top-1 | top-3 | macro-F1 (13) | seconds |",
                  "|---|---|---|---|---|---|"]
        for name, row in report["encoders"].items():
            inc = (row["yardstick"] or {}).get("incentives", {})
            lines.append(f"| {name} | `{row['encoder_id']}` | {inc.get('top1', '')} | {inc.get('top3', '')} | "
                         f"{inc.get('macro_f1', '')} | {row['seconds']} |")
        lines.append("")
    model = report["model"]
    lines += [
        "## The demo corpus (fictional): grouped cross-validation", "",
        "The demo corpus and its seed annotations were written from the same key, so these scores say little "
        "about real interviews; the yardstick above is the figure that counts.", "",
        f"- {report['n_utterances']} annotated utterances in {report['n_transcripts']} transcripts and documents; "
        f"{report['config']['n_splits']}-fold cross-validation **grouped by transcript**. The codebook, real-text "
        "train and register sentences are added to every training fold; calibration is fitted inside each fold.",
        f"- codes left out (fewer than {report['config']['min_examples']} examples): {', '.join(report['skipped_codes']) or 'none'}",
        "- the interviewer's question, where there is one, shifts the text's log-odds through a separate head "
        f"(weight {QUESTION_WEIGHT}, chosen on these folds from 0, 0.25, 0.5, 1); the text heads never see it, so "
        "text without a question codes as well as text with one.",
        f"- macro-F1 {model['macro_f1']}, micro-F1 {model['micro_f1']}, Krippendorff's alpha (model vs human) "
        f"{model['krippendorff_alpha']}, direction accuracy {model['direction_accuracy']}",
        f"- expected calibration error {report['calibration']['ece']} (plot: evaluation-reliability.png)", "",
        "| method (same folds) | macro-F1 | micro-F1 |", "|---|---|---|",
        f"| codeer model | {model['macro_f1']} | {model['micro_f1']} |"]
    for name, scores in report["baselines"].items():
        lines.append(f"| {name} | {scores['macro_f1']} | {scores['micro_f1']} |")
    if "holdout" in report:
        holdout = report["holdout"]
        lines += ["", "## Held-out demo transcripts (never used for training or tuning)", "",
                  f"Trained on all seed annotations, tested on {holdout['n_utterances']} utterances of "
                  f"{holdout['n_transcripts']} held-out transcripts and documents: macro-F1 **{holdout['macro_f1']}**, "
                  f"micro-F1 {holdout['micro_f1']}."]
    lines += ["", "## Per code (grouped CV)", "", "| code | precision | recall | F1 | kappa | support | held-out F1 |",
              "|---|---|---|---|---|---|---|"]
    for code, row in model["per_code"].items():
        held = report.get("holdout", {}).get("per_code", {}).get(code, {}).get("f1", "")
        lines.append(f"| `{code}` | {row['precision']} | {row['recall']} | {row['f1']} | {row['kappa']} | {row['support']} | {held} |")
    if "learning_curve" in report:
        lines += ["", "## Learning curve (evaluation-learning-curve.png)", "", "| annotated utterances | macro-F1 |", "|---|---|"]
        lines += [f"| {p['n_utterances']} | {p['macro_f1']} |" for p in report["learning_curve"]]
    lines.append("")
    return "\n".join(lines)
