"""phonetree's command line: parse, call one domain function, print. No logic lives here."""
from __future__ import annotations

import logging
import sys
from datetime import date
from pathlib import Path
from typing import Any, Callable, Iterator

import click
from contextlib import contextmanager
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from phonetree import clock, directory, importer, inbound, plans, redact, status as status_view
from phonetree.local_times import local, local_iso
from phonetree.display_text import safe, safe_data, safe_json
from phonetree.config import Settings
from phonetree.db import get_engine, session_scope
from phonetree.errors import PhonetreeError
from phonetree.gateways import get_gateway
from phonetree.phones import mask, mask_numbers_in
from phonetree.presets import PRESETS
from phonetree.durations import format_duration, parse_duration


class App:
    """What every command needs: settings, and the database opened on first use."""

    def __init__(self, settings: Settings, verbose: bool = False) -> None:
        self.settings = settings
        self.verbose = verbose
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            logging.getLogger("phonetree").info("database %s", redact.url(self.settings.database_url))
            try:
                self._engine = get_engine(self.settings.database_url, self.settings.database_key)
            except PhonetreeError:
                raise
            except Exception as error:  # noqa: BLE001 - shown as one line, not a traceback
                raise PhonetreeError(f"can't open the database {redact.url(self.settings.database_url)!r}: "
                                     f"{redact.text(str(error).splitlines()[0])}")
        return self._engine

    @contextmanager
    def session(self) -> Iterator[Session]:
        with session_scope(self.engine) as session:
            yield session


def one_line(message: str) -> str:
    """An error is one line whatever was typed: a newline in an argument is shown escaped."""
    return message.replace("\r", "\\r").replace("\n", "\\n")


