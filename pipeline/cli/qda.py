"""REFI-QDA exchange with NVivo, ATLAS.ti, MAXQDA and QualCoder (issue 9)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from pipeline.cli import Context, cli, friendly, reads_workspace
from pipeline.cli.corpus import codebook


@cli.command("import-qdpx")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--mapping", type=click.Path(dir_okay=False, path_type=Path),
              help="YAML mapping of the project's codes to codebook ids (see --suggest-mapping).")
@click.option("--suggest-mapping", is_flag=True,
              help="Propose a mapping (to --mapping FILE, or to stdout) and import nothing.")
@click.pass_obj
@friendly
def import_qdpx_command(obj: Context, file: Path, mapping: Path | None, suggest_mapping: bool) -> None:
    """Import a REFI-QDA project (.qdpx) from NVivo, ATLAS.ti, MAXQDA or QualCoder.

    Text sources become transcripts, coded selections become annotations under the
    program's user names. What cannot be mapped or placed is listed, and the exit status
    is then 1. Codes exported by codeer need no mapping. Direction codes (Positief/Negatief
    on the same or an overlapping selection as the incentive code, or as its child codes)
    give the codings their direction; conflicts and codings without direction are reported.

    Example:

        codeer import-qdpx project.qdpx --suggest-mapping --mapping map.yaml
        codeer import-qdpx project.qdpx --mapping map.yaml
    """
    from pipeline.codebook import load_codebook
    from pipeline.qda import import_qdpx, load_qda_mapping, propose_mapping

    book = load_codebook(obj.settings.codebook_version)
    if suggest_mapping:
        if mapping is not None and mapping.exists():
            raise click.ClickException(f"{mapping} exists; choose another file or remove it first.")
        text, n_codes, n_proposed = propose_mapping(file, book)
        if mapping is None:
            click.echo(text, nl=False)
            return
        mapping.write_text(text, encoding="utf-8")
        click.echo(f"{n_codes} code(s), {n_proposed} with a proposal: written to {mapping}. Check it, then run "
                   f"'codeer import-qdpx {file} --mapping {mapping}'.")
        return
    if mapping is not None and not mapping.is_file():
        raise click.ClickException(f"{mapping}: no such mapping file. Create one with --suggest-mapping.")
    from pipeline.corpus import load_deidentifier, load_segmenter, store_pseudonymizer

    settings = obj.settings
    segmenter = load_segmenter(settings.window)
    store = obj.store
    run_id = store.begin_run("import-qdpx", settings.public_dict(), segmenter.name)
    report = import_qdpx(file, store, segmenter, book, load_qda_mapping(mapping, book) if mapping else None,
                         run_id=run_id, limits=settings.input_limits, deidentifier=load_deidentifier(settings.privacy_allow),
                         pseudonyms=store_pseudonymizer(store, settings.paths.key_file))
    for line in report.notes:
        click.echo(f"NOTE {line}", err=True)
    for line in (*report.unmapped, *report.problems):
        click.echo(f"NOT IMPORTED {line}", err=True)
    for line in report.conflicts:
        click.echo(f"CONFLICT {line}", err=True)
    statuses = ", ".join(f"{n} {status}" for status, n in sorted(report.statuses.items())) or "none stored"
    store.finish_run(run_id, "completed" if report.ok else "incomplete",
                     {"sources": report.n_sources, **report.statuses, "codings_added": report.n_codings_added})
    coded = report.n_selections - report.n_direction_selections
    besides = f" (besides {report.n_direction_selections} with direction codes only)" if report.n_direction_selections else ""
    click.echo(f"{report.n_sources} source(s): {statuses}; {report.n_placed} of {coded} selection(s) "
               f"placed{besides}; {report.n_codings_added} coding(s) added, {report.n_codings_present} already present; "
               f"{len(report.unmapped)} unmapped code(s), {len(report.problems)} problem(s).")
    if report.n_direction_codings or report.n_without_direction:
        click.echo(f"Directions: {report.n_directed} coding(s) took theirs from {report.n_direction_codings} "
                   f"direction code(s); {len(report.conflicts)} conflict(s); {report.n_without_direction} incentive "
                   "coding(s) without direction.")
    if not report.ok:
        sys.exit(1)


@cli.command("export-qdpx")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--include", type=click.Choice(["predicted", "reviewed", "all"]), default="all", show_default=True,
              help="reviewed: human codings; predicted: machine codings; all: both.")
@click.option("--model", "models", multiple=True, help="Only these model ids' predictions (default: all). Repeatable.")
@click.pass_obj
@friendly
@reads_workspace
def export_qdpx_command(obj: Context, out: Path, include: str, models: tuple[str, ...]) -> None:
    """Export transcripts, codebook and codings as a REFI-QDA project (.qdpx).

    Human codings are filed under their annotators, machine codings under one user per
    model ('codeer model <id>') with probability and direction in the selection's
    description. GUIDs derive from codeer's ids, so a re-export updates the project.

    Example:

        codeer export-qdpx codeer.qdpx --include all
    """
    from pipeline.codebook import load_codebook
    from pipeline.qda import export_qdpx

    report = export_qdpx(obj.store, load_codebook(obj.settings.codebook_version), out, include=include,
                         model_ids=list(models) or None)
    for line in report.problems:
        click.echo(f"NOT EXPORTED {line}", err=True)
    click.echo(f"{out}: {report.n_sources} source(s), {report.n_selections} selection(s), "
               f"{report.n_human_codings} human and {report.n_machine_codings} machine coding(s), "
               f"{len(report.users)} user(s).")


@codebook.command("export-qdc")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--version", "version", default=None, help="Codebook version (default: the configured one).")
@click.pass_obj
@friendly
def codebook_export_qdc(obj: Context, out: Path, version: str | None) -> None:
    """Write the codebook as a REFI-QDA codebook (.qdc) for NVivo, ATLAS.ti or MAXQDA.

    Example:

        codeer codebook export-qdc garvin2008.qdc
    """
    from pipeline.codebook import load_codebook
    from pipeline.qda import export_qdc

    n = export_qdc(load_codebook(version or obj.settings.codebook_version), out)
    click.echo(f"{out}: {n} codes.")


@codebook.command("import-qdc")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--version", "version", required=True, help="Version name of the new codebook, e.g. mijnboom2026.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Codebook YAML to write (default: stdout); it must not exist yet.")
@friendly
def codebook_import_qdc(file: Path, version: str, out: Path | None) -> None:
    """Turn a REFI-QDA codebook (.qdc, or the code tree of a .qdpx) into a codebook YAML.

    Codes exported by codeer keep ids, kinds and definitions; other codes become context
    codes (folders become groups): set kinds and 'rated' in the YAML afterwards.

    Example:

        codeer codebook import-qdc boom.qdc --version mijnboom2026 --out pipeline/resources/annotations/codebook/mijnboom2026.yaml
    """
    from pipeline.qda import codebook_from_qda, codebook_yaml, read_qdc

    if out is not None and out.exists():
        raise click.ClickException(f"{out} exists; choose another file or remove it first.")
    book = codebook_from_qda(read_qdc(file), version, source=str(file))
    text = codebook_yaml(book)
    if out is None:
        click.echo(text, nl=False)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    click.echo(f"{out}: codebook {version!r} with {len(book.codes)} codes ({len(book.codable)} codable).")
