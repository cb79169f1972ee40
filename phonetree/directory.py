"""Groups and members: adding, finding, pausing. Names are first or chosen names only."""
from __future__ import annotations

import re
from datetime import date, datetime
from difflib import get_close_matches

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from phonetree import clock, events, texts
from phonetree.display_text import has_hidden, safe
from phonetree.local_times import local_date
from phonetree.errors import PhonetreeError
from phonetree.messages import own_wording
from phonetree.models import Group, Member, Message
from phonetree.phones import is_landline, parse_phone
from phonetree.presets import PRESETS
from phonetree.texts import MAX_NAME
from phonetree.zones import parse_timezone

ROLES = ("peer", "carer", "organiser")
# A reply window longer than this would run into the next day's check-in.
MAX_WINDOW_S = 24 * 3600
CHANNELS = ("sms", "voice")


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


def clean_name(name: str, what: str = "name") -> str:
    cleaned = " ".join((name or "").split())
    if not cleaned:
        raise PhonetreeError(f"the {what} can't be empty.")
    odd = has_hidden(cleaned)
    if odd is not None:
        # Control, bidi and zero-width characters would act on whoever's screen shows the name
        # (or make two names look alike): refused here, escaped wherever an old one is shown.
        raise PhonetreeError(f"the {what} {safe(cleaned)!r} contains an invisible or control character "
                             f"(U+{ord(odd):04X}); type it with letters, digits and punctuation only.")
    if len(cleaned) > MAX_NAME:
        raise PhonetreeError(
            f"{cleaned!r} is too long for a {what}; use at most {MAX_NAME} characters "
            "(a first name or chosen name is best)."
        )
    return cleaned


def add_group(session: Session, name: str, timezone: str, kind: str = "rural") -> Group:
    name = clean_name(name, "group name")
    tz = parse_timezone(timezone)
    preset = PRESETS.get(kind)
    if preset is None:
        raise PhonetreeError(f"unknown group kind {kind!r}; choose one of {', '.join(PRESETS)}.")
    if session.scalar(select(Group).where(Group.name == name)) is not None:
        raise PhonetreeError(f"there is already a group called {name!r}.")
    now = clock.now()
    group = Group(
        name=name, timezone=tz, kind=kind, default_channel=preset.default_channel,
        window_s=preset.window_s, escalation_wait_s=preset.escalation_wait_s,
        quiet_start=preset.quiet_start, quiet_end=preset.quiet_end, reminder=preset.reminder,
        created_at=now,
    )
    session.add(group)
    session.flush()
    events.record(session, now, "group_added", group_id=group.id)
    return group


def get_group(session: Session, name: str) -> Group:
    group = session.scalar(select(Group).where(Group.name == name))
    if group is None:
        names = list(session.scalars(select(Group.name)))
        hint = _did_you_mean(name, names) or (
            " Create it with: phonetree group add NAME --timezone Europe/London" if not names else ""
        )
        raise PhonetreeError(f"no group called {name!r}.{hint}")
    return group


def list_groups(session: Session) -> list[Group]:
    return list(session.scalars(select(Group).order_by(Group.name)))


def get_member(session: Session, group: Group, name: str) -> Member:
    member = session.scalar(
        select(Member).where(Member.group_id == group.id, func.lower(Member.name) == name.strip().lower())
    )
    if member is None:
        names = list(session.scalars(select(Member.name).where(Member.group_id == group.id)))
        raise PhonetreeError(f"no member called {name!r} in {group.name}.{_did_you_mean(name, names)}")
    return member


def resolve_channel(phone_e164: str, channel: str | None, default: str) -> tuple[str, str | None]:
    """The channel to use and a note for the organiser. A landline cannot take texts."""
    landline = is_landline(phone_e164)
    if channel is None:
        if landline:
            return "voice", "this is a landline, so check-ins will be voice calls."
        return default, None
    if channel not in CHANNELS:
        raise PhonetreeError(f"unknown channel {channel!r}; choose sms or voice.")
    if channel == "sms" and landline:
        raise PhonetreeError("that number is a landline, which can't get texts; use --channel voice.")
    return channel, None


def phone_in_use(session: Session, group: Group, e164: str, exclude: int | None = None) -> Member | None:
    """Another member of this group with this number, if any."""
    query = select(Member).where(Member.group_id == group.id, Member.phone == e164)
    if exclude is not None:
        query = query.where(Member.id != exclude)
    return session.scalars(query.order_by(Member.id)).first()


def _refuse_taken(session: Session, group: Group, e164: str, shared: bool, exclude: int | None = None) -> None:
    """Refuse a number another member of the group has, unless they share the phone."""
    other = phone_in_use(session, group, e164, exclude)
    if other is not None and not shared:
        raise PhonetreeError(f"{other.name} in {group.name} already has that number; if they share a phone, "
                             "add --shared.")


def in_another_group(session: Session, group: Group, e164: str) -> str | None:
    """A warning, naming no group, when a number is a member's in another group too (allowed:
    one person may belong to two groups, and their replies go to whichever item is open)."""
    query = select(Member.id).where(Member.phone == e164, Member.group_id != group.id).limit(1)
    if session.scalar(query) is None:
        return None
    return ("that number is also a member's in another group; a reply from it goes to whichever "
            "check-in or task is open for it.")


