"""`intercept console`: the operator console (adapters/console), on 127.0.0.1 unless told
otherwise, and never without a credential (docs/console.md)."""

from __future__ import annotations

import os

import click

from workers.cli.common import engine as _engine, settings as _settings, uvicorn_log_config


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Where to listen (loopback: only this machine).")
@click.option("--port", default=8090, show_default=True, type=int)
@click.option("--users", "users_file", default=None, metavar="FILE", envvar="INTERCEPT_CONSOLE_USERS",
              help="Operators' names and hashed passwords (env INTERCEPT_CONSOLE_USERS); else INTERCEPT_CONSOLE_TOKEN.")
@click.option("--add-user", "new_user", default=None, metavar="NAME",
              help="Add NAME to the --users file (asks for the password) and exit.")
def console(host: str, port: int, users_file: str | None, new_user: str | None) -> None:
    """Serve the operator console: case search with its timeline, dead letters with a retry
    button, the ledger by month, live counters. Sign-in with INTERCEPT_CONSOLE_TOKEN (a shared
    token; each operator gives their name) or a --users file (own passwords)."""
    from pathlib import Path  # noqa: PLC0415

    from adapters.console.auth import CredentialError, add_user, credentials_from  # noqa: PLC0415

    if new_user is not None:
        if not users_file:
            raise click.UsageError("--add-user needs --users FILE (or INTERCEPT_CONSOLE_USERS)")
        password = click.prompt(f"password for {new_user}", hide_input=True, confirmation_prompt=True)
        try:
            add_user(Path(users_file), new_user, password)
        except CredentialError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"added {new_user} to {users_file}")
        return
    try:
        credentials = credentials_from(os.environ.get("INTERCEPT_CONSOLE_TOKEN"), users_file)
    except CredentialError as exc:
        raise click.ClickException(str(exc)) from None
    _serve(host, port, credentials)


def _serve(host: str, port: int, credentials) -> None:
    import secrets  # noqa: PLC0415

    import uvicorn  # noqa: PLC0415

    from adapters.console.app import ConsoleSettings, create_console_app  # noqa: PLC0415
    from adapters.dead_letters import SqlDeadLetterStore  # noqa: PLC0415
    from adapters.ingress import replay_dead_letter  # noqa: PLC0415
    from workers.app import app as celery_app  # noqa: PLC0415
    from workers.bootstrap import make_acceptor  # noqa: PLC0415
    from workers.reachability import check  # noqa: PLC0415

    settings = _settings()
    check(settings)  # a retry records inputs and nudges the workers: both must be reachable
    engine = _engine(settings)
    store = SqlDeadLetterStore(engine)
    acceptor = make_acceptor(celery_app)  # records durably, then nudges the workers

    def retry(letter_id: int, operator: str):
        return replay_dead_letter(store, letter_id, acceptor, by=operator)

    # Without a configured secret, sessions last as long as this process.
    secret = os.environ.get("INTERCEPT_CONSOLE_SECRET") or secrets.token_urlsafe(32)
    https_only = os.environ.get("INTERCEPT_CONSOLE_HTTPS_ONLY", "0") == "1"
    app = create_console_app(engine, credentials, ConsoleSettings(secret, https_only), retry)
    click.echo(f"console on http://{host}:{port}/ (sign-in: {credentials.kind})", err=True)
    if host not in ("127.0.0.1", "localhost", "::1") and not https_only:
        click.echo("warning: the console is reachable from the network over plain HTTP: put it behind TLS and set "
                   "INTERCEPT_CONSOLE_HTTPS_ONLY=1", err=True)
    uvicorn.run(app, host=host, port=port, log_level="info", log_config=uvicorn_log_config())


commands = [console]
