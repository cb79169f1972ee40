"""`phonetree cascade ...`: news down the telephone tree."""
from __future__ import annotations

import click

from cli.app import App, cli, emit_json, pass_app
from cli.options import group_argument, json_option
from cli.params import DURATION
from phonetree import clock, directory
from phonetree.display_text import safe, safe_data
from phonetree.gateways import get_gateway
from phonetree.local_times import local, local_iso


@cli.group()
def cascade() -> None:
    """News down the telephone tree.

    \b
    Example:
      phonetree cascade start Oakfield "Thursday's meeting has moved; ring me for the venue"
    """


@cascade.command("tree")
@group_argument
@click.option("--branching", type=click.IntRange(1, 20), help="Build from member order, this many under each.")
@click.option("--set", "spec", help="Explicit: 'Margaret>Jo,Sam; Jo>Pat,Dot'.")
@json_option()
@pass_app
def cascade_tree(app: App, group_name: str, branching: int | None, spec: str | None, as_json: bool) -> None:
    """Show the group's telephone tree, or set it.

    \b
    Example:
      phonetree cascade tree Oakfield --branching 3
    """
    from phonetree import cascades

    with app.session() as session:
        g = directory.get_group(session, group_name)
        if branching or spec:
            cascades.build_tree(session, g, branching or cascades.DEFAULT_BRANCHING, spec)
        parent = cascades.tree(session, g)
        names = {m.id: safe(m.name) for m in g.members}
    children = cascades.children_of(parent)
    root = next(mid for mid, p in parent.items() if p is None)
    if as_json:
        emit_json({names[p]: [names[c] for c in kids] for p, kids in children.items()})
        return

    def draw(node: int, depth: int) -> None:
        click.echo("  " * depth + names[node])
        for child in children.get(node, []):
            draw(child, depth + 1)

    draw(root, 0)


@cascade.command("start")
@group_argument
@click.argument("text")
@click.option("--from", "originator", help="Who starts it (default: the first organiser).")
@click.option("--wait", type=DURATION, help="How long each branch has to confirm before it is repaired (default 2h).")
@click.option("--voice", is_flag=True, help="Speak the news by phone call instead of texting it "
              "(for details like a venue).")
@pass_app
def cascade_start(app: App, group_name: str, text: str, originator: str | None, wait: int | None,
                  voice: bool) -> None:
    """Send news down the telephone tree: each branch rings their people and replies DONE.

    \b
    Example:
      phonetree cascade start Oakfield "Meeting moved to Thursday, ring Jo for the venue" --voice
    """
    from phonetree import cascades
    from schedules import dispatcher

    now = clock.now()
    with app.session() as session:
        g = directory.get_group(session, group_name)
        started, warnings = cascades.start(session, g, text, now, originator, wait, voice)
        data = cascades.status(session, g, started)
        held = cascades.held_until(g, now)
        tz, quiet = g.timezone, f"{g.quiet_start}-{g.quiet_end}"
    dispatcher.dispatch(app.engine, get_gateway(app.settings), now)
    for warning in warnings:
        click.echo(f"Warning: {warning}", err=True)
    if held:
        click.echo(f"It is quiet hours in {group_name} ({quiet}), so the news is held until {local(held, tz)}; "
                   f"then it goes to {data['total']} people from {data['from']}. See: phonetree cascade status {group_name}")
    else:
        click.echo(f"News is on its way to {data['total']} people from {data['from']}; "
                   f"see: phonetree cascade status {group_name}")


@cascade.command("status")
@group_argument
@json_option()
@pass_app
def cascade_status(app: App, group_name: str, as_json: bool) -> None:
    """Who the latest news has reached so far.

    \b
    Example:
      phonetree cascade status Oakfield
    """
    from phonetree import cascades

    with app.session() as session:
        g = directory.get_group(session, group_name)
        data = cascades.status(session, g, cascades.latest(session, g))
        tz = g.timezone
    if as_json:
        emit_json(data)
        return
    data = safe_data(data)
    click.echo(f"News from {data['from']}, started {local_iso(data['started_at'], tz)}: "
               f"{data['reached']} of {data['total']} reached ({data['state']}).")
    for p in data["people"]:
        how = (f"reached via {p['by']} at {local_iso(p['reached_at'], tz, zone=False)}" if p["reached"]
               else f"waiting for {p['by']}")
        extra = f"; passing on: {p['passing_on']}" if p["passing_on"] else ""
        click.echo(f"  {'+' if p['reached'] else '-'} {p['name']:<20} {how}{extra}")