class PhonetreeGroup(click.Group):
    """Every error, ours or click's, is one line on stderr starting `Error:`."""

    def main(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs["standalone_mode"] = False
        try:
            return super().main(*args, **kwargs)
        except click.exceptions.Exit as done:
            sys.exit(done.exit_code)
        except click.Abort:
            click.echo("Error: stopped.", err=True)
            sys.exit(1)
        except click.UsageError as error:
            hint = f" (see: phonetree {error.ctx.command_path.partition(' ')[2]} --help)".replace("  ", " ") \
                if error.ctx else ""
            click.echo(f"Error: {one_line(error.format_message())}{hint}", err=True)
            sys.exit(2)
        except click.ClickException as error:
            click.echo(f"Error: {one_line(safe(redact.text(error.format_message())))}", err=True)
            sys.exit(error.exit_code)
        except PhonetreeError as error:
            click.echo(f"Error: {one_line(safe(redact.text(str(error))))}", err=True)
            sys.exit(1)


def fails_cleanly(function: Callable[..., Any]) -> Callable[..., Any]:
    """Domain errors become click errors; the session has already rolled back."""
    import functools

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except PhonetreeError as error:
            raise click.ClickException(str(error)) from None

    return wrapper


def emit_json(data: Any) -> None:
    # Values exactly as stored, but no raw control or bidi character (see display_text.safe_json).
    click.echo(safe_json(data, indent=2))


def duration_option(text: str | None) -> int | None:
    return parse_duration(text) if text is not None else None


pass_app = click.make_pass_decorator(App)
PROGRESS_FROM = 50  # rows: a long import shows a progress bar


@click.group(cls=PhonetreeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", "database_url", metavar="URL", help="Database URL (env PHONETREE_DATABASE_URL; "
              "default sqlite:///phonetree.db).")
@click.option("--gateway", metavar="NAME", help="outbox (record only, the default) or twilio "
              "(env PHONETREE_GATEWAY).")
@click.option("-v", "--verbose", is_flag=True, help="Log what the service does.")
@click.version_option("0.1.0", prog_name="phonetree")
@click.pass_context
def cli(ctx: click.Context, database_url: str | None, gateway: str | None, verbose: bool) -> None:
    """phonetree: daily check-ins and telephone trees for peer-support groups, by SMS and voice.

    \b
    Example:
      phonetree group add Oakfield --timezone Europe/London --kind grandparents
      phonetree member add Oakfield Vera --phone "01522 500001"
      phonetree member add Oakfield Jo --phone "07911 100002" --role organiser
      phonetree checkin add Oakfield Vera --at 10:00 --escalate-to Jo
      phonetree run
    """
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    redact.install_on_root()
    ctx.obj = App(Settings.from_env(database_url=database_url, gateway=gateway), verbose)


# ---------------------------------------------------------------- groups


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
@click.option("--json", "as_json", is_flag=True, help="Print the group as JSON.")
@pass_app
@fails_cleanly
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
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
@fails_cleanly
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
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
@fails_cleanly
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
@click.option("--window", help="Default reply window for new check-ins, e.g. 45m.")
@click.option("--escalation-wait", "escalation_wait", help="Default wait per contact, e.g. 20m.")
@click.option("--reminder/--no-reminder", default=None, help="Remind half-way through the window.")
@click.option("--channel", type=click.Choice(["sms", "voice"]), help="Default channel for new members.")
@pass_app
@fails_cleanly
def group_set(app: App, name: str, quiet: str | None, window: str | None, escalation_wait: str | None,
              reminder: bool | None, channel: str | None) -> None:
    """Change a group's defaults (its kind's preset is only the start).

    \b
    Example:
      phonetree group set Oakfield --quiet 20:30-09:00 --window 45m
    """
    with app.session() as session:
        changes = directory.update_group(
            session, directory.get_group(session, name), quiet=quiet, window_s=duration_option(window),
            escalation_wait_s=duration_option(escalation_wait), reminder=reminder, channel=channel)
    click.echo(f"{name} now has: " + ", ".join(changes) + ".")


# ---------------------------------------------------------------- members


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
@click.argument("group_name", metavar="GROUP")
@click.argument("name")
@click.option("--phone", required=True, help="UK forms are fine: 07911 100001, +44 (0)7911 100001.")
@click.option("--channel", type=click.Choice(["sms", "voice"]), help="How check-ins reach them "
              "(default: the group's; a landline is always voice).")
@click.option("--role", "roles", multiple=True, type=click.Choice(list(directory.ROLES)),
              help="peer, carer or organiser; repeat for several. Default peer.")
@click.option("--language", default="en", show_default=True,
              help="Their language (e.g. cy): texts use the group's wording in it where written.")
@click.option("--shared", is_flag=True, help="Allow a number another member of the group has (a shared phone).")
@click.option("--json", "as_json", is_flag=True, help="Print the member as JSON.")
@pass_app
@fails_cleanly
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
@click.argument("group_name", metavar="GROUP")
@click.option("--show-numbers", is_flag=True, help="Show whole phone numbers (masked by default).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
@fails_cleanly
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
@click.argument("group_name", metavar="GROUP")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--dry-run", is_flag=True, help="Show what would be added and what is rejected; change nothing.")
@click.option("--skip-invalid", is_flag=True, help="Add the good rows even if some are rejected.")
@pass_app
@fails_cleanly
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
@click.argument("group_name", metavar="GROUP")
@click.argument("name")
@click.option("--until", "until", required=True, help="Last day with no check-in, YYYY-MM-DD.")
@pass_app
@fails_cleanly
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
@click.argument("group_name", metavar="GROUP")
@click.argument("name")
@pass_app
@fails_cleanly
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


# ---------------------------------------------------------------- check-ins


@cli.group()
def checkin() -> None:
    """Set up daily check-ins.

    \b
    Example:
      phonetree checkin add Oakfield Vera --at 10:00 --escalate-to Jo,Sam
    """


@checkin.command("add")
@click.argument("group_name", metavar="GROUP")
@click.argument("member_name", metavar="MEMBER")
@click.option("--at", "at", required=True, help="Local time, HH:MM.")
@click.option("--days", default="daily", show_default=True, help="daily, weekdays, or e.g. mon,wed,fri.")
@click.option("--window", help="How long to wait for a reply, e.g. 30m (default: the group's).")
@click.option("--escalate-to", "escalate_to", required=True, help="Who to ask to ring if there's no reply, "
              "in order: NAME[,NAME...].")
@click.option("--escalation-wait", "escalation_wait", help="How long each person gets before the next is "
              "asked, e.g. 20m (default: the group's).")
@click.option("--reminder", help="Send a reminder this long after the prompt, e.g. 15m, or 'off' "
              "(default: half-way through the window).")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@pass_app
@fails_cleanly
def checkin_add(app: App, group_name: str, member_name: str, at: str, days: str, window: str | None,
                escalate_to: str, escalation_wait: str | None, reminder: str | None, as_json: bool) -> None:
    """Add a daily check-in for a member, with the people to ask if they don't reply.

    \b
    Example:
      phonetree checkin add Oakfield Vera --at 10:00 --days weekdays --window 1h \\
          --escalate-to Jo,Sam --escalation-wait 20m
    """
    no_reminder = reminder is not None and reminder.strip().lower() in ("off", "none", "no")
    with app.session() as session:
        g = directory.get_group(session, group_name)
        m = directory.get_member(session, g, member_name)
        plan, warnings = plans.add(
            session, g, m, at, days, [n.strip() for n in escalate_to.split(",") if n.strip()],
            window_s=duration_option(window), escalation_wait_s=duration_option(escalation_wait),
            reminder_s=None if no_reminder else duration_option(reminder),
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


# ---------------------------------------------------------------- rotas and cascades


@cli.group()
def rota() -> None:
    """Peer call rotas: who rings whom, round by round.

    \b
    Example:
      phonetree rota add Oakfield weekly-calls --kind pairs --on tue --at 18:00
    """


@rota.command("add")
@click.argument("group_name", metavar="GROUP")
@click.argument("name", metavar="ROTA")
@click.option("--kind", type=click.Choice(["pairs", "ring"]), required=True,
              help="pairs: partners rotate so everyone talks to everyone; ring: each rings the next.")
@click.option("--on", "on_day", required=True, help="The day of the first round: mon, tue, ...")
@click.option("--at", "at", required=True, help="Local time of the call prompts, HH:MM.")
@click.option("--members", help="Who takes part, in order: A,B,C (default: every peer).")
@click.option("--cadence", type=click.Choice(["weekly", "fortnightly", "daily"]), default="weekly",
              show_default=True, help="How often a round comes round.")
@click.option("--never-pair", "never_pair", multiple=True, metavar="A:B",
              help="Two members who must never be paired; repeat for more.")
@click.option("--confirm-within", "confirm_within", help="How long a caller has to reply DONE before the "
              "call passes to a backup, e.g. 2d (default 3d weekly, 6h daily).")
@pass_app
@fails_cleanly
def rota_add(app: App, group_name: str, name: str, kind: str, on_day: str, at: str, members: str | None,
             cadence: str, never_pair: tuple[str, ...], confirm_within: str | None) -> None:
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
                              cadence, avoid, duration_option(confirm_within))
        first = made.start_date
        count = len(made.members)
    click.echo(f"Rota {name}: {kind}, {cadence}, {count} members; first round {first:%a %d %b} at {made.at_time}.")


@rota.command("show")
@click.argument("group_name", metavar="GROUP")
@click.argument("name", metavar="ROTA")
@click.option("--weeks", default=4, show_default=True, type=click.IntRange(1, 104), help="How far ahead.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of rounds.")
@pass_app
@fails_cleanly
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
@click.argument("group_name", metavar="GROUP")
@click.argument("name", metavar="ROTA")
@click.option("--weeks", default=12, show_default=True, type=click.IntRange(1, 104), help="How far ahead.")
@pass_app
@fails_cleanly
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
@click.argument("group_name", metavar="GROUP")
@click.argument("name", metavar="ROTA")
@click.argument("member_name", metavar="MEMBER")
@pass_app
@fails_cleanly
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
@click.argument("group_name", metavar="GROUP")
@click.argument("name", metavar="ROTA")
@click.argument("member_name", metavar="MEMBER")
@pass_app
@fails_cleanly
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


@cli.group()
def cascade() -> None:
    """News down the telephone tree.

    \b
    Example:
      phonetree cascade start Oakfield "Thursday's meeting has moved; ring me for the venue"
    """


@cascade.command("tree")
@click.argument("group_name", metavar="GROUP")
@click.option("--branching", type=click.IntRange(1, 20), help="Build from member order, this many under each.")
@click.option("--set", "spec", help="Explicit: 'Margaret>Jo,Sam; Jo>Pat,Dot'.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
@fails_cleanly
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
@click.argument("group_name", metavar="GROUP")
@click.argument("text")
@click.option("--from", "originator", help="Who starts it (default: the first organiser).")
@click.option("--wait", help="How long each branch has to confirm before it is repaired (default 2h).")
@click.option("--voice", is_flag=True, help="Speak the news by phone call instead of texting it "
              "(for details like a venue).")
@pass_app
@fails_cleanly
def cascade_start(app: App, group_name: str, text: str, originator: str | None, wait: str | None,
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
        started, warnings = cascades.start(session, g, text, now, originator, duration_option(wait), voice)
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
@click.argument("group_name", metavar="GROUP")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
@fails_cleanly
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


# ---------------------------------------------------------------- wording, privacy, reports


@cli.group()
def template() -> None:
    """View, change and preview a group's texts and spoken lines.

    \b
    Example:
      phonetree template show Oakfield checkin
    """


@template.command("list")
@click.argument("group_name", metavar="GROUP")
@click.option("--channel", type=click.Choice(["sms", "voice"]), default="sms", show_default=True)
@click.option("--language", default="en", show_default=True, help="Which language's wording (e.g. cy).")
@pass_app
@fails_cleanly
def template_list(app: App, group_name: str, channel: str, language: str) -> None:
    """List the templates, with their segment counts and which the group has changed.

    \b
    Example:
      phonetree template list Oakfield --channel voice
    """
    from phonetree import templates

    with app.session() as session:
        g = directory.get_group(session, group_name)
        previews = [templates.preview(g, name, channel, language) for name in templates.all_names(channel)]
    for p in previews:
        size = f"{p.worst.segments} seg {p.worst.encoding}" if channel == "sms" else f"{len(p.sample)} chars"
        click.echo(f"{p.template:<20} {'own' if p.custom else 'default':<8} {size:<14} {safe(p.sample)}")


@template.command("show")
@click.argument("group_name", metavar="GROUP")
@click.argument("name", metavar="TEMPLATE")
@click.option("--channel", type=click.Choice(["sms", "voice"]), default="sms", show_default=True)
@click.option("--language", default="en", show_default=True, help="Which language's wording (e.g. cy).")
@pass_app
@fails_cleanly
def template_show(app: App, group_name: str, name: str, channel: str, language: str) -> None:
    """Show a template, a preview with sample names, and its SMS segment count.

    \b
    Example:
      phonetree template show Oakfield escalation
    """
    from phonetree import templates

    with app.session() as session:
        p = templates.preview(directory.get_group(session, group_name), name, channel, language)
    _print_preview(p)


def _print_preview(p: Any) -> None:
    click.echo(f"{p.channel} {p.template} ({'this group' if p.custom else 'default'}):")
    click.echo(f"  {safe(p.text)}")
    click.echo(f"Preview: {safe(p.sample)}")
    click.echo(f"{p.info.encoding}, {p.info.units} characters, {p.info.segments} segment(s); "
               f"with the longest names: {p.worst.segments} segment(s).")
    for warning in p.warnings:
        click.echo(f"Warning: {warning}", err=True)


@template.command("set")
@click.argument("group_name", metavar="GROUP")
@click.argument("name", metavar="TEMPLATE")
@click.argument("wording")
@click.option("--channel", type=click.Choice(["sms", "voice"]), default="sms", show_default=True)
@click.option("--language", default="en", show_default=True, help="Which language's wording (e.g. cy).")
@pass_app
@fails_cleanly
def template_set(app: App, group_name: str, name: str, wording: str, channel: str, language: str) -> None:
    """Change a template's wording for this group. Keep the {placeholders} it needs.

    \b
    Example:
      phonetree template set Oakfield checkin "Morning {name}! Reply OK if you're alright, or CALL for a chat."
    """
    from phonetree import templates

    with app.session() as session:
        g = directory.get_group(session, group_name)
        _, notes = templates.set_text(session, g, name, channel, wording, clock.now(), language)
        p = templates.preview(g, name, channel, language)
    _print_preview(p)
    for note in notes:
        if note not in p.warnings:
            click.echo(f"Note: {note}", err=True)


@template.command("reset")
@click.argument("group_name", metavar="GROUP")
@click.argument("name", metavar="TEMPLATE")
@click.option("--channel", type=click.Choice(["sms", "voice"]), default="sms", show_default=True)
@click.option("--language", default="en", show_default=True, help="Which language's wording (e.g. cy).")
@pass_app
@fails_cleanly
def template_reset(app: App, group_name: str, name: str, channel: str, language: str) -> None:
    """Go back to the default wording.

    \b
    Example:
      phonetree template reset Oakfield checkin
    """
    from phonetree import templates

    with app.session() as session:
        templates.reset(session, directory.get_group(session, group_name), name, channel, clock.now(), language)
    click.echo(f"{group_name} uses the default {channel} {name} again.")


@member.command("forget")
@click.argument("group_name", metavar="GROUP")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Confirm: this cannot be undone.")
@pass_app
@fails_cleanly
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


@cli.command()
@click.argument("group_name", metavar="GROUP")
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 3650), help="How far back.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
@fails_cleanly
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
@click.argument("group_name", metavar="GROUP")
@click.option("--weeks", default=8, show_default=True, type=click.IntRange(1, 260), help="How many weeks.")
@click.option("--format", "fmt", type=click.Choice(["text", "csv", "html"]), default="text", show_default=True)
@pass_app
@fails_cleanly
def report(app: App, group_name: str, weeks: int, fmt: str) -> None:
    """Counts a funder or steering group can see, week by week: no names, numbers or texts.

    \b
    Example:
      phonetree report Oakfield --weeks 12 --format html > report.html
    """
    from phonetree import reports

    with app.session() as session:
        data = reports.weekly_report(session, directory.get_group(session, group_name), clock.now(), weeks)
    click.echo(reports.render(data, fmt), nl=False)


@cli.group("db")
def db_group() -> None:
    """The database itself: encryption at rest (SQLite with SQLCipher).

    \b
    Example:
      PHONETREE_NEW_DATABASE_KEY=... phonetree db rekey
    """


@db_group.command("rekey")
@pass_app
@fails_cleanly
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


# ---------------------------------------------------------------- the service


@cli.command()
@click.option("--from", "sender", required=True, help="The sender's phone number.")
@click.argument("text")
@click.option("--json", "as_json", is_flag=True, help="Print what happened as JSON.")
@pass_app
@fails_cleanly
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
@click.option("--json", "as_json", is_flag=True, help="Print what was done as JSON.")
@pass_app
@fails_cleanly
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
@fails_cleanly
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
@click.option("--group", "group_name", help="Only this group's messages.")
@click.option("--last", type=click.IntRange(min=1), help="Only the last N messages (N at least 1).")
@click.option("--show-numbers", is_flag=True, help="Show whole phone numbers, in texts too (masked by default).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, oldest first (numbers in full).")
@pass_app
@fails_cleanly
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
@click.argument("group_name", metavar="GROUP")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
@fails_cleanly
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
@click.argument("group_name", metavar="GROUP")
@click.argument("member_name", metavar="MEMBER")
@click.option("--note", default="resolved by an organiser", help="What was done (kept in the record).")
@pass_app
@fails_cleanly
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


# ---------------------------------------------------------------- correcting mistakes
# (member set, checkin list/set/remove, rota list/remove, group remove: issue 12)


@member.command("set")
@click.argument("group_name", metavar="GROUP")
@click.argument("name")
@click.option("--phone", help="A new number: every message not yet sent goes to it; history stays.")
@click.option("--channel", type=click.Choice(["sms", "voice"]), help="How check-ins reach them.")
@click.option("--role", "roles", multiple=True, type=click.Choice(list(directory.ROLES)),
              help="Their roles from now on (replaces the old ones); repeat for several.")
@click.option("--name", "new_name", help="A new first or chosen name.")
@click.option("--language", help="Their language, e.g. cy.")
@click.option("--shared", is_flag=True, help="Allow a number another member of the group has (a shared phone).")
@pass_app
@fails_cleanly
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


@checkin.command("list")
@click.argument("group_name", metavar="GROUP")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (times in UTC, ISO 8601).")
@pass_app
@fails_cleanly
def checkin_list(app: App, group_name: str, as_json: bool) -> None:
    """List a group's check-ins: member, time, days, window, contacts, and when the next goes
    (in the group's local time).

    \b
    Example:
      phonetree checkin list Oakfield
    """
    from phonetree.checkins import plans_for_group

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
@click.argument("group_name", metavar="GROUP")
@click.argument("member_name", metavar="MEMBER")
@click.option("--at", "at", help="The new time, HH:MM; if the member has several check-ins, the one "
              "to change (then give the new time with --to).")
@click.option("--to", "to", help="The new time, HH:MM, for the check-in picked with --at.")
@click.option("--days", help="daily, weekdays, or e.g. mon,wed,fri.")
@click.option("--window", help="How long to wait for a reply, e.g. 45m.")
@click.option("--escalate-to", "escalate_to", help="Who to ask if there's no reply, in order: NAME[,NAME...].")
@click.option("--escalation-wait", "escalation_wait", help="How long each person gets, e.g. 20m.")
@pass_app
@fails_cleanly
def checkin_set(app: App, group_name: str, member_name: str, at: str | None, to: str | None, days: str | None,
                window: str | None, escalate_to: str | None, escalation_wait: str | None) -> None:
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
            session, g, m, now, at=at, to=to, days=days, window_s=duration_option(window),
            contacts=[n.strip() for n in escalate_to.split(",") if n.strip()] if escalate_to is not None else None,
            escalation_wait_s=duration_option(escalation_wait))
        due = plans.next_due(session, g, plan, now)
        tz = g.timezone
    click.echo(f"{m.name}'s check-in: " + "; ".join(changes) + f". Next: {local(due, tz)}.")


@checkin.command("remove")
@click.argument("group_name", metavar="GROUP")
@click.argument("member_name", metavar="MEMBER")
@click.option("--at", "at", help="Which one, HH:MM, if the member has several.")
@pass_app
@fails_cleanly
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


@rota.command("list")
@click.argument("group_name", metavar="GROUP")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (times in UTC, ISO 8601).")
@pass_app
@fails_cleanly
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
@click.argument("group_name", metavar="GROUP")
@click.argument("name", metavar="ROTA")
@pass_app
@fails_cleanly
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


@group.command("remove")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Confirm: this erases the group and its history for good.")
@pass_app
@fails_cleanly
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


def main() -> None:
    cli(prog_name="phonetree")


if __name__ == "__main__":
    main()
