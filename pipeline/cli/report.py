"""Rating commands: rate the incentives, write the report."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.cli import Context, cli, friendly
from pipeline.cli.model import check_encoder, load_or_train_model


@cli.command()
@click.option("--utterances", "table", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Rate this table (.jsonl/.csv: id,text,municipality,respondent[,role]) alone, without the database.")
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), help="Output folder (default: reports/).")
@click.option("--model", "model_ref", default="current", show_default=True)
@click.pass_obj
@friendly
def rate(obj: Context, table: Path | None, output: Path | None, model_ref: str) -> None:
    """Rate each incentive per municipality and for the region; write ratings.json and .csv.

    Without --utterances it rates what is in the database (human annotations override the
    current model's predictions).

    Example:

        codeer rate --utterances nieuwe-gemeente.csv --output uit/
    """
    result = _rate(obj, table, output, model_ref, report=False)
    _echo_ratings(result, output or obj.settings.reports_dir)


@cli.command()
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), help="Output folder (default: reports/).")
@click.option("--model", "model_ref", default="current", show_default=True)
@click.option("--fictional", is_flag=True, help="Mark the report as made from fictional data (the demo).")
@click.pass_obj
@friendly
def report(obj: Context, output: Path | None, model_ref: str, fictional: bool) -> None:
    """Write the report: one self-contained HTML file, Markdown and an Excel workbook.

    Example:

        codeer report --output reports/
    """
    result = _rate(obj, None, output, model_ref, report=True, fictional=fictional)
    _echo_ratings(result, output or obj.settings.reports_dir)


def _rate(obj: Context, table: Path | None, output: Path | None, model_ref: str, *, report: bool,  # type: ignore[no-untyped-def]
          fictional: bool = False):
    from pipeline.codebook import load_codebook
    from pipeline.embed import load_encoder
    from pipeline.jobs import classify_table, questionnaire_evidence_of, rate_codings
    from pipeline.store import EmbeddingCache
    from pipeline.tables import read_table

    settings = obj.settings
    book = load_codebook(settings.codebook_version)
    loaded = load_or_train_model(obj, model_ref)
    out_dir = output or settings.reports_dir
    if table is not None:
        frame = read_table(table, required=("id", "text", "municipality", "respondent"))
        encoder = load_encoder(loaded.card["encoder"], threads=settings.threads, device=settings.device)
        check_encoder(loaded, encoder)
        codings = classify_table(frame, loaded, encoder, book, cache=EmbeddingCache(settings.cache_dir / "embeddings.sqlite"))
        return rate_codings(codings, book, out_dir, model_id=loaded.model_id, report=report)
    store = obj.store
    return rate_codings(store.codings_frame(loaded.model_id), book, out_dir, model_id=loaded.model_id,
                        questionnaire=questionnaire_evidence_of(store), report=report, fictional=fictional)


def _echo_ratings(result, out_dir: Path) -> None:  # type: ignore[no-untyped-def]
    counts: dict[str, int] = {}
    for rating in result.ratings:
        if rating.municipality != "regio":
            counts[rating.rating] = counts.get(rating.rating, 0) + 1
    summary = ", ".join(f"{n} {verdict}" for verdict, n in sorted(counts.items()))
    click.echo(f"{len(result.ratings)} ratings ({summary}); written: " + ", ".join(str(p) for p in result.files))
