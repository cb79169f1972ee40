"""What the service has done, for people to read: outbox, status, audit, report."""
from __future__ import annotations

from typing import Any

import click

from cli.app import App, cli, emit_json, pass_app
from cli.options import group_argument, json_option
from phonetree import clock, directory, status as status_view
from phonetree.display_text import safe_data
from phonetree.local_times import local_iso
from phonetree.phones import mask, mask_numbers_in


@cli.command()
@click.option("--group", "group_name", help="Only this group's messages.")
@click.option("--last", type=click.IntRange(min=1), help="Only the last N messages (N at least 1).")
@click.option("--show-numbers", is_flag=True, help="Show whole phone numbers, in texts too (masked by default).")
@json_option("Print a JSON list, oldest first (numbers in full).")
@pass_app
def outbox(app: App, group_name: str | None, last: int | None, show_numbers: bool, as_json: bool) -> None:
    """Messages the service has sent or recorded, oldest first.

    \b
    Example:
      phonetree outbox --json
    """
    with app.session() as session:
        g = directory.get_group(session, group_name) if group_name else None
        data = status_view.outbox(session, g, last)
    if as_json:
        emit_json(data)
        return
    if not data:
        click.echo("The outbox is empty.")
    for m in safe_data(data):
        # Local time of the message's group, with its zone (GMT, BST): queued, and sent if it has been.
        tz = m["timezone"] or "UTC"
        when = local_iso(m["created_at"], tz)
        if m["sent_at"]:
            same_day = m["sent_at"][:10] == m["created_at"][:10]
            when += f", sent {local_iso(m['sent_at'], tz, date=not same_day)}"
        to, body = (m["to"], m["body"]) if show_numbers else (mask(m["to"]), mask_numbers_in(m["body"]))
        click.echo(f"{when}  {m['kind']:<12} {m['channel']:<5} "
                   f"to {m['name'] or '?'} ({to}) [{m['state']}]: {body}")


@cli.command()
@group_argument
@json_option()
@pass_app
def status(app: App, group_name: str, as_json: bool) -> None:
    """What is open now: check-ins awaiting a reply, escalations, alerts, replies to read.

    \b
    Example:
      phonetree status Oakfield
    """
    with app.session() as session:
        data = status_view.group_status(session, directory.get_group(session, group_name), clock.now())
    if as_json:
        emit_json(data)
        return
    click.echo(render_status(safe_data(data)))


def render_status(data: dict[str, Any]) -> str:
    lines = [f"{data['group']} ({data['timezone']})"]
    if data.get("provider"):
        p = data["provider"]
        lines.append(f"The SMS and call provider has been failing since {p['failing_since_local']} "
                     f"({p['failures']} failed tries; last: {p['last_error']}). {p['waiting']} message(s) "
                     "for this group are waiting and go as soon as it is back: nobody has answered them.")
    if not data["open"]:
        lines.append("Nothing open: every check-in so far is answered or resolved.")
    for item in data["open"]:
        asked = ", ".join(f"{a['name']} ({a['state']})" for a in item["asked"]) or "nobody yet"
        flag = "URGENT " if item["urgent"] else ""
        when = (f"asked for a call {item['asked_for_call_local']}" if item["asked_for_call"]
                else f"due {item['due_local']}")
        lines.append(f"  {flag}{item['member']}: {item['state']} ({when}); asked: {asked}"
                     + (f"; {item['note']}" if item["note"] else ""))
    if data["replies_to_read"]:
        lines.append("Replies to read:")
        lines += [f"  {r['member']} at {local_iso(r['received_at'], data['timezone'])}: {r['text']}"
                  for r in data["replies_to_read"]]
    if data["missed_while_down"]:
        lines.append("Not sent while the service was down (please check on them): "
                     + ", ".join(f"{m['member']} {m['due_local']}" for m in data["missed_while_down"]))
    if data["upcoming"]:
        lines.append("Next 24 hours: " + ", ".join(f"{u['member']} {u['due_local']}" for u in data["upcoming"]))
    if data["delivery_problems"]:
        lines.append("Messages that could not be delivered:")
        lines += [f"  {p['kind']} to {p['member'] or '?'} at {local_iso(p['at'], data['timezone'])}: {p['error']}"
                  for p in data["delivery_problems"]]
    for key, label in (("paused", "Paused"), ("opted_out", "Opted out"), ("phone_problems", "Phone problems")):
        if data[key]:
            lines.append(f"{label}: " + ", ".join(x if isinstance(x, str) else " ".join(map(str, x.values()))
                                                 for x in data[key]))
    return "\n".join(lines)


@cli.command()
@group_argument
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 3650), help="How far back.")
@json_option()
@pass_app
def audit(app: App, group_name: str, days: int, as_json: bool) -> None:
    """The record of changes organisers made to a group (members, plans, rotas, wording).

    \b
    Example:
      phonetree audit Oakfield --days 7
    """
    from phonetree.events import changes

    with app.session() as session:
        g = directory.get_group(session, group_name)
        data = changes(session, g.id, clock.now(), days)
    if as_json:
        emit_json(data)
        return
    if data:
        click.echo(f"Times are {g.timezone} local time.")
    for row in safe_data(data):
        click.echo(f"{local_iso(row['at'], g.timezone)}  {row['kind']:<18} {row['member'] or '':<12} "
                   f"{row['detail'] or ''}")


@cli.command()
@group_argument
@click.option("--weeks", default=8, show_default=True, type=click.IntRange(1, 260), help="How many weeks.")
@click.option("--format", "fmt", type=click.Choice(["text", "csv", "html"]), default="text", show_default=True)
@pass_app
def report(app: App, group_name: str, weeks: int, fmt: str) -> None:
    """Counts a funder or steering group can see, week by week: no names, numbers or texts.

    \b
    Example:
      phonetree report Oakfield --weeks 12 --format html > report.html
    """
    from phonetree import report_rendering, reports

    with app.session() as session:
        data = reports.weekly_report(session, directory.get_group(session, group_name), clock.now(), weeks)
    click.echo(report_rendering.render(data, fmt), nl=False)
