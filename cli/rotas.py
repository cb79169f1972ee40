"""`phonetree rota ...`: call rotas, who rings whom, round by round."""
from __future__ import annotations

from datetime import date
from typing import Any, Callable

import click

from cli.app import App, cli, emit_json, pass_app
from cli.options import group_argument, json_option, member_argument, rota_argument
from cli.params import DURATION, TIME_OF_DAY
from phonetree import clock, directory
from phonetree.display_text import safe_data
from phonetree.errors import PhonetreeError
from phonetree.local_times import local


@cli.group()
def rota() -> None:
    """Peer call rotas: who rings whom, round by round.

    \b
    Example:
      phonetree rota add Oakfield weekly-calls --kind pairs --on tue --at 18:00
    """


@rota.command("add")
@group_argument
@rota_argument
@click.option("--kind", type=click.Choice(["pairs", "ring"]), required=True,
              help="pairs: partners rotate so everyone talks to everyone; ring: each rings the next.")
@click.option("--on", "on_day", required=True, help="The day of the first round: mon, tue, ...")
@click.option("--at", "at", type=TIME_OF_DAY, required=True, help="Local time of the call prompts, HH:MM.")
@click.option("--members", help="Who takes part, in order: A,B,C (default: every peer).")
@click.option("--cadence", type=click.Choice(["weekly", "fortnightly", "daily"]), default="weekly",
              show_default=True, help="How often a round comes round.")
@click.option("--never-pair", "never_pair", multiple=True, metavar="A:B",
              help="Two members who must never be paired; repeat for more.")
@click.option("--confirm-within", "confirm_within", type=DURATION, help="How long a caller has to reply DONE before the "
              "call passes to a backup, e.g. 2d (default 3d weekly, 6h daily).")
@pass_app
def rota_add(app: App, group_name: str, name: str, kind: str, on_day: str, at: str, members: str | None,
             cadence: str, never_pair: tuple[str, ...], confirm_within: int | None) -> None:
    """Add a call rota. Paused or away members are skipped fairly; calls are prompted by SMS.

    \b
    Example:
      phonetree rota add Oakfield tuesday-calls --kind pairs --on tue --at 18:00 \\
          --members Jo,Sam,Pat,Dot --never-pair Jo:Pat
    """
    from phonetree import rotas

    avoid = []
    for rule in never_pair:
        a, sep, b = rule.partition(":")
        if not sep or not a.strip() or not b.strip():
            raise PhonetreeError(f"{rule!r} is not a pair; write it like Jo:Pat.")
        avoid.append((a.strip(), b.strip()))
    with app.session() as session:
        g = directory.get_group(session, group_name)
        made = rotas.add_rota(session, g, name, kind, on_day, at,
                              [n.strip() for n in members.split(",") if n.strip()] if members else None,
                              cadence, avoid, confirm_within)
        first = made.start_date
        count = len(made.members)
    click.echo(f"Rota {name}: {kind}, {cadence}, {count} members; first round {first:%a %d %b} at {made.at_time}.")


@rota.command("show")
@group_argument
@rota_argument
@click.option("--weeks", default=4, show_default=True, type=click.IntRange(1, 104), help="How far ahead.")
@json_option("Print a JSON list of rounds.")
@pass_app
def rota_show(app: App, group_name: str, name: str, weeks: int, as_json: bool) -> None:
    """Show the rounds of a rota: who rings whom, from this round on.

    \b
    Example:
      phonetree rota show Oakfield tuesday-calls --weeks 6
    """
    from phonetree import rotas

    with app.session() as session:
        g = directory.get_group(session, group_name)
        rounds = rotas.show(session, g, rotas.get_rota(session, g, name), clock.now(), weeks)
    if as_json:
        emit_json(rounds)
        return
    rounds = safe_data(rounds)
    width = max([len(c["caller"]) for r in rounds for c in r["calls"]] + [6])
    for r in rounds:
        click.echo(f"{date.fromisoformat(r['date']):%a %d %b %Y}")
        for call in r["calls"]:
            click.echo(f"  {call['caller']:<{width}}  rings  {call['callee']}")
        if not r["calls"]:
            click.echo("  (no calls: too few members available)")


