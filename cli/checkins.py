"""`phonetree checkin ...` (add, list, set, remove) and `phonetree resolve`."""
from __future__ import annotations

from typing import Any

import click

from cli.app import App, cli, emit_json, pass_app
from cli.options import group_argument, json_option, member_argument
from cli.params import DURATION, DURATION_OR_OFF, OFF, TIME_OF_DAY
from phonetree import clock, directory, plans
from phonetree.display_text import safe_data
from phonetree.durations import format_duration
from phonetree.local_times import local, local_iso


@cli.group()
def checkin() -> None:
    """Set up daily check-ins.

    \b
    Example:
      phonetree checkin add Oakfield Vera --at 10:00 --escalate-to Jo,Sam
    """


@checkin.command("add")
@group_argument
@member_argument
@click.option("--at", "at", type=TIME_OF_DAY, required=True, help="Local time, HH:MM.")
@click.option("--days", default="daily", show_default=True, help="daily, weekdays, or e.g. mon,wed,fri.")
@click.option("--window", type=DURATION, help="How long to wait for a reply, e.g. 30m (default: the group's).")
@click.option("--escalate-to", "escalate_to", required=True, help="Who to ask to ring if there's no reply, "
              "in order: NAME[,NAME...].")
@click.option("--escalation-wait", "escalation_wait", type=DURATION, help="How long each person gets before the next is "
              "asked, e.g. 20m (default: the group's).")
@click.option("--reminder", type=DURATION_OR_OFF, help="Send a reminder this long after the prompt, e.g. 15m, or 'off' "
              "(default: half-way through the window).")
@json_option("Print the plan as JSON.")
@pass_app
def checkin_add(app: App, group_name: str, member_name: str, at: str, days: str, window: int | None,
                escalate_to: str, escalation_wait: int | None, reminder: int | None, as_json: bool) -> None:
    """Add a daily check-in for a member, with the people to ask if they don't reply.

    \b
    Example:
      phonetree checkin add Oakfield Vera --at 10:00 --days weekdays --window 1h \\
          --escalate-to Jo,Sam --escalation-wait 20m
    """
    no_reminder = reminder == OFF
    with app.session() as session:
        g = directory.get_group(session, group_name)
        m = directory.get_member(session, g, member_name)
        plan, warnings = plans.add(
            session, g, m, at, days, [n.strip() for n in escalate_to.split(",") if n.strip()],
            window_s=window, escalation_wait_s=escalation_wait,
            reminder_s=None if no_reminder else reminder,
            reminder=False if no_reminder else None,
        )
        data = plan_json(plan)
    if as_json:
        emit_json(data)
    else:
        click.echo(f"{data['member']} will get a check-in {data['days']} at {data['at']} ({g.timezone}); "
                   f"window {data['window']}" + (f", reminder after {data['reminder']}" if data["reminder"] else "")
                   + f"; if no reply: {' then '.join(data['escalate_to'])}, {data['escalation_wait']} each, "
                   "then the organisers.")
    for warning in warnings:
        click.echo(f"Warning: {warning}", err=True)


def plan_json(plan: Any) -> dict[str, Any]:
    return {"member": plan.member.name, "at": plan.at_time, "days": plan.days,
            "window": format_duration(plan.window_s), "escalation_wait": format_duration(plan.escalation_wait_s),
            "reminder": format_duration(plan.reminder_s) if plan.reminder_s else None,
            "escalate_to": [c.member.name for c in plan.contacts], "active": plan.active}


