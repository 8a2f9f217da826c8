"""Corpus commands: ingest transcripts and tables, list them, codebooks, seed annotations, questionnaires."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from pipeline.cli import Context, cli, echo_import, friendly, reads_workspace
from pipeline.records import Speaker


def _parse_speakers(values: tuple[str, ...]) -> dict[str, Speaker]:
    aliases: dict[str, Speaker] = {}
    for value in values:
        label, sep, side = value.partition("=")
        if not sep or side.strip().lower() not in ("interviewer", "respondent"):
            raise click.BadParameter(f"{value!r}: use LABEL=interviewer or LABEL=respondent", param_hint="--speaker")
        aliases[label.strip()] = Speaker(side.strip().lower())
    return aliases


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--metadata", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="metadata.csv (file,municipality,respondent,role); default: one found beside the files.")
@click.option("--speaker", "speakers", multiple=True, metavar="LABEL=SIDE",
              help="Map an unknown speaker label, e.g. --speaker 'Jan=respondent'. Repeatable.")
@click.option("--window", type=click.IntRange(1, 10), default=None, help="Sentences per utterance (default 1).")
@click.pass_obj
@friendly
def ingest(obj: Context, paths: tuple[Path, ...], metadata: Path | None, speakers: tuple[str, ...], window: int | None) -> None:
    """Read, segment and store transcripts and documents (.txt, .docx, .pdf).

    A PDF is read as an interview or a policy document by its content (speaker turns,
    questions and answers); a NOTE line says which and why. Every readable file is stored; each file that fails is named with its reason, and the
    exit status is 1 when any file failed. Re-ingesting unchanged files changes nothing.

    Example:

        codeer ingest data/demo --metadata data/demo/metadata.csv
    """
    from pipeline.corpus import ingest_paths, load_deidentifier, load_segmenter, store_pseudonymizer

    settings = obj.settings
    segmenter = load_segmenter(window or settings.window)
    store = obj.store
    run_id = store.begin_run("ingest", settings.public_dict(), segmenter.name)
    report = ingest_paths(list(paths), store, segmenter, metadata_file=metadata,
                          speaker_aliases=_parse_speakers(speakers), run_id=run_id, show_progress=True,
                          limits=settings.input_limits, deidentifier=load_deidentifier(settings.privacy_allow),
                          pseudonyms=store_pseudonymizer(store, settings.paths.key_file), allow=settings.privacy_allow)
    for result in report.results:
        if result.status in ("renamed", "duplicate", "skipped"):
            click.echo(f"{result.status.upper()} {result.path} ({result.reason})", err=result.status == "skipped")
        if result.note:
            click.echo(f"NOTE {result.path}: {result.note}")
    for result in report.failed:
        click.echo(f"FAILED ({result.reason}) {result.error}", err=True)
    summary = {s: report.count(s) for s in ("new", "changed", "unchanged", "renamed", "duplicate", "skipped", "failed")}
    summary["utterances"] = sum(r.n_utterances for r in report.results if r.status in ("new", "changed"))
    store.finish_run(run_id, "failed" if report.failed else "completed", summary)
    moved = "".join(f", {summary[s]} {s}" for s in ("renamed", "duplicate", "skipped") if summary[s])
    click.echo(f"{len(report.results)} file(s): {summary['new']} new, {summary['changed']} changed, "
               f"{summary['unchanged']} unchanged{moved}, {summary['failed']} failed; "
               f"{summary['utterances']} utterances stored (segmenter: {segmenter.name}).")
    if report.failed:
        sys.exit(1)


@cli.command()
@click.option("--transcript", help="Only this transcript id (or a prefix of it).")
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl"]), default="table", show_default=True)
@click.pass_obj
@friendly
@reads_workspace
def utterances(obj: Context, transcript: str | None, fmt: str) -> None:
    """List the stored utterances of the active transcript versions.

    Example:

        codeer utterances --format jsonl > utterances.jsonl
    """
    from pipeline.corpus import utterance_json

    for utterance in obj.store.iter_utterances(transcript):
        if fmt == "jsonl":
            click.echo(json.dumps(utterance_json(utterance), ensure_ascii=False))
        else:
            text = utterance.text if len(utterance.text) <= 70 else utterance.text[:67] + "..."
            click.echo(f"{utterance.utterance_id}  {utterance.municipality:12.12s} {utterance.respondent:6s} "
                       f"{utterance.start:>6}-{utterance.end:<6} {text}")


@cli.command()
@click.pass_obj
@friendly
@reads_workspace
def transcripts(obj: Context) -> None:
    """List stored transcripts: id, source, municipality, respondent, role, utterances.

    Example:

        codeer transcripts
    """
    for t in obj.store.list_transcripts():
        click.echo(f"{t.transcript_id}  {t.source:40.40s} {t.municipality:12.12s} {t.respondent:6s} "
                   f"{t.role:18s} {t.n_utterances:5d}")


@cli.command("ingest-table")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
@friendly
def ingest_table(obj: Context, file: Path) -> None:
    """Store utterances that are already segmented (.csv, .jsonl, .xlsx).

    Columns: id, text, municipality, respondent, and optionally role, transcript, turn.
    The text is de-identified before it is stored, as 'codeer ingest' does.

    Example:

        codeer ingest-table exported.csv
    """
    from pipeline.corpus import deidentify_rows, load_deidentifier, read_table, transcripts_from_table

    frame = read_table(file, required=("id", "text", "municipality", "respondent"))
    counts = {"new": 0, "changed": 0, "unchanged": 0}
    n_utterances = 0
    deidentifier = load_deidentifier(obj.settings.privacy_allow)
    municipalities = sorted(set(frame["municipality"]))
    for transcript, rows in transcripts_from_table(frame, file):
        transcript, rows = deidentify_rows(transcript, rows, deidentifier, allow=municipalities)
        counts[obj.store.save_transcript(transcript, rows, segmenter="table")] += 1
        n_utterances += len(rows)
    click.echo(f"{n_utterances} utterances in {sum(counts.values())} transcript(s): "
               f"{counts['new']} new, {counts['changed']} changed, {counts['unchanged']} unchanged.")


@cli.group()
def codebook() -> None:
    """Show and validate codebooks."""


@codebook.command("show")
@click.option("--version", "version", default=None, help="Codebook version (default: the configured one).")
@click.pass_obj
@friendly
def codebook_show(obj: Context, version: str | None) -> None:
    """Print the code tree; rated codes are marked with *.

    Example:

        codeer codebook show --version scriptie2017
    """
    from pipeline.codebook import load_codebook

    book = load_codebook(version or obj.settings.codebook_version)
    click.echo(f"codebook {book.version}: {book.title_en}")
    for line in book.tree_lines():
        click.echo(line)


@codebook.command("validate")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@friendly
def codebook_validate(file: Path) -> None:
    """Check a codebook YAML file: unique ids, parents exist, no cycles.

    Example:

        codeer codebook validate pipeline/resources/annotations/codebook/garvin2008.yaml
    """
    from pipeline.codebook import load_codebook_file

    book = load_codebook_file(file)
    click.echo(f"{file}: valid codebook {book.version!r} with {len(book.codes)} codes "
               f"({len(book.incentives)} incentives, {len(book.context_codes)} context codes).")


@codebook.command("migrate")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--to", "target", required=True, help="Codebook version to convert to, e.g. scriptie2017.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Annotation file (JSONL) to write; it must not exist yet.")
@click.option("--choose", "choices", multiple=True, metavar="CODE=NEW",
              help="For a code that was split or has no counterpart: the code to give it. Repeatable.")
@friendly
def codebook_migrate(paths: tuple[Path, ...], target: str, out: Path, choices: tuple[str, ...]) -> None:
    """Convert annotation files to another codebook version with the codebooks' mapping.

    Renamed codes are converted; codes that were split (tijd_evaluatie into ervaren_tijd and
    evaluatiemomenten) or have no counterpart are listed as not converted, unless --choose
    names the code to use. The exit status is 1 when something was not converted.

    Example:

        codeer codebook migrate annotations/seed --to scriptie2017 --out seed-scriptie2017.jsonl
    """
    from pipeline.corpus import migrate_annotation_files

    if out.exists():
        raise click.ClickException(f"{out} exists; choose another file or remove it first.")
    chosen = {}
    for choice in choices:
        code, sep, new = choice.partition("=")
        if not sep or not code.strip() or not new.strip():
            raise click.ClickException(f"--choose {choice!r}: expected CODE=NEW, e.g. tijd_evaluatie=ervaren_tijd.")
        chosen[code.strip()] = new.strip()
    result = migrate_annotation_files(list(paths), target, out, choices=chosen)
    for line in result.unmapped:
        click.echo(f"NOT CONVERTED {line}", err=True)
    for line in result.merged:
        click.echo(f"MERGED {line}", err=True)
    click.echo(f"{out}: {len(result.annotations)} annotation(s) in {result.target}; {result.n_converted} of "
               f"{result.n_codings} coding(s) converted from {result.source}; {result.n_left_out} annotation(s) "
               "left out (no coding could be converted).")
    if not result.complete:
        sys.exit(1)


@cli.group("annotations")
def annotations_group() -> None:
    """Import and count hand-coded seed annotations."""


@annotations_group.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.pass_obj
@friendly
def annotations_import(obj: Context, paths: tuple[Path, ...]) -> None:
    """Attach annotation records (JSONL) to the stored utterances they were made on.

    Each record's transcript hash, offsets and text are checked; records that do not match
    are listed and the exit status is 1. Importing twice adds nothing.

    Example:

        codeer annotations import pipeline/resources/annotations/seed
    """
    from pipeline.codebook import load_codebook
    from pipeline.corpus import import_annotations, read_annotations

    records = read_annotations(list(paths), load_codebook(obj.settings.codebook_version))
    report = import_annotations(records, obj.store)
    echo_import(f"{report.n_records} record(s): {report.n_codings_added} coding(s) added, "
                f"{report.n_codings_present} already present, {len(report.problems)} not imported.", report.problems)


@annotations_group.command("stats")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_obj
@friendly
def annotations_stats(obj: Context, paths: tuple[Path, ...], fmt: str) -> None:
    """Count annotations per code and direction; flag codes under the minimum.

    Minimum: 40 per incentive, 15 per context code. Default PATH: the shipped seed annotations
    (pipeline/resources/annotations/seed).

    Example:

        codeer annotations stats --format json
    """
    from pipeline.codebook import load_codebook
    from pipeline.corpus import annotation_stats, read_annotations
    from pipeline.resources import seed_dir

    records = read_annotations(list(paths) or [seed_dir()], load_codebook(obj.settings.codebook_version))
    table = annotation_stats(records, load_codebook(obj.settings.codebook_version))
    if fmt == "json":
        click.echo(json.dumps({row.code: {"+": int(row["+"]), "-": int(row["-"]), "0": int(row["0"]),
                                          "total": int(row.total)} for _, row in table.iterrows()}, indent=1))
        return
    click.echo(f"{'code':30s} {'+':>5s} {'-':>5s} {'0':>5s} {'total':>6s}  minimum")
    for _, row in table.iterrows():
        flag = "  BELOW MINIMUM" if row.below_minimum else ""
        click.echo(f"{row.code:30s} {row['+']:5d} {row['-']:5d} {row['0']:5d} {row.total:6d}  {row.minimum}{flag}")
    click.echo(f"{len(records)} annotated utterances")


@cli.command("ingest-questionnaire")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--version", "version", default=None, metavar="VERSION",
              help="Questionnaire version: beleidsmedewerker or manager (default: told from the headers).")
@click.pass_obj
@friendly
def ingest_questionnaire_command(obj: Context, file: Path, version: str | None) -> None:
    """Validate and store questionnaire answers (a Google Forms export, .csv or .xlsx).

    Every answer is checked against the printed options of pipeline/resources/annotations/questionnaires.yaml;
    any unknown option is listed with its row and column, nothing is stored and the exit
    status is 1. Importing the same file twice changes nothing.

    Example:

        codeer ingest-questionnaire data/demo/questionnaires/managers.csv
    """
    from pipeline.corpus import ingest_questionnaire
    from pipeline.rating import questionnaire_evidence, summarise

    result = ingest_questionnaire(file, obj.store, version)
    responses = result.responses
    municipalities = sorted({response.municipality for response in responses.responses})
    click.echo(f"{file}: {responses.version} questionnaire, {len(responses.responses)} respondent(s) "
               f"({', '.join(responses.respondents)}) in {len(municipalities)} municipalit"
               f"{'y' if len(municipalities) == 1 else 'ies'}; {responses.n_answers} answers: "
               f"{result.n_added} added, {result.n_updated} updated.")
    if responses.ignored_columns:
        click.echo(f"ignored {len(responses.ignored_columns)} column(s) that are no question of this version: "
                   + "; ".join(repr(c[:40]) for c in responses.ignored_columns), err=True)
    click.echo(f"  {'item':5s} {'incentive':28s} positive/answered")
    for row in summarise(questionnaire_evidence(responses)).itertuples(index=False):
        click.echo(f"  {row.item:5s} {row.code:28s} {row.label}")
