"""`phonetree group ...`: add, list, show, set and remove groups."""
from __future__ import annotations

from typing import Any

import click

from cli.app import App, cli, emit_json, pass_app
from cli.options import json_option
from cli.params import DURATION
from phonetree import clock, directory
from phonetree.display_text import safe_data
from phonetree.durations import format_duration
from phonetree.errors import PhonetreeError
from phonetree.gateways import get_gateway
from phonetree.presets import PRESETS


@cli.group()
def group() -> None:
    """Create and look at groups.

    \b
    Example:
      phonetree group add Oakfield --timezone Europe/London --kind grandparents
    """


@group.command("add")
@click.argument("name")
@click.option("--timezone", "tz", required=True, help="The group's time zone, e.g. Europe/London.")
@click.option("--kind", type=click.Choice(list(PRESETS)), default="rural", show_default=True,
              help="A preset of defaults: channel, reply window, quiet hours.")
@json_option("Print the group as JSON.")
@pass_app
def group_add(app: App, name: str, tz: str, kind: str, as_json: bool) -> None:
    """Add a group. All times you give for it are in its time zone.

    \b
    Example:
      phonetree group add Oakfield --timezone Europe/London --kind grandparents
    """
    with app.session() as session:
        created = directory.add_group(session, name, tz, kind)
        data = group_json(created)
    if as_json:
        emit_json(data)
    else:
        click.echo(f"Added group {data['name']} ({data['kind']}, {data['timezone']}): "
                   f"window {data['window']}, quiet hours {data['quiet_hours']}.")


def group_json(g: Any) -> dict[str, Any]:
    return {"name": g.name, "timezone": g.timezone, "kind": g.kind, "default_channel": g.default_channel,
            "window": format_duration(g.window_s), "escalation_wait": format_duration(g.escalation_wait_s),
            "quiet_hours": f"{g.quiet_start}-{g.quiet_end}", "reminder": g.reminder}


@group.command("list")
@json_option()
@pass_app
def group_list(app: App, as_json: bool) -> None:
    """List the groups.

    \b
    Example:
      phonetree group list
    """
    with app.session() as session:
        data = [group_json(g) | {"members": len(g.members)} for g in directory.list_groups(session)]
    if as_json:
        emit_json(data)
        return
    if not data:
        click.echo("No groups yet. Add one: phonetree group add NAME --timezone Europe/London")
    for g in safe_data(data):
        click.echo(f"{g['name']:<20} {g['kind']:<13} {g['timezone']:<20} {g['members']} member(s)")


@group.command("show")
@click.argument("name")
@json_option()
@pass_app
def group_show(app: App, name: str, as_json: bool) -> None:
    """Show a group's settings.

    \b
    Example:
      phonetree group show Oakfield
    """
    with app.session() as session:
        data = group_json(directory.get_group(session, name))
    if as_json:
        emit_json(data)
        return
    for key, value in safe_data(data).items():
        click.echo(f"{key.replace('_', ' '):<16} {value}")


@group.command("set")
@click.argument("name")
@click.option("--quiet", help="Quiet hours for routine prompts, local: 21:00-08:00, or off.")
@click.option("--window", type=DURATION, help="Default reply window for new check-ins, e.g. 45m.")
@click.option("--escalation-wait", "escalation_wait", type=DURATION, help="Default wait per contact, e.g. 20m.")
@click.option("--reminder/--no-reminder", default=None, help="Remind half-way through the window.")
@click.option("--channel", type=click.Choice(["sms", "voice"]), help="Default channel for new members.")
@pass_app
def group_set(app: App, name: str, quiet: str | None, window: int | None, escalation_wait: int | None,
              reminder: bool | None, channel: str | None) -> None:
    """Change a group's defaults (its kind's preset is only the start).

    \b
    Example:
      phonetree group set Oakfield --quiet 20:30-09:00 --window 45m
    """
    with app.session() as session:
        changes = directory.update_group(
            session, directory.get_group(session, name), quiet=quiet, window_s=window,
            escalation_wait_s=escalation_wait, reminder=reminder, channel=channel)
    click.echo(f"{name} now has: " + ", ".join(changes) + ".")


@group.command("remove")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Confirm: this erases the group and its history for good.")
@pass_app
def group_remove(app: App, name: str, yes: bool) -> None:
    """Erase a group and its history. Open check-ins are closed first and anyone asked to
    ring is told they needn't.

    \b
    Example:
      phonetree group remove Oakfield --yes
    """
    from phonetree import privacy
    from schedules import dispatcher

    now = clock.now()
    with app.session() as session:
        g = directory.get_group(session, name)
        if not yes:
            raise PhonetreeError(f"this erases {g.name}, its members and all their history for good; "
                                 "add --yes to confirm.")
        closed, told = privacy.remove_group(session, g, now)
    if told:
        dispatcher.dispatch(app.engine, get_gateway(app.settings), now)
    from phonetree.db import checkpoint

    checkpoint(app.engine)  # the erased rows' old pages out of the -wal file
    click.echo(f"Removed {name}." + (f" {closed} open check-in(s) closed; {told} person(s) told they needn't ring."
                                     if closed else ""))
