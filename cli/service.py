"""Running the service: receive, tick, run, doctor, db rekey, and the demo."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from cli.app import App, cli, emit_json, pass_app
from cli.options import json_option
from phonetree import clock, inbound, redact
from phonetree.display_text import safe
from phonetree.gateways import get_gateway


@cli.command()
@click.option("--from", "sender", required=True, help="The sender's phone number.")
@click.argument("text")
@json_option("Print what happened as JSON.")
@pass_app
def receive(app: App, sender: str, text: str, as_json: bool) -> None:
    """Handle an inbound SMS as if it came from the gateway, then send any replies due.

    \b
    Example:
      phonetree receive --from "07911 100001" "OK thanks"
    """
    from schedules import dispatcher

    from phonetree.phones import parse_phone

    parse_phone(sender)  # not a number at all: an Error, not "belongs to no member"
    now = clock.now()
    with app.session() as session:
        outcome = inbound.handle(session, now, sender, text)
    if outcome.known:
        dispatcher.dispatch(app.engine, get_gateway(app.settings), now)
    data = {"known": outcome.known, "member": outcome.member, "intent": outcome.intent,
            "actions": outcome.actions}
    if as_json:
        emit_json(data)
    elif not outcome.known:
        click.echo("That number belongs to no member: nothing changed.")
    else:
        click.echo(safe(f"{outcome.member}: {outcome.intent}: {'; '.join(outcome.actions)}"))


@cli.command()
@json_option("Print what was done as JSON.")
@pass_app
def tick(app: App, as_json: bool) -> None:
    """One pass of the scheduler at the current time, then exit (for cron).

    \b
    Example:
      phonetree tick
    """
    from schedules.engine import tick as run_tick

    report = run_tick(app.engine, get_gateway(app.settings), clock.now())
    if as_json:
        emit_json({k: v for k, v in vars(report).items() if k != "details"})
    else:
        click.echo(f"tick: {report.summary()}")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address for the webhook server.")
@click.option("--port", default=8080, show_default=True, type=int, help="Port for the webhook server.")
@pass_app
def run(app: App, host: str, port: int) -> None:
    """Run the scheduler and the webhook server until stopped (Ctrl-C).

    Twilio should post inbound SMS to PHONETREE_PUBLIC_URL/twilio/sms.

    \b
    Example:
      PHONETREE_PUBLIC_URL=https://tree.example.org phonetree run --port 8080
    """
    from schedules.runner import Runner

    logging.getLogger().setLevel(logging.INFO)
    # Our own log lines at INFO; the libraries' per-tick and per-request chatter only if asked.
    for noisy in ("apscheduler", "alembic", "twilio", "waitress"):
        logging.getLogger(noisy).setLevel(logging.INFO if app.verbose else logging.WARNING)
    runner = Runner(app.engine, get_gateway(app.settings), app.settings, host=host, port=port)
    click.echo(f"phonetree running: gateway {app.settings.gateway}, webhooks on {runner.address}"
               " (Ctrl-C to stop)")
    runner.serve_forever()


@cli.command()
@click.option("--db", "demo_db", default="phonetree-demo.db", show_default=True,
              help="The SQLite file to build the sample group in (replaced each run).")
def demo(demo_db: str) -> None:
    """Play a sample grandparents' group through a simulated day, on SQLite and the outbox.

    Nothing is sent: the conversation is printed as it happens, on a clock that steps
    through the day by itself.

    \b
    Example:
      phonetree demo
    """
    from schedules.demo import play

    play(Path(demo_db), click.echo)


@cli.command()
@pass_app
def doctor(app: App) -> None:
    """Check what you can't see: the database (reachable, writable, schema current, file
    permissions), time zone data, the gateway's settings and, with twilio, the credentials,
    the sending number and where Twilio posts the texts that come in. Exits 1 if anything
    needs doing. Secrets are never shown.

    \b
    Example:
      PHONETREE_GATEWAY=twilio PHONETREE_PUBLIC_URL=https://tree.example.org phonetree doctor
    """
    from phonetree import doctor as checkup

    checks = checkup.run(app.settings)
    width = max(len(c.what) for c in checks)
    for check in checks:
        click.echo(f"{'OK ' if check.ok else 'FIX'}  {check.what:<{width}}  {check.detail}")
    if not all(c.ok for c in checks):
        click.echo(f"Error: {sum(not c.ok for c in checks)} thing(s) to fix, marked FIX above.", err=True)
        sys.exit(1)


@cli.group("db")
def db_group() -> None:
    """The database itself: encryption at rest (SQLite with SQLCipher).

    \b
    Example:
      PHONETREE_NEW_DATABASE_KEY=... phonetree db rekey
    """


@db_group.command("rekey")
@pass_app
def db_rekey(app: App) -> None:
    """Change the key the SQLite database is encrypted with (or, with PHONETREE_DATABASE_KEY
    unset, encrypt a plain database). The new key comes from PHONETREE_NEW_DATABASE_KEY, or is
    asked for with hidden typing: never on the command line, where shell history keeps it.
    Stop phonetree run first; afterwards set PHONETREE_DATABASE_KEY to the new key.

    \b
    Example:
      phonetree db rekey            # asks for the new key twice
    """
    import os

    from phonetree import encryption

    new_key = os.environ.get(encryption.NEW_KEY_VARIABLE) or click.prompt(
        "New database key", hide_input=True, confirmation_prompt=True, err=True)
    redact.register(new_key)
    encryption.rekey(app.settings.database_url, app.settings.database_key, new_key)
    click.echo("The database is encrypted with the new key. Set PHONETREE_DATABASE_KEY to it "
               "(and keep it somewhere safe: without it the data can't be read).")
