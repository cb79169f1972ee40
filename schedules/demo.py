"""`phonetree demo`: a sample grandparents' group and one simulated day, played through the
real engine (planner, tick, dispatcher, inbound) on SQLite with the outbox gateway. The clock
steps five minutes at a time through the day; replies arrive at set moments."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select

from phonetree import clock, directory, inbound
from phonetree.plans import add_plan
from phonetree.db import dispose_all, get_engine, session_scope
from phonetree.gateways.outbox import OutboxGateway
from phonetree.models import Member, Message
from phonetree.replies import parse_keypress
from phonetree.status import group_status
from schedules.engine import tick

ZONE = ZoneInfo("Europe/London")
DAY = datetime(2026, 12, 1, tzinfo=ZONE)  # a Tuesday
STEP = timedelta(minutes=5)

MEMBERS = [  # name, phone, channel, roles
    ("Margaret", "07911 100001", "sms", ("organiser",)),
    ("Vera", "01522 500001", None, ("carer",)),  # a landline: check-ins are voice calls
    ("Pat", "07911 100002", "sms", ("carer",)),
    ("Dot", "07911 100003", "sms", ("carer",)),
    ("Jo", "07911 100004", "sms", ("peer",)),
    ("Sam", "07911 100005", "sms", ("peer",)),
]
PLANS = [("Vera", "10:00", ["Jo", "Sam"]), ("Pat", "10:00", ["Sam", "Jo"]), ("Dot", "10:30", ["Jo", "Sam"])]
# (local time, who, what they send; "key:1" is a keypress on a voice call)
REPLIES = [
    ("10:04", "Pat", "OK thanks"),
    ("10:06", "Vera", "key:1"),
    ("11:41", "Jo", "Sorry, can't right now"),
    ("12:07", "Sam", "Done - spoke to Dot, all fine"),
    ("15:22", "Pat", "Could you call me please"),
    ("15:36", "Sam", "DONE"),
]


def at(hhmm: str) -> datetime:
    hour, minute = map(int, hhmm.split(":"))
    return DAY.replace(hour=hour, minute=minute).astimezone(timezone.utc)


def play(path: Path, echo: Callable[[str], None]) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    engine = get_engine(url)
    gateway = OutboxGateway()
    names: dict[str, str] = {}
    with clock.stepped(at("08:00")) as stepper:
        with session_scope(engine) as session:
            group = directory.add_group(session, "Oak Lane", "Europe/London", "grandparents")
            for name, phone, channel, roles in MEMBERS:
                member, _ = directory.add_member(session, group, name, phone, channel, roles)
                names[member.phone] = name
            for name, time_, contacts in PLANS:
                add_plan(session, group, directory.get_member(session, group, name), time_, "daily", contacts)
        echo(f"Oak Lane, a grandparents' group (Europe/London). Simulated day: {DAY:%A %d %B %Y}.")
        echo("Check-ins: Vera 10:00 (landline, voice call), Pat 10:00, Dot 10:30 (texts).")
        echo("If there's no reply within the hour, Jo and Sam are asked to ring; then Margaret.\n")
        seen: set[int] = set()
        replies = [(at(t), who, text) for t, who, text in REPLIES]
        moment = at("08:00")
        while moment <= at("16:00"):
            stepper.set(moment)
            for when, who, text in [r for r in replies if r[0] <= moment]:
                replies.remove((when, who, text))
                stepper.set(when)
                _reply(engine, when, who, text, echo)
                tick(engine, gateway, when)
                _show_sent(engine, seen, names, echo)
                stepper.set(moment)
            tick(engine, gateway, moment)
            _show_sent(engine, seen, names, echo)
            moment += STEP
        with session_scope(engine) as session:
            group = directory.get_group(session, "Oak Lane")
            report = group_status(session, group, moment)
    echo("")
    echo("End of the day: " + ("nothing is left open." if not report["open"] else
                               f"{len(report['open'])} check-in(s) still open."))
    echo(f"Everything sent is recorded in {path}: phonetree --db sqlite:///{path} outbox")
    dispose_all()


def _reply(engine: Engine, when: datetime, who: str, text: str, echo: Callable[[str], None]) -> None:
    local = when.astimezone(ZONE).strftime("%H:%M")
    with session_scope(engine) as session:
        member = session.scalar(select(Member).where(Member.name == who))
        assert member is not None
        if text.startswith("key:"):
            digit = text.split(":", 1)[1]
            echo(f"{local}  {who} presses {digit} on the call")
            inbound.handle(session, when, member.phone, digit, channel="voice",
                           reply=parse_keypress(digit), member_id=member.id)
        else:
            echo(f"{local}  {who} texts: {text}")
            inbound.handle(session, when, member.phone, text)


def _show_sent(engine: Engine, seen: set[int], names: dict[str, str], echo: Callable[[str], None]) -> None:
    """Print messages sent since last time (the conversation as it happens)."""
    with session_scope(engine) as session:
        rows = session.scalars(select(Message).where(Message.state == "sent", Message.id.not_in(seen))
                               .order_by(Message.sent_at, Message.priority, Message.id)).all()
        for message in rows:
            local = message.sent_at.astimezone(ZONE).strftime("%H:%M") if message.sent_at else "--:--"
            how = "calls" if message.channel == "voice" else "texts"
            echo(f"{local}  phonetree {how} {names.get(message.to_phone, '?')} [{message.kind}]: {message.body}")
            seen.add(message.id)
