"""Privacy commands: erase a respondent or a transcript (issue 19)."""

from __future__ import annotations

import click

from pipeline.cli import Context, cli, friendly


@cli.command()
@click.option("--respondent", help="The respondent's code (BA, R0001; 'codeer transcripts' lists them).")
@click.option("--transcript", help="A transcript id, a prefix of one, or its source key (every stored version).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
@friendly
def forget(obj: Context, respondent: str | None, transcript: str | None, yes: bool) -> None:
    """Erase a respondent or a transcript from the workspace (AVG/GDPR article 17).

    Removes its text, utterances, codings, annotations, review items, questionnaire answers
    (for a respondent), cached embeddings and its quotes in the report files, and marks the
    ratings that rested on it for recomputation. Prints what was removed.

    Example:

        codeer forget --respondent R0003
    """
    from pipeline.privacy import forget as forget_data

    target = f"respondent {respondent}" if respondent else f"transcript {transcript}"
    if not yes and (respondent or transcript):
        click.confirm(f"Erase {target} from {obj.settings.home}? This cannot be undone", abort=True)
    result = forget_data(obj.store, obj.settings.paths, respondent=respondent, transcript=transcript)
    for line in result.lines():
        click.echo(line)
