"""Review commands: users, the review page, terminal review, export and import of the queue (issue 6)."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.cli import Context, cli, echo_import, friendly, reads_workspace, require_workspace


@cli.group()
def users() -> None:
    """Add and list the people who review (annotators and admins)."""


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["annotator", "admin"]), default="annotator", show_default=True,
              help="Annotators see the queue; admins also see users and the audit trail.")
@click.option("--password-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Read the password from the first line of this file (default: prompt for it).")
@click.pass_obj
@friendly
def users_add(obj: Context, name: str, role: str, password_file: Path | None) -> None:
    """Create a user; the password is stored as an argon2id hash.

    Example:

        codeer users add anna --role annotator
    """
    from pipeline.review import add_user

    if password_file is not None:
        lines = password_file.read_text(encoding="utf-8").splitlines()
        password = lines[0] if lines else ""
    else:
        password = click.prompt(f"Password for {name}", hide_input=True, confirmation_prompt=True)
    user = add_user(obj.store, name, role, password)
    click.echo(f"user {user.name!r} added ({user.role}).")


@users.command("set-password")
@click.argument("name")
@click.option("--password-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Read the new password from the first line of this file (default: prompt for it).")
@click.pass_obj
@friendly
def users_set_password(obj: Context, name: str, password_file: Path | None) -> None:
    """Give a user a new password; their open review-page sessions end.

    Example:

        codeer users set-password anna
    """
    from pipeline.review import set_password

    if password_file is not None:
        lines = password_file.read_text(encoding="utf-8").splitlines()
        password = lines[0] if lines else ""
    else:
        password = click.prompt(f"New password for {name}", hide_input=True, confirmation_prompt=True)
    n = set_password(obj.store, name, password)
    click.echo(f"password of {name!r} changed; {n} open session(s) ended.")


@users.command("list")
@click.pass_obj
@friendly
@reads_workspace
def users_list(obj: Context) -> None:
    """List users: name, role, active, created.

    Example:

        codeer users list
    """
    from pipeline.review import list_users

    for user in list_users(obj.store):
        click.echo(f"{user.name:24s} {user.role:10s} {'active' if user.active else 'inactive':9s} {user.created_at}")


@cli.command("serve-review")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but the loopback address needs HTTPS (cookies are Secure).")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--ssl-certfile", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="TLS certificate.")
@click.option("--ssl-keyfile", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="TLS private key.")
@click.pass_obj
@friendly
@reads_workspace
def serve_review(obj: Context, host: str, port: int, ssl_certfile: Path | None, ssl_keyfile: Path | None) -> None:
    """Serve the annotator web page (log in, review the queue, keyboard shortcuts).

    Example:

        codeer serve-review --port 8000
    """
    from pipeline.codebook import load_codebook
    from pipeline.review.web import serve

    _check_port_free(host, port)
    click.echo(f"review page on {'https' if ssl_certfile else 'http'}://{host}:{port}/ (Ctrl+C stops)")
    if host not in ("127.0.0.1", "localhost", "::1") and not ssl_certfile:
        click.echo("Note: off the loopback address the session cookie is Secure; browsers only keep it over "
                   "HTTPS. Pass --ssl-certfile/--ssl-keyfile or put a TLS proxy in front.", err=True)
    from pipeline.review.web.security import SessionPolicy

    settings = obj.settings
    serve(obj.store, load_codebook(settings.codebook_version), home=settings.home, host=host, port=port,
          ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile, trusted_proxies=settings.trusted_proxies,
          sessions=SessionPolicy(idle_s=settings.session_idle_minutes * 60.0, max_s=settings.session_max_hours * 3600.0),
          review_budget=settings.review_budget)


def _check_port_free(host: str, port: int) -> None:
    """Refuse, in one line, an address the page cannot listen on (a busy port), before announcing it."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as err:
        raise click.ClickException(f"cannot listen on {host!r}: not a known address ({err.strerror}). "
                                   "Give --host an address of this machine, e.g. 127.0.0.1.") from err
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        if hasattr(socket, "SO_REUSEADDR"):  # as uvicorn does: a port in TIME_WAIT is free
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as err:
            raise click.ClickException(
                f"port {port} on {host} is in use ({err.strerror}); another program (perhaps another "
                f"'codeer serve-review') listens there. Stop it or choose another port: --port {port + 1}.") from err


@cli.group("review", invoke_without_command=True)
@click.option("--user", "user_name", help="Your user name (see 'codeer users list'); needed to review.")
@click.option("--batch", type=click.IntRange(1, 100), default=10, show_default=True, help="Items claimed at a time.")
@click.pass_context
@friendly
def review_group(ctx: click.Context, user_name: str | None, batch: int) -> None:
    """Review the queue in the terminal; or export and import it (subcommands).

    Without a subcommand, claims items and asks for a decision on each: a accept, c correct
    (codes as '1- 3+ analyse0'), s skip, u undo, j/k next/previous, q quit.

    Example:

        codeer review --user anna
    """
    if ctx.invoked_subcommand is not None:
        return
    from pipeline.codebook import load_codebook
    from pipeline.review import run_terminal_review

    obj: Context = ctx.obj
    if not user_name:
        raise click.UsageError("give your user name: codeer review --user NAME")
    require_workspace(obj.settings)
    if obj.store.user_with_hash(user_name) is None:
        raise click.ClickException(f"no user {user_name!r}; add one with 'codeer users add {user_name}'.")
    n = run_terminal_review(obj.store, load_codebook(obj.settings.codebook_version), user_name, batch=batch)
    click.echo(f"{n} decision(s) recorded.")


@review_group.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "label-studio"]), default="csv", show_default=True)
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_obj
@friendly
@reads_workspace
def review_export(obj: Context, fmt: str, out: Path) -> None:
    """Write the queue and decisions (CSV), or the open items as Label Studio tasks (JSON).

    The Label Studio export also writes OUT's labelling configuration as <name>.label_config.xml.

    Example:

        codeer review export --format label-studio tasks.json
    """
    if fmt == "csv":
        from pipeline.review import export_review_csv

        n = export_review_csv(obj.store, out)
        click.echo(f"{n} review item(s) written to {out}.")
        return
    from pipeline.codebook import load_codebook
    from pipeline.review import export_label_studio

    n = export_label_studio(obj.store, out, load_codebook(obj.settings.codebook_version))
    click.echo(f"{n} task(s) written to {out}; labelling configuration in {out.stem}.label_config.xml.")


@review_group.command("import-label-studio")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--annotator", help="Record the decisions under this name (default: label-studio:<the LS user>).")
@click.pass_obj
@friendly
def review_import_label_studio(obj: Context, file: Path, annotator: str | None) -> None:
    """Record Label Studio annotations of exported tasks as review decisions.

    Example:

        codeer review import-label-studio export.json --annotator anna
    """
    from pipeline.codebook import load_codebook
    from pipeline.review import import_label_studio

    report = import_label_studio(obj.store, file, load_codebook(obj.settings.codebook_version), annotator=annotator)
    echo_import(f"{report.n_tasks} task(s): {report.n_accepted} accepted, {report.n_corrected} corrected, "
                f"{report.n_skipped} skipped, {len(report.problems)} not imported.", report.problems)
