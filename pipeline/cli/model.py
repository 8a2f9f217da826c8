"""Model commands: train, classify, evaluate, list models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from pipeline.cli import Context, cli, friendly

if TYPE_CHECKING:
    from pipeline.coding import LoadedModel
    from pipeline.coding.training import TrainResult


@cli.command()
@click.option("--annotations", "annotation_paths", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Annotation files or folders (default: the shipped seed annotations). Reviewed corrections in the database are always added.")
@click.option("--encoder", default=None, help="e5-int8, e5, e5-torch, use, e5-int8+use, minilm, a model folder or hub name (default: the configured one).")
@click.option("--semi-supervised/--no-semi-supervised", default=False, show_default=True,
              help="Self-training on the stored utterances that carry no annotation.")
@click.option("--force", is_flag=True, help="Make the new model current even if it scores worse.")
@click.option("--fine-tune", is_flag=True,
              help="First fine-tune e5 on the training texts and their codes (SetFit-style contrastive pairs), then "
                   "train on the tuned encoder, which is saved in the model's folder. Off by default: on the "
                   "real-text yardstick it did not beat the frozen encoder (bench/gpu/results.md). Slow on a CPU: the "
                   "shipped seed set gives 72,000 pairs, 2,260 steps of 15-20 s on 2 cores, about 10 hours; a few "
                   "minutes on a GPU with 'codeer --device cuda train --fine-tune'.")
@click.option("--fine-tune-pairs", type=click.IntRange(min=1), default=None, metavar="N",
              help="With --fine-tune: train on at most N pairs (a quicker, weaker fine-tune; default: all, about 40 "
                   "per training text).")
@click.pass_obj
@friendly
def train(obj: Context, annotation_paths: tuple[Path, ...], encoder: str | None, semi_supervised: bool, force: bool,
          fine_tune: bool, fine_tune_pairs: int | None) -> None:
    """Train a model on the seed annotations plus reviewed corrections.

    The model is saved in models/<id>/ with its card and becomes current only if it is not
    worse than the current model on the frozen held-out set (yardstick macro-F1 within 0.01,
    no frequent code down more than 0.10 F1; --force overrides).

    Example:

        codeer train
    """
    from pipeline.codebook import load_codebook
    from pipeline.coding import (
        EmbeddingCache,
        FineTuneConfig,
        TrainingConfig,
        fine_tuned_name,
        reviewed_annotations,
        seed_annotations,
        train_model,
        unlabelled_pool,
    )

    if fine_tune_pairs is not None and not fine_tune:
        raise click.UsageError("--fine-tune-pairs goes with --fine-tune.")
    settings = obj.settings
    config = TrainingConfig(encoder=encoder or settings.encoder, semi_supervised=semi_supervised,
                            fine_tune=FineTuneConfig(max_pairs=fine_tune_pairs) if fine_tune else None)
    if fine_tune:
        fine_tuned_name(config.encoder)  # an encoder without e5 fails now, not after the annotations are read
    book = load_codebook(settings.codebook_version)
    records = seed_annotations(book, list(annotation_paths) or None) + reviewed_annotations(obj.store, book)
    cache = EmbeddingCache(settings.paths.embedding_cache_file)
    result = train_model(records, book, models_dir=settings.paths.models_dir, cache=cache, config=config,
                         unlabelled=unlabelled_pool(obj.store) if semi_supervised else (), force=force,
                         show_progress=True, device=settings.device)
    _echo_trained(result)


def _echo_trained(result: TrainResult) -> None:
    click.echo(f"trained {result.model_id} on {result.n_utterances} utterances in {result.seconds:.0f} s: "
               f"grouped-CV macro-F1 {result.metrics['macro_f1']}, micro-F1 {result.metrics['micro_f1']}, "
               f"direction accuracy {result.metrics['direction_accuracy']}")
    if result.skipped_codes:
        click.echo(f"left out (too few examples): {', '.join(result.skipped_codes)}")
    if result.decision is not None:
        click.echo(f"held-out: {result.decision.challenger.summary()}"
                   + (f"; champion {result.decision.champion_id}: {result.decision.champion.summary()}"
                      if result.decision.champion is not None else ""))
    click.echo(result.reason)


@cli.command()
@click.argument("input_file", metavar="INPUT", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Output JSONL file.")
@click.option("--model", "model_ref", default="current", show_default=True, help="current, a model id, or a model folder.")
@click.pass_obj
@friendly
def classify(obj: Context, input_file: Path, output: Path, model_ref: str) -> None:
    """Code any Dutch text: INPUT is .jsonl or .csv with 'id' and 'text' columns.

    An optional 'question' column gives the interviewer's question as context (a missing or
    empty question is no question); other columns are passed through. Each output line has every code with its probability, the predicted
    codes, a direction per predicted code, needs_review and the model id.

    Example:

        codeer classify zinnen.jsonl --output gecodeerd.jsonl
    """
    from pipeline.codebook import load_codebook
    from pipeline.coding import (
        PROJECT_MODELS,
        EmbeddingCache,
        classify_file,
        classify_file_with,
        find_model_folder,
        open_encoder,
    )

    settings = obj.settings
    book = load_codebook(settings.codebook_version)
    cache = EmbeddingCache(settings.paths.embedding_cache_file)
    folder = find_model_folder(model_ref, [settings.paths.models_dir, PROJECT_MODELS])
    if folder is None:  # no model yet: the seed model is trained first
        loaded = load_or_train_model(obj, model_ref)
        encoder = open_encoder(loaded, threads=settings.threads, device=settings.device)
        result = classify_file(input_file, output, loaded, encoder, book, cache=cache,
                               review_threshold=settings.review_threshold, show_progress=True)
    else:
        result, loaded = classify_file_with(folder, input_file, output, book, threads=settings.threads,
                                            device=settings.device, cache=cache,
                                            review_threshold=settings.review_threshold, show_progress=True)
    click.echo(f"coded {result.n_rows} rows with model {loaded.model_id}; {result.n_review} need review; "
               f"written to {result.output}")


def load_or_train_model(obj: Context, model_ref: str) -> LoadedModel:
    """The model ``--model`` names; trains the seed model first when none is current (classify, rate, report)."""
    from pipeline.coding import (
        EmbeddingCache,
        TrainingConfig,
        load_or_train_current,
        reviewed_annotations,
        seed_annotations,
    )

    settings = obj.settings
    loaded, trained = load_or_train_current(
        model_ref, settings.paths.models_dir, codebook_version=settings.codebook_version,
        config=TrainingConfig(encoder=settings.encoder),
        training_annotations=lambda book: seed_annotations(book) + reviewed_annotations(obj.store, book),
        open_cache=lambda: EmbeddingCache(settings.paths.embedding_cache_file), show_progress=True,
        before_training=lambda: click.echo("no trained model yet: training the default seed model on "
                                           "the shipped seed annotations (several minutes) ...", err=True))
    if trained is not None:
        _echo_trained(trained)
    return loaded


@cli.command()
@click.option("--encoders", default="default", show_default=True,
              help="Encoders to compare on the real-text yardstick, comma-separated (e.g. e5-int8,use,e5-int8+use; "
                   "default: e5-int8+use).")
@click.option("--learning-curve", is_flag=True, help="Also draw the learning curve (slow: 20 more trainings).")
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), default=None, help="Report folder (default: reports/).")
@click.pass_obj
@friendly
def evaluate(obj: Context, encoders: str, learning_curve: bool, output: Path | None) -> None:
    """Evaluate on real text first, then with cross-validation grouped by transcript.

    Writes reports/evaluation.md, evaluation.json and PNG plots: the real-text yardstick
    (top-1, top-3, macro-F1 over the 13 incentives, direction, needs-review share and precision,
    calibration) beside two zero-shot baselines; on the demo annotations per-code
    precision/recall/F1/kappa, Krippendorff's alpha, calibration, direction accuracy, TF-IDF and
    zero-shot baselines, and scores on the held-out transcripts.

    Example:

        codeer evaluate --encoders e5-int8,use,e5-int8+use,e5+use
    """
    from pipeline.codebook import load_codebook
    from pipeline.coding import (
        EmbeddingCache,
        TrainingConfig,
        holdout_annotations,
        reviewed_annotations,
        run_evaluation,
        seed_annotations,
    )
    from pipeline.coding.embed import DEFAULT_ENCODER

    settings = obj.settings
    book = load_codebook(settings.codebook_version)
    holdout = holdout_annotations(book)
    report = run_evaluation(
        seed_annotations(book) + reviewed_annotations(obj.store, book), book,
        out_dir=output or settings.paths.reports_dir, cache=EmbeddingCache(settings.paths.embedding_cache_file),
        encoders=[DEFAULT_ENCODER if e.strip() == "default" else e.strip() for e in encoders.split(",") if e.strip()],
        config=TrainingConfig(encoder=settings.encoder), holdout=holdout, learning_curve=learning_curve, show_progress=True)
    if "yardstick" in report:
        real, base = report["yardstick"]["model"]["incentives"], report["yardstick"]["baselines"]
        click.echo(f"real-text yardstick: top-1 {real['top1']} over the 13 incentives (zero-shot TF-IDF "
                   f"{base['tfidf_definitions']['top1']}, e5 {base['e5_definitions']['top1']}); top-3 {real['top3']}")
    click.echo(f"demo grouped-CV macro-F1 {report['model']['macro_f1']} (TF-IDF {report['baselines']['tfidf_logreg']['macro_f1']}, "
               f"zero-shot {report['baselines']['zero_shot']['macro_f1']}); held-out "
               f"{report.get('holdout', {}).get('macro_f1', 'n/a')}; report in {output or settings.paths.reports_dir}/evaluation.md")


@cli.command("review-effect")
@click.option("--simulate", type=click.IntRange(min=1), default=None, metavar="N",
              help="Answer the top N pending queue items with the shipped seed and held-out annotations "
                   "(the demo's answer key) instead of using real decisions; nothing is written.")
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), default=None, help="Report folder (default: reports/).")
@click.pass_obj
@friendly
def review_effect(obj: Context, simulate: int | None, output: Path | None) -> None:
    """Scores of the model before and after each review round, on the same held-out transcripts.

    A round is one day of review decisions. Round 0 is the seed annotations alone; each
    later round adds the decisions so far. Per round: grouped-CV macro-F1 of its training set
    and macro-F1 on the held-out transcripts (utterances reviewed in any round left out).
    Writes review-effect.json to the report folder.

    Example:

        codeer review-effect --simulate 50
    """
    from pipeline.codebook import load_codebook
    from pipeline.coding import (
        EmbeddingCache,
        TrainingConfig,
        answer_key_round,
        holdout_annotations,
        review_round_scores,
        review_rounds_of,
        seed_annotations,
    )

    settings = obj.settings
    book = load_codebook(settings.codebook_version)
    seed, holdout = seed_annotations(book), holdout_annotations(book)
    if not holdout:
        raise click.ClickException("no held-out annotations shipped (pipeline/resources/annotations/holdout/): nothing to score the rounds on.")
    if simulate:
        answered, missing = answer_key_round(obj.store, [*seed, *holdout], simulate)
        click.echo(f"simulated round: {len(answered)} of the top {simulate} queue item(s) answered from the "
                   f"annotations ({missing} without a known answer left out)")
        rounds = [answered]
    else:
        rounds = review_rounds_of(obj.store)
    if not any(rounds):
        raise click.ClickException("no review decisions yet. Review with 'codeer review' or 'codeer serve-review', "
                                   "or simulate a round with --simulate N.")
    results = review_round_scores(seed, rounds, holdout, book, config=TrainingConfig(encoder=settings.encoder),
                                  cache=EmbeddingCache(settings.paths.embedding_cache_file))
    folder = output or settings.paths.reports_dir
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "review-effect.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    click.echo("round  reviewed  grouped-CV macro-F1  held-out macro-F1")
    for row in results:
        click.echo(f"{row['round']:>5}  {row['n_reviewed']:>8}  {row['cv_macro_f1']:>19.3f}  {row['holdout_macro_f1']:>17.3f}")
    click.echo(f"held-out: {results[0]['n_test']} utterances; written {folder / 'review-effect.json'}")


@cli.group()
def models() -> None:
    """List trained models."""


@models.command("list")
@click.pass_obj
@friendly
def models_list(obj: Context) -> None:
    """List the models in the workspace, newest first; * marks the current one.

    Example:

        codeer models list
    """
    from pipeline.coding import list_models

    cards = list_models(obj.settings.paths.models_dir)
    if not cards:
        click.echo(f"no models in {obj.settings.paths.models_dir}; train one with 'codeer train'")
    for card in cards:
        mark = "*" if card["current"] else " "
        click.echo(f"{mark} {card['model_id']}  macro-F1 {card['metrics']['macro_f1']}  {card['encoder_id']}  "
                   f"{card['n_utterances']} utterances  {card['created_at']}")