def channel_note(group: Group, channel: str, phone_e164: str, asked: str | None) -> str | None:
    """Say which channel a member got from the group's preset, so a mobile set to voice by
    the grandparents preset is no surprise."""
    if asked is None and not is_landline(phone_e164) and channel != "sms":
        return (f"{group.name} is a {group.kind} group, so members get {channel} calls, mobiles too; "
                "use --channel sms for texts instead.")
    return None


def add_member(session: Session, group: Group, name: str, phone: str, channel: str | None = None,
               roles: tuple[str, ...] = (), language: str = "en",
               shared: bool = False) -> tuple[Member, str | None]:
    name = clean_name(name)
    e164 = parse_phone(phone)
    chosen, note = resolve_channel(e164, channel, group.default_channel)
    for role in roles:
        if role not in ROLES:
            raise PhonetreeError(f"unknown role {role!r}; choose from {', '.join(ROLES)}.")
    existing = session.scalar(
        select(Member).where(Member.group_id == group.id, func.lower(Member.name) == name.lower())
    )
    if existing is not None:
        raise PhonetreeError(f"{group.name} already has a member called {existing.name!r}; "
                             "use a different name (e.g. add an initial).")
    notes = [n for n in (note, channel_note(group, chosen, e164, channel)) if n]
    _refuse_taken(session, group, e164, shared)
    now = clock.now()
    from phonetree.templates import check_language

    member = Member(
        group_id=group.id, name=name, phone=e164, channel=chosen, language=check_language(language),
        roles=",".join(dict.fromkeys(roles or ("peer",))), created_at=now,
    )
    session.add(member)
    session.flush()
    events.record(session, now, "member_added", group_id=group.id, member_id=member.id)
    return member, " ".join(notes) or None


def update_member(session: Session, group: Group, member: Member, *, phone: str | None = None,
                  channel: str | None = None, roles: tuple[str, ...] = (), name: str | None = None,
                  language: str | None = None, shared: bool = False) -> tuple[list[str], list[str]]:
    """Correct a member. A new number applies to every message not yet sent to them (queued
    ones are re-addressed, and texts to others still waiting to go carry it); what was sent
    stays as it was. Returns what changed (for the record) and notes for the organiser."""
    from sqlalchemy import update

    from phonetree.phones import display
    from phonetree.templates import check_language

    changes: list[str] = []
    notes: list[str] = []
    now = clock.now()
    old_name = member.name
    if name is not None:
        new_name = clean_name(name)
        if new_name != member.name:
            clash = session.scalar(select(Member).where(
                Member.group_id == group.id, func.lower(Member.name) == new_name.lower(), Member.id != member.id))
            if clash is not None:
                raise PhonetreeError(f"{group.name} already has a member called {clash.name!r}.")
            changes.append(f"name {member.name} -> {new_name}")
            member.name = new_name
    old_phone = member.phone
    if phone is not None:
        e164 = parse_phone(phone)
        if e164 != member.phone:
            _refuse_taken(session, group, e164, shared, exclude=member.id)
            if (warning := in_another_group(session, group, e164)):
                notes.append(warning)
            changes.append("phone")  # the record says it changed, not what to
            member.phone, member.phone_problem = e164, None
    if channel is not None or member.phone != old_phone:
        wanted = channel if channel is not None else (member.channel if not is_landline(member.phone) else None)
        chosen, note = resolve_channel(member.phone, wanted, group.default_channel)
        if note:
            notes.append(note)
        if chosen != member.channel:
            changes.append(f"channel {member.channel} -> {chosen}")
            member.channel = chosen
    if roles:
        for role in roles:
            if role not in ROLES:
                raise PhonetreeError(f"unknown role {role!r}; choose from {', '.join(ROLES)}.")
        wanted_roles = ",".join(dict.fromkeys(roles))
        if wanted_roles != member.roles:
            changes.append(f"roles {member.roles.replace(',', ', ')} -> {wanted_roles.replace(',', ', ')}")
            member.roles = wanted_roles
    if language is not None:
        code = check_language(language)
        if code != member.language:
            changes.append(f"language {member.language} -> {code}")
            member.language = code
    if not changes:
        raise PhonetreeError(f"nothing to change: {member.name} is already like that (see --help for options).")
    if member.phone != old_phone:
        waiting = ("queued",)
        session.execute(update(Message).where(Message.member_id == member.id, Message.state.in_(waiting))
                        .values(to_phone=member.phone)
                        .execution_options(synchronize_session=False))
        # Asks to others still waiting to go carry the member's number: give them the new one.
        old_shown, new_shown = display(old_phone), display(member.phone)
        for message in session.scalars(select(Message).where(
                Message.group_id == group.id, Message.state.in_(waiting), Message.body.contains(old_shown))):
            message.body = (message.body or "").replace(old_shown, new_shown)
    if old_name != member.name:
        _rename_in_waiting(session, group, old_name, member.name)
    events.record(session, now, "member_changed", group_id=group.id, member_id=member.id,
                  detail="; ".join(changes))
    session.flush()
    return changes, notes


