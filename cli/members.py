"""`phonetree member ...`: add, import, list, pause, resume, correct and forget members."""
from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Any

import click

from cli.app import App, cli, emit_json, pass_app
from cli.options import group_argument, json_option
from phonetree import clock, directory, importer
from phonetree.display_text import safe, safe_data
from phonetree.errors import PhonetreeError
from phonetree.phones import mask


PROGRESS_FROM = 50  # rows: a long import shows a progress bar


@cli.group()
def member() -> None:
    """Add, import, list and pause members.

    \b
    Example:
      phonetree member add Oakfield Vera --phone "01522 500001" --role carer
    """


def member_json(m: Any, show_numbers: bool = False) -> dict[str, Any]:
    return {"name": m.name, "phone": m.phone if show_numbers else mask(m.phone), "channel": m.channel,
            "roles": m.role_list, "language": m.language, "paused_until": m.paused_until.isoformat() if m.paused_until else None,
            "opted_out": m.opted_out, "phone_problem": m.phone_problem}


@member.command("add")
@group_argument
@click.argument("name")
@click.option("--phone", required=True, help="UK forms are fine: 07911 100001, +44 (0)7911 100001.")
@click.option("--channel", type=click.Choice(["sms", "voice"]), help="How check-ins reach them "
              "(default: the group's; a landline is always voice).")
@click.option("--role", "roles", multiple=True, type=click.Choice(list(directory.ROLES)),
              help="peer, carer or organiser; repeat for several. Default peer.")
@click.option("--language", default="en", show_default=True,
              help="Their language (e.g. cy): texts use the group's wording in it where written.")
@click.option("--shared", is_flag=True, help="Allow a number another member of the group has (a shared phone).")
@json_option("Print the member as JSON.")
@pass_app
def member_add(app: App, group_name: str, name: str, phone: str, channel: str | None,
               roles: tuple[str, ...], language: str, shared: bool, as_json: bool) -> None:
    """Add a member. Use a first name or a chosen name only.

    \b
    Example:
      phonetree member add Oakfield Jo --phone "07911 100002" --role peer --role organiser
    """
    with app.session() as session:
        g = directory.get_group(session, group_name)
        added, note = directory.add_member(session, g, name, phone, channel, roles, language, shared)
        elsewhere = directory.in_another_group(session, g, added.phone)
        data = member_json(added)
    if elsewhere:
        click.echo(f"Warning: {elsewhere}", err=True)
    if as_json:
        emit_json(data)
        return
    click.echo(f"Added {data['name']} to {group_name} ({data['channel']}, {', '.join(data['roles'])}).")
    if note:
        click.echo(f"Note: {note}")


@member.command("list")
@group_argument
@click.option("--show-numbers", is_flag=True, help="Show whole phone numbers (masked by default).")
@json_option()
@pass_app
def member_list(app: App, group_name: str, show_numbers: bool, as_json: bool) -> None:
    """List a group's members. Numbers are masked unless you ask.

    \b
    Example:
      phonetree member list Oakfield --show-numbers
    """
    with app.session() as session:
        data = [member_json(m, show_numbers) for m in directory.list_members(
            session, directory.get_group(session, group_name))]
    if as_json:
        emit_json(data)
        return
    for m in safe_data(data):
        flags = [f"paused to {m['paused_until']}"] if m["paused_until"] else []
        flags += ["opted out"] if m["opted_out"] else []
        flags += [m["phone_problem"]] if m["phone_problem"] else []
        click.echo(f"{m['name']:<20} {m['phone']:<16} {m['channel']:<6} {','.join(m['roles']):<18} "
                   f"{'; '.join(flags)}".rstrip())


@member.command("import")
@group_argument
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--dry-run", is_flag=True, help="Show what would be added and what is rejected; change nothing.")
@click.option("--skip-invalid", is_flag=True, help="Add the good rows even if some are rejected.")
@pass_app
def member_import(app: App, group_name: str, file: Path, dry_run: bool, skip_invalid: bool) -> None:
    """Import members from a CSV: a name,phone sheet (an optional role column: peer, carer,
    organiser), or a Google Contacts or Outlook export.

    Every row is checked first; if any is rejected nothing is added unless --skip-invalid.

    \b
    Example:
      phonetree member import Oakfield contacts.csv --dry-run
    """
    with app.session() as session:
        g = directory.get_group(session, group_name)
        plan = importer.plan_import(session, g, file)
        if dry_run:
            for row in plan.good:
                click.echo(safe(f"would add: {row.name} ({row.channel}, {mask(row.phone)})"))
        for line, what, why in plan.rejected:
            click.echo(safe(f"rejected line {line}: {what}: {why}"), err=True)
        for line, who, what in plan.flagged:
            click.echo(safe(f"Warning: line {line}: {who}: {what}."), err=True)
        if dry_run:
            click.echo(f"Dry run: {len(plan.good)} would be added, {len(plan.rejected)} rejected.")
            return
        if plan.rejected and not skip_invalid:
            raise PhonetreeError(f"{len(plan.rejected)} row(s) rejected, so nothing was added; fix them, "
                                 "or add the rest with --skip-invalid.")
        if len(plan.good) >= PROGRESS_FROM:
            with click.progressbar(length=len(plan.good), label="Adding members", file=sys.stderr) as bar:
                importer.apply_import(session, g, plan, bar.update)
        else:
            importer.apply_import(session, g, plan)
    click.echo(f"Added {len(plan.good)} member(s) to {group_name}"
               + (f"; {len(plan.rejected)} row(s) skipped." if plan.rejected else "."))


