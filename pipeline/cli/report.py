"""Rating commands: rate the incentives, write the report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from pipeline.cli import Context, cli, friendly, reads_workspace, require_workspace
from pipeline.cli.model import load_or_train_model

if TYPE_CHECKING:
    from pipeline.report import RateResult


@cli.command()
@click.option("--utterances", "table", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Rate this table (.jsonl/.csv: id,text,municipality,respondent[,role]) alone, without the database.")
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), help="Output folder (default: reports/).")
@click.option("--model", "model_ref", default="current", show_default=True)
@click.option("--regions", "regions_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Which municipality belongs to which region (.yaml 'regions: {region: [municipality, ...]}' or "
                   ".csv municipality,region). Default: regions.yaml/.csv in the workspace, else a 'region' column, "
                   "else one region.")
@click.pass_obj
@friendly
def rate(obj: Context, table: Path | None, output: Path | None, model_ref: str, regions_path: Path | None) -> None:
    """Rate each incentive per municipality and per region; write ratings.json and .csv.

    Without --utterances it rates what is in the database (human annotations override the
    current model's predictions). A region's verdict pools all its respondents and the rows
    about the region itself (municipality = the region's name, or 'regio' without region data).

    Example:

        codeer rate --utterances nieuwe-gemeente.csv --output uit/ --regions regios.yaml
    """
    if table is None:  # rating the database reads a workspace; a table is rated alone
        require_workspace(obj.settings)
    result = _rate(obj, table, output, model_ref, report=False, regions_path=regions_path)
    _echo_ratings(result, output or obj.settings.paths.reports_dir)


@cli.command()
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), help="Output folder (default: reports/).")
@click.option("--model", "model_ref", default="current", show_default=True)
@click.option("--fictional", is_flag=True, help="Mark the report as made from fictional data (the demo).")
@click.option("--regions", "regions_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Which municipality belongs to which region (as for `codeer rate`).")
@click.option("--review-url", metavar="URL", default=None,
              help="Address of the review web app (codeer serve-review), e.g. http://localhost:8000: each fragment "
                   "links to its place in the transcript there. Default: the review_url setting (CODEER_REVIEW_URL); "
                   "unset, the report names the transcript and turn.")
@click.pass_obj
@friendly
@reads_workspace
def report(obj: Context, output: Path | None, model_ref: str, fictional: bool, regions_path: Path | None,
           review_url: str | None) -> None:
    """Write the report: one self-contained HTML file, Markdown, an Excel workbook and the model's evaluation page.

    Example:

        codeer report --output reports/ --review-url http://localhost:8000
    """
    if review_url is not None and not review_url.startswith(("http://", "https://")):
        raise click.BadParameter(f"{review_url!r}: give the web app's address, e.g. http://localhost:8000",
                                 param_hint="--review-url")
    result = _rate(obj, None, output, model_ref, report=True, fictional=fictional, regions_path=regions_path,
                   review_url=review_url or obj.settings.review_url)
    _echo_ratings(result, output or obj.settings.paths.reports_dir)


def _regions(obj: Context, regions_path: Path | None) -> dict[str, str] | None:
    from pipeline.rating import read_regions

    regions_path = regions_path or obj.settings.paths.regions_file
    return read_regions(regions_path) if regions_path is not None else None


def _rate(obj: Context, table: Path | None, output: Path | None, model_ref: str, *, report: bool,
          fictional: bool = False, regions_path: Path | None = None, review_url: str | None = None) -> RateResult:
    from pipeline.codebook import load_codebook
    from pipeline.coding import EmbeddingCache, open_encoder
    from pipeline.rating import questionnaire_evidence_of
    from pipeline.report import rate_table

    settings = obj.settings
    book = load_codebook(settings.codebook_version)
    regions = _regions(obj, regions_path)
    loaded = load_or_train_model(obj, model_ref)
    out_dir = output or settings.paths.reports_dir
    if table is not None:
        encoder = open_encoder(loaded, threads=settings.threads, device=settings.device)
        return rate_table(table, loaded, encoder, book, out_dir, cache=EmbeddingCache(settings.paths.embedding_cache_file),
                          report=report, regions=regions, review_url=review_url)
    store = obj.store
    from pipeline.report import rate_store

    return rate_store(store, book, out_dir, model_id=loaded.model_id, questionnaire=questionnaire_evidence_of(store),
                      report=report, fictional=fictional, regions=regions, model_card=loaded.card,
                      review_url=review_url)


def _echo_ratings(result: RateResult, out_dir: Path) -> None:
    counts: dict[str, int] = {}
    for rating in result.ratings:
        if rating.level == "municipality":
            counts[rating.rating] = counts.get(rating.rating, 0) + 1
    summary = ", ".join(f"{n} {verdict}" for verdict, n in sorted(counts.items()))
    click.echo(f"{len(result.ratings)} ratings ({summary}); written: " + ", ".join(str(p) for p in result.files))


@cli.command("calibrate-ratings")
@click.option("--candidates", default="0.1,0.2,0.3,0.4,0.5,0.6", show_default=True,
              help="Values of evidence.min_predicted_weight to compare, comma-separated.")
@click.pass_obj
@friendly
@reads_workspace
def calibrate_ratings(obj: Context, candidates: str) -> None:
    """Compare how model predictions could count as rating evidence, without the answer key.

    Codes every seed transcript out of fold, swaps one transcript at a time from its human
    codings to those predictions, and counts how many of its municipality's ratings stay as
    the human codings rate them. Set the best value in pipeline/resources/annotations/rating_rules.yaml (and bump
    its version). See docs/ratings.md.

    Example:

        codeer calibrate-ratings --candidates 0.2,0.5
    """
    from pipeline.codebook import load_codebook
    from pipeline.coding import EmbeddingCache, TrainingConfig
    from pipeline.rating import calibrate_on_seed, load_rating_rules, questionnaire_evidence_of

    try:
        values = [float(value) for value in candidates.split(",") if value.strip()]
    except ValueError:
        raise click.BadParameter(f"{candidates!r}: give numbers between 0 and 1, e.g. 0.2,0.5", param_hint="--candidates")
    settings = obj.settings
    rules = load_rating_rules()
    points = calibrate_on_seed(load_codebook(settings.codebook_version), rules, questionnaire_evidence_of(obj.store),
                               values, config=TrainingConfig(encoder=settings.encoder),
                               cache=EmbeddingCache(settings.paths.embedding_cache_file), show_progress=True)
    click.echo(f"rules {rules.version}, now min_predicted_weight {rules.evidence.min_predicted_weight}")
    click.echo("min_predicted_weight  ratings kept  cells  most common change")
    for point in points:
        change = f"{point.misses[0][0]} -> {point.misses[0][1]} ({point.misses[0][2]})" if point.misses else "-"
        click.echo(f"{point.min_predicted_weight:>20}  {point.agreement:>12.3f}  {point.n_cells:>5}  {change}")