def _rename_in_waiting(session: Session, group: Group, old: str, new: str) -> None:
    """Texts still waiting to go that name the member (greeting them, or asking someone to ring
    them) carry the new name. Whole words and exact case only, so "Jo" never touches "Joan";
    where a template carries someone's own words ({text}: a forwarded reply, news) only the
    template's part before them changes: the words stay as they were written."""
    name = re.compile(rf"(?<!\w){re.escape(old)}(?!\w)")
    for message in session.scalars(select(Message).where(
            Message.group_id == group.id, Message.state == "queued", Message.body.contains(old))):
        body = message.body or ""
        words = texts.wording(message.template, message.channel, own_wording(group))
        end = len(body)
        if "{text}" in words:
            # The template's words before {text}, with each placeholder matching anything.
            literal = re.split(r"\{[a-z_]+\}", words.split("{text}")[0])
            found = re.match("(.*?)".join(map(re.escape, literal)), body, re.S)
            if found is None:
                continue
            end = found.end()
        message.body = name.sub(lambda _: new, body[:end]) + body[end:]


def list_members(session: Session, group: Group) -> list[Member]:
    return list(session.scalars(select(Member).where(Member.group_id == group.id).order_by(Member.id)))


def organisers(session: Session, group_id: int) -> list[Member]:
    members = session.scalars(select(Member).where(Member.group_id == group_id).order_by(Member.id))
    return [m for m in members if "organiser" in m.role_list]


def pause_member(session: Session, member: Member, until: date | None, now: datetime | None = None,
                 how: str | None = None) -> None:
    """Pause check-ins up to and including `until` (local date); None resumes them. `how` says
    who did it ("by reply"), for the record."""
    now = now or clock.now()
    member.paused_until = until
    detail = (f"{how}, until {until.isoformat()}" if how else until.isoformat()) if until else None
    events.record(session, now, "paused" if until else "resumed", group_id=member.group_id,
                  member_id=member.id, detail=detail)


def can_be_told(person: Member, about: Member) -> bool:
    """Whether a message about `about` can reach `person`: someone else (not on the same phone),
    not opted out, no known problem with their phone. Paused people are still told: a pause
    stops their own check-ins, not what they hear about others."""
    return (person.id != about.id and person.phone != about.phone and not person.opted_out
            and not person.phone_problem)


def reachable(member: Member, group: Group, now: datetime) -> bool:
    """Whether asking this person can do any good today: not opted out, no known problem with
    their phone, not paused."""
    if member.opted_out or member.phone_problem:
        return False
    return not member.is_paused(local_date(now, group.timezone))


def check_window(seconds: int | None) -> int | None:
    """A reply window a check-in can live with: at most a day."""
    if seconds is not None and seconds > MAX_WINDOW_S:
        from phonetree.durations import format_duration

        raise PhonetreeError(f"a reply window of {format_duration(seconds)} is longer than a day; "
                             "give at most 1d (e.g. 1h).")
    return seconds


def update_group(session: Session, group: Group, *, quiet: str | None = None, window_s: int | None = None,
                 escalation_wait_s: int | None = None, reminder: bool | None = None,
                 channel: str | None = None) -> list[str]:
    """Override a group's preset defaults. Returns what changed, for the organiser and the record."""
    from phonetree.times_of_day import parse_time

    from phonetree.durations import format_duration

    changes = []
    if quiet is not None:
        if quiet.strip().lower() in ("off", "none"):
            group.quiet_start = group.quiet_end = "00:00"
        else:
            start, sep, end = quiet.partition("-")
            if not sep:
                raise PhonetreeError(f"{quiet!r} is not a span of hours; write it like 21:00-08:00, or off.")
            begin, finish = parse_time(start.strip()), parse_time(end.strip())
            if begin == finish:
                raise PhonetreeError(f"quiet hours {begin}-{finish} start and end at the same time; "
                                     "write a span like 21:00-08:00, or off for none.")
            group.quiet_start, group.quiet_end = begin, finish
        changes.append(f"quiet hours {group.quiet_start}-{group.quiet_end}"
                       if group.quiet_start != group.quiet_end else "no quiet hours")
    if window_s is not None:
        group.window_s = check_window(window_s)  # type: ignore[assignment]
        changes.append(f"window {format_duration(window_s)}")
    if escalation_wait_s is not None:
        group.escalation_wait_s = escalation_wait_s
        changes.append(f"escalation wait {format_duration(escalation_wait_s)}")
    if reminder is not None:
        group.reminder = reminder
        changes.append("reminder " + ("on" if reminder else "off"))
    if channel is not None:
        if channel not in CHANNELS:
            raise PhonetreeError(f"unknown channel {channel!r}; choose sms or voice.")
        group.default_channel = channel
        changes.append(f"default channel for new members {channel}")
    if not changes:
        raise PhonetreeError("nothing to change; give at least one option (see --help).")
    events.record(session, clock.now(), "group_changed", group_id=group.id, detail=", ".join(changes))
    return changes