@member.command("pause")
@group_argument
@click.argument("name")
@click.option("--until", "until", required=True, help="Last day with no check-in, YYYY-MM-DD.")
@pass_app
def member_pause(app: App, group_name: str, name: str, until: str) -> None:
    """Pause a member's check-ins up to and including a date (they can text BACK to resume).

    \b
    Example:
      phonetree member pause Oakfield Vera --until 2026-12-01
    """
    try:
        last_day = date.fromisoformat(until)
    except ValueError:
        raise PhonetreeError(f"{until!r} is not a date; write it as YYYY-MM-DD, e.g. 2026-12-01.")
    with app.session() as session:
        g = directory.get_group(session, group_name)
        m = directory.get_member(session, g, name)
        if last_day < clock.now().date():
            raise PhonetreeError(f"{until} is in the past; give the last day of the pause.")
        directory.pause_member(session, m, last_day)
    click.echo(f"Paused {m.name}'s check-ins until {last_day:%a %d %b %Y} (inclusive).")


@member.command("resume")
@group_argument
@click.argument("name")
@pass_app
def member_resume(app: App, group_name: str, name: str) -> None:
    """End a pause now.

    \b
    Example:
      phonetree member resume Oakfield Vera
    """
    with app.session() as session:
        m = directory.get_member(session, directory.get_group(session, group_name), name)
        directory.pause_member(session, m, None)
    click.echo(f"{m.name}'s check-ins resume.")


@member.command("set")
@group_argument
@click.argument("name")
@click.option("--phone", help="A new number: every message not yet sent goes to it; history stays.")
@click.option("--channel", type=click.Choice(["sms", "voice"]), help="How check-ins reach them.")
@click.option("--role", "roles", multiple=True, type=click.Choice(list(directory.ROLES)),
              help="Their roles from now on (replaces the old ones); repeat for several.")
@click.option("--name", "new_name", help="A new first or chosen name.")
@click.option("--language", help="Their language, e.g. cy.")
@click.option("--shared", is_flag=True, help="Allow a number another member of the group has (a shared phone).")
@pass_app
def member_set(app: App, group_name: str, name: str, phone: str | None, channel: str | None,
               roles: tuple[str, ...], new_name: str | None, language: str | None, shared: bool) -> None:
    """Correct a member: number, channel, roles, name or language.

    \b
    Example:
      phonetree member set Oakfield Vera --phone "07911 100009"
      phonetree member set Oakfield Jo --role peer --role organiser
    """
    with app.session() as session:
        g = directory.get_group(session, group_name)
        m = directory.get_member(session, g, name)
        changes, notes = directory.update_member(session, g, m, phone=phone, channel=channel, roles=roles,
                                                 name=new_name, language=language, shared=shared)
        data = member_json(m)
    click.echo(f"{data['name']}: " + "; ".join(
        f"phone now {data['phone']}" if c == "phone" else c for c in changes) + ".")
    for note in notes:
        click.echo(f"Warning: {note}", err=True)


@member.command("forget")
@group_argument
@click.argument("name")
@click.option("--yes", is_flag=True, help="Confirm: this cannot be undone.")
@pass_app
def member_forget(app: App, group_name: str, name: str, yes: bool) -> None:
    """Erase a member and their history (check-ins, replies, messages). Anything they were
    asked to do for others is passed on first.

    \b
    Example:
      phonetree member forget Oakfield Vera --yes
    """
    from phonetree import privacy

    with app.session() as session:
        m = directory.get_member(session, directory.get_group(session, group_name), name)
        if not yes:
            raise PhonetreeError(f"this erases {m.name} and all their history for good; add --yes to confirm.")
        passed = privacy.forget(session, m, clock.now())
    from phonetree.db import checkpoint

    checkpoint(app.engine)  # the erased rows' old pages out of the -wal file
    click.echo(f"Forgot {name}." + (f" {passed} task(s) they held were passed on." if passed else ""))