@checkin.command("list")
@group_argument
@json_option("Print JSON (times in UTC, ISO 8601).")
@pass_app
def checkin_list(app: App, group_name: str, as_json: bool) -> None:
    """List a group's check-ins: member, time, days, window, contacts, and when the next goes
    (in the group's local time).

    \b
    Example:
      phonetree checkin list Oakfield
    """
    from phonetree.plans import plans_for_group

    now = clock.now()
    with app.session() as session:
        g = directory.get_group(session, group_name)
        tz = g.timezone
        data = []
        for p in plans_for_group(session, g):
            due = plans.next_due(session, g, p, now)
            data.append(plan_json(p) | {"next_due": due.isoformat() if due else None})
    if as_json:
        emit_json(data)
        return
    if not data:
        click.echo(f"No check-ins in {group_name} yet. Add one: phonetree checkin add {group_name} NAME "
                   "--at HH:MM --escalate-to NAME")
        return
    click.echo(f"Times are {tz} local time.")
    for p in safe_data(data):
        click.echo(f"{p['member']:<20} {p['at']}  {p['days']:<12} window {p['window']:<6} "
                   f"then {', '.join(p['escalate_to'])}; next {local_iso(p['next_due'], tz)}")


@checkin.command("set")
@group_argument
@member_argument
@click.option("--at", "at", type=TIME_OF_DAY, help="The new time, HH:MM; if the member has several check-ins, the one "
              "to change (then give the new time with --to).")
@click.option("--to", "to", type=TIME_OF_DAY, help="The new time, HH:MM, for the check-in picked with --at.")
@click.option("--days", help="daily, weekdays, or e.g. mon,wed,fri.")
@click.option("--window", type=DURATION, help="How long to wait for a reply, e.g. 45m.")
@click.option("--escalate-to", "escalate_to", help="Who to ask if there's no reply, in order: NAME[,NAME...].")
@click.option("--escalation-wait", "escalation_wait", type=DURATION, help="How long each person gets, e.g. 20m.")
@pass_app
def checkin_set(app: App, group_name: str, member_name: str, at: str | None, to: str | None, days: str | None,
                window: int | None, escalate_to: str | None, escalation_wait: int | None) -> None:
    """Change a check-in. It applies from the next one not yet sent: one already sent today
    is not sent again.

    \b
    Example:
      phonetree checkin set Oakfield Vera --at 11:00
      phonetree checkin set Oakfield Vera --at 09:00 --to 09:30 --escalate-to Sam,Jo
    """
    now = clock.now()
    with app.session() as session:
        g = directory.get_group(session, group_name)
        m = directory.get_member(session, g, member_name)
        plan, changes = plans.change(
            session, g, m, now, at=at, to=to, days=days, window_s=window,
            contacts=[n.strip() for n in escalate_to.split(",") if n.strip()] if escalate_to is not None else None,
            escalation_wait_s=escalation_wait)
        due = plans.next_due(session, g, plan, now)
        tz = g.timezone
    click.echo(f"{m.name}'s check-in: " + "; ".join(changes) + f". Next: {local(due, tz)}.")


@checkin.command("remove")
@group_argument
@member_argument
@click.option("--at", "at", type=TIME_OF_DAY, help="Which one, HH:MM, if the member has several.")
@pass_app
def checkin_remove(app: App, group_name: str, member_name: str, at: str | None) -> None:
    """Stop a check-in: nothing more is sent for it. One already under way runs to its end,
    so nobody is left mid-escalation; past ones stay in the record.

    \b
    Example:
      phonetree checkin remove Oakfield Vera --at 18:00
    """
    with app.session() as session:
        g = directory.get_group(session, group_name)
        m = directory.get_member(session, g, member_name)
        plan, in_flight = plans.remove(session, g, m, clock.now(), at)
        what = f"{plan.days} at {plan.at_time}"
    click.echo(f"Removed {m.name}'s check-in ({what})."
               + (" The one under way now carries on until it is answered or resolved." if in_flight else ""))


@cli.command()
@group_argument
@member_argument
@click.option("--note", default="resolved by an organiser", help="What was done (kept in the record).")
@pass_app
def resolve(app: App, group_name: str, member_name: str, note: str) -> None:
    """Close a member's open check-in once a person has acted (stands everyone down).

    \b
    Example:
      phonetree resolve Oakfield Vera --note "spoke to her daughter"
    """
    from phonetree.checkins import resolve_by_organiser

    with app.session() as session:
        m = directory.get_member(session, directory.get_group(session, group_name), member_name)
        told = resolve_by_organiser(session, m, clock.now(), note)
    click.echo(f"Closed {m.name}'s open check-in; {told} person(s) told they needn't ring.")