@rota.command("export")
@group_argument
@rota_argument
@click.option("--weeks", default=12, show_default=True, type=click.IntRange(1, 104), help="How far ahead.")
@pass_app
def rota_export(app: App, group_name: str, name: str, weeks: int) -> None:
    """Print the rota as an iCalendar file (RFC 5545), one event per call, to subscribe to.

    \b
    Example:
      phonetree rota export Oakfield tuesday-calls > calls.ics
    """
    from phonetree import calendar, rotas

    with app.session() as session:
        g = directory.get_group(session, group_name)
        r = rotas.get_rota(session, g, name)
        text = calendar.export(g, r, rotas.show(session, g, r, clock.now(), weeks), clock.now())
    click.echo(text, nl=False)


@rota.command("join")
@group_argument
@rota_argument
@member_argument
@pass_app
def rota_join(app: App, group_name: str, name: str, member_name: str) -> None:
    """Add a member to a rota from the next round; past rounds stay as they were.

    \b
    Example:
      phonetree rota join Oakfield tuesday-calls Pat
    """
    from phonetree import rotas

    _change_rota_member(app, group_name, name, member_name, rotas.join)
    click.echo(f"{member_name} joins {name} from the next round.")


@rota.command("leave")
@group_argument
@rota_argument
@member_argument
@pass_app
def rota_leave(app: App, group_name: str, name: str, member_name: str) -> None:
    """Take a member out of a rota from today; their past calls stay in the record.

    \b
    Example:
      phonetree rota leave Oakfield tuesday-calls Pat
    """
    from phonetree import rotas

    _change_rota_member(app, group_name, name, member_name, rotas.leave)
    click.echo(f"{member_name} has left {name}.")


def _change_rota_member(app: App, group_name: str, name: str, member_name: str,
                        change: Callable[..., Any]) -> None:
    """`rota join` and `rota leave`: find the group and rota, then apply `change` to the member."""
    from phonetree import rotas

    with app.session() as session:
        g = directory.get_group(session, group_name)
        change(session, g, rotas.get_rota(session, g, name), member_name)


@rota.command("list")
@group_argument
@json_option("Print JSON (times in UTC, ISO 8601).")
@pass_app
def rota_list(app: App, group_name: str, as_json: bool) -> None:
    """List a group's rotas, who is in each, and when the next round is (local time).

    \b
    Example:
      phonetree rota list Oakfield
    """
    from phonetree import rotas

    with app.session() as session:
        g = directory.get_group(session, group_name)
        data = rotas.list_rotas(session, g, clock.now())
        tz = g.timezone
    if as_json:
        emit_json([r | {"next_round": r["next_round"].isoformat()} for r in data])
        return
    if not data:
        click.echo(f"No rotas in {group_name} yet. Add one: phonetree rota add {group_name} NAME "
                   "--kind pairs --on tue --at 18:00")
    for r in safe_data(data):
        click.echo(f"{r['name']:<20} {r['kind']:<6} {r['cadence']:<12} {r['at']}  next {local(r['next_round'], tz)}; "
                   f"{', '.join(r['members'])}")


@rota.command("remove")
@group_argument
@rota_argument
@pass_app
def rota_remove(app: App, group_name: str, name: str) -> None:
    """Remove a rota: no more rounds or call prompts; calls not yet confirmed are closed.

    \b
    Example:
      phonetree rota remove Oakfield tuesday-calls
    """
    from phonetree import rotas

    with app.session() as session:
        g = directory.get_group(session, group_name)
        r = rotas.get_rota(session, g, name)
        closed = rotas.remove_rota(session, g, r, clock.now())
    click.echo(f"Removed the rota {name}." + (f" {closed} call(s) not yet confirmed were closed." if closed else ""))
