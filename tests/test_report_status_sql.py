"""`report` and `status` count in the database (issue 14): the places where SQL could part from
the Python it replaced. Week boundaries across DST and at local midnight, medians to the
microsecond, and the status lists, on SQLite and PostgreSQL; the old counting kept here, as
it was, as the reference."""
from __future__ import annotations

import random
import statistics
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, select

from phonetree.db import session_scope
from phonetree.checkins import OPEN_CHECKIN_STATES
from phonetree.models import CheckIn, Event, Group, Inbound, Member, Message, Task
from phonetree.reports import WeekRow, _day_start, weekly_report
from phonetree.status import group_status
from tests.conftest import utc

LONDON = ZoneInfo("Europe/London")
STATES = ("answered", "answered", "answered", "resolved", "sent", "escalating", "alerted", "skipped", "missed")


def reference_weeks(rows: list[dict[str, Any]], zone: ZoneInfo, now: datetime, weeks: int
                    ) -> tuple[list[WeekRow], float | None]:
    """The counting as reports.weekly_report did it in Python before issue 14, row by row."""
    def monday(day: date) -> date:
        return day - timedelta(days=day.weekday())

    first = monday(now.astimezone(zone).date()) - timedelta(weeks=weeks - 1)
    after = first + timedelta(weeks=weeks)
    out = {first + timedelta(weeks=i): WeekRow(first + timedelta(weeks=i)) for i in range(weeks)}
    replies: dict[date, list[float]] = {start: [] for start in out}
    for r in rows:
        day = r["due_at"].astimezone(zone).date()
        if not first <= day < after:
            continue
        row = out[monday(day)]
        row.checkins_sent += r["sent_at"] is not None
        row.answered += r["state"] == "answered"
        row.followed_up += r["escalation_step"] >= 0 or r["person_asked"]
        row.resolved += r["state"] == "resolved"
        row.still_open += r["state"] in OPEN_CHECKIN_STATES
        row.help_requests += bool(r["urgent"])
        if r["state"] == "answered" and r["sent_at"] is not None and r["answered_at"] is not None:
            replies[monday(day)].append(max(0.0, (r["answered_at"] - r["sent_at"]).total_seconds() / 60))
    for start, row in out.items():
        row.median_reply_minutes = float(statistics.median(replies[start])) if replies[start] else None
    every = [m for ms in replies.values() for m in ms]
    return list(out.values()), (float(statistics.median(every)) if every else None)


def _group(session: Any, name: str, zone: str) -> Group:
    group = Group(name=name, timezone=zone, created_at=utc(2026, 1, 1))
    session.add(group)
    session.flush()
    return group


def _members(session: Any, group: Group, n: int) -> list[Member]:
    people = [Member(group_id=group.id, name=f"P{i}", phone=f"+4479111{i:05d}", created_at=utc(2026, 1, 1))
              for i in range(n)]
    session.add_all(people)
    session.flush()
    return people


def _checkin(group: Group, member: Member, due_at: datetime, n: int, **values: Any) -> CheckIn:
    fields: dict[str, Any] = {"plan_id": None, "group_id": group.id, "member_id": member.id,
                              "occurrence": f"o{n}", "due_at": due_at, "state": "answered", "window_s": 1800,
                              "escalation_wait_s": 1200, "escalation_step": -1, "urgent": False}
    fields.update(values)
    return CheckIn(**fields)


def _random_history(session: Any, group: Group, people: list[Member], seed: int, start: datetime,
                    hours: int) -> list[dict[str, Any]]:
    """Check-ins at random instants (to the microsecond), random states, replies of random
    length (some before the prompt: clock skew, counted as 0), some escalated or alerted; and
    some exactly on a local midnight and a microsecond before it."""
    rnd = random.Random(seed)
    zone = ZoneInfo(group.timezone)
    dues = [start + timedelta(microseconds=rnd.randrange(hours * 3600 * 10**6)) for _ in range(240)]
    day = start.astimezone(zone).date()
    for k in range(hours // 24 + 1):
        midnight = _day_start(day + timedelta(days=k), zone)
        dues += [midnight, midnight - timedelta(microseconds=1)]
    rows = []
    for n, due in enumerate(dues):
        state = rnd.choice(STATES)
        sent = None if state in ("skipped", "missed") or rnd.random() < 0.05 else (
            due + timedelta(microseconds=rnd.randrange(5 * 60 * 10**6)))
        answered = None
        if state == "answered" and sent is not None and rnd.random() < 0.95:
            # Whole minutes often (ties), sometimes a little before the prompt.
            answered = sent + (timedelta(minutes=rnd.randrange(0, 90)) if rnd.random() < 0.4 else
                               timedelta(microseconds=rnd.randrange(-2 * 10**6, 90 * 60 * 10**6)))
        step = rnd.choice((-1, -1, -1, 0, 1)) if state != "answered" else rnd.choice((-1, -1, -1, -1, 0))
        checkin = _checkin(group, people[n % len(people)], due, n, state=state, sent_at=sent, answered_at=answered,
                           escalation_step=step, urgent=rnd.random() < 0.1)
        session.add(checkin)
        session.flush()
        kind = rnd.choice((None, None, None, "escalation", "alert", "call_prompt"))
        if kind is not None:
            session.add(Task(kind=kind, group_id=group.id, assignee_id=people[0].id, checkin_id=checkin.id,
                             dedupe_key=f"t{group.id}:{n}", state="asked", asked_at=due))
        rows.append({"due_at": due, "state": state, "sent_at": sent, "answered_at": answered,
                     "escalation_step": step, "urgent": checkin.urgent,
                     "person_asked": kind in ("escalation", "alert")})
    session.flush()
    return rows


@pytest.mark.parametrize("seed,start", [
    (1, utc(2026, 3, 9)),     # across the spring change (Sun 29 March) and the weeks either side
    (2, utc(2026, 10, 5)),    # across the autumn change (Sun 25 October)
])
def test_weeks_and_medians_match_the_python_they_replace_across_dst(engine, seed, start):
    with session_scope(engine) as session:
        group = _group(session, "Elm", "Europe/London")
        people = _members(session, group, 5)
        rows = _random_history(session, group, people, seed, start, hours=5 * 7 * 24)
        # Another group's check-ins, in another zone, count for nobody here.
        other = _group(session, "Kowhai", "Pacific/Auckland")
        _random_history(session, other, _members(session, other, 2), seed + 100, start, hours=5 * 7 * 24)
    for now, weeks in ((start + timedelta(days=34), 6), (start + timedelta(days=20), 3),
                       (start + timedelta(days=40), 1), (start + timedelta(days=34), 52)):
        with session_scope(engine) as session:
            group = session.scalar(select(Group).where(Group.name == "Elm"))
            got = weekly_report(session, group, now, weeks=weeks)
        expected, total_median = reference_weeks(rows, LONDON, now, weeks)
        assert [(w.checkins_sent, w.answered, w.followed_up, w.resolved, w.still_open, w.help_requests,
                 w.median_reply_minutes) for w in got.weeks] == [
            (w.checkins_sent, w.answered, w.followed_up, w.resolved, w.still_open, w.help_requests,
             w.median_reply_minutes) for w in expected]
        assert [w.week_start for w in got.weeks] == [w.week_start for w in expected]
        assert got.totals.median_reply_minutes == total_median
        assert sum(w.checkins_sent for w in got.weeks) > 0 or weeks == 1


def test_a_checkin_at_local_midnight_on_monday_starts_the_week(engine):
    """Mon 30 March 2026 00:00 BST is Sun 29 March 23:00 UTC: due then, it is the new week's;
    a microsecond earlier, the old week's."""
    monday = datetime(2026, 3, 30, tzinfo=LONDON).astimezone(timezone.utc)
    assert monday == utc(2026, 3, 29, 23, 0)
    with session_scope(engine) as session:
        group = _group(session, "Elm", "Europe/London")
        vera, jo = _members(session, group, 2)
        session.add_all([
            _checkin(group, vera, monday, 1, sent_at=monday, answered_at=monday + timedelta(minutes=3)),
            _checkin(group, jo, monday - timedelta(microseconds=1), 2, sent_at=monday - timedelta(microseconds=1),
                     answered_at=monday + timedelta(minutes=7, microseconds=-1)),
        ])
    with session_scope(engine) as session:
        report = weekly_report(session, session.scalar(select(Group)), utc(2026, 3, 31, 12), weeks=2)
    assert [(w.week_start, w.checkins_sent, w.answered, w.median_reply_minutes) for w in report.weeks] == [
        (date(2026, 3, 23), 1, 1, 7.0), (date(2026, 3, 30), 1, 1, 3.0)]
    assert report.totals.median_reply_minutes == 5.0


@pytest.mark.parametrize("zone,day", [
    ("Europe/London", date(2026, 3, 29)), ("Europe/London", date(2026, 10, 25)),
    ("America/Havana", date(2026, 3, 8)),      # 00:00 does not exist: clocks go to 01:00
    ("America/Havana", date(2026, 11, 1)),     # 00:00-01:00 happens twice
    ("America/Santiago", date(2026, 9, 6)),    # midnight skipped
    ("America/Santiago", date(2026, 4, 5)),    # at midnight the clocks go back to Saturday 23:00
    ("Pacific/Apia", date(2011, 12, 30)),      # a day that never happened there
    ("Asia/Kolkata", date(2026, 6, 1)), ("Pacific/Auckland", date(2026, 9, 28)),
])
def test_a_day_starts_at_the_first_instant_of_that_local_date(zone, day):
    """The UTC bounds the SQL counts between are exactly where the local date changes, as
    `due_at.astimezone(zone).date()` sees it, even where DST moves midnight itself."""
    tz = ZoneInfo(zone)
    start = _day_start(day, tz)
    assert start.astimezone(tz).date() >= day
    assert (start - timedelta(microseconds=1)).astimezone(tz).date() < day
    # The date never goes back once reached, within a day either side (so one bound suffices).
    for minutes in range(-26 * 60, 26 * 60, 15):
        instant = start + timedelta(minutes=minutes)
        assert (instant.astimezone(tz).date() >= day) == (minutes >= 0)


def test_a_median_reply_to_the_microsecond(engine):
    """Two replies 1 min 0.000001 s and 2 min apart: the median is their mean, exactly as
    Python's timedelta arithmetic gives it; a reply stamped before its prompt counts as 0."""
    sent = utc(2026, 12, 1, 9, 0, 0)
    with session_scope(engine) as session:
        group = _group(session, "Elm", "Europe/London")
        a, b, c = _members(session, group, 3)
        session.add_all([
            _checkin(group, a, sent, 1, sent_at=sent, answered_at=sent + timedelta(minutes=1, microseconds=1)),
            _checkin(group, b, sent, 2, sent_at=sent + timedelta(microseconds=999999),
                     answered_at=sent + timedelta(minutes=2, microseconds=999999)),
        ])
    with session_scope(engine) as session:
        report = weekly_report(session, session.scalar(select(Group)), utc(2026, 12, 2), weeks=1)
    one, two = timedelta(minutes=1, microseconds=1).total_seconds() / 60, 2.0
    assert report.weeks[0].median_reply_minutes == (one + two) / 2
    with session_scope(engine) as session:
        session.add(_checkin(group, c, sent, 3, sent_at=sent, answered_at=sent - timedelta(seconds=5)))
    with session_scope(engine) as session:
        report = weekly_report(session, session.scalar(select(Group)), utc(2026, 12, 2), weeks=1)
    assert report.weeks[0].median_reply_minutes == one and report.totals.median_reply_minutes == one


def test_a_reply_sent_in_the_last_half_millisecond_of_a_second_is_timed_exactly(engine):
    """SQLite's date functions round a time to the millisecond, so 09:00:00.9997 read as
    09:00:01: taking the whole seconds from the rounded time and the microseconds from the
    text made this reply 1 s short (3 min 59.0003 s instead of 4 min 0.0003 s)."""
    sent = utc(2026, 12, 1, 9, 0, 0, 999700)
    answered = utc(2026, 12, 1, 9, 4, 1, 0)
    with session_scope(engine) as session:
        group = _group(session, "Elm", "Europe/London")
        (a,) = _members(session, group, 1)
        session.add(_checkin(group, a, utc(2026, 12, 1, 9), 1, sent_at=sent, answered_at=answered))
    with session_scope(engine) as session:
        report = weekly_report(session, session.scalar(select(Group)), utc(2026, 12, 2), weeks=1)
    exact = (answered - sent).total_seconds() / 60
    assert report.weeks[0].median_reply_minutes == exact == report.totals.median_reply_minutes


def _selects(engine: Any, run: Any) -> int:
    statements: list[str] = []

    def count(conn, cursor, statement, *args: Any) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        run()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return len(statements)


def test_status_lists_what_it_did_and_reads_the_same_whatever_is_open(engine):
    """Who is paused (until today, not yesterday), opted out, with a phone problem (not an
    empty one); open check-ins oldest first with whoever was asked in the order asked; replies
    and failures of the last two days only. And the same number of queries for one open
    check-in as for many: no query per check-in or per person asked."""
    now = utc(2026, 12, 1, 10, 0)
    today = date(2026, 12, 1)
    with session_scope(engine) as session:
        group = _group(session, "Elm", "Europe/London")
        people = _members(session, group, 8)
        people[1].paused_until = today
        people[2].paused_until = today - timedelta(days=1)
        people[3].opted_out = True
        people[4].phone_problem = "landline"
        people[5].phone_problem = ""
        first = _checkin(group, people[6], utc(2026, 12, 1, 9, 0), 1, state="escalating", sent_at=now,
                         escalation_step=1)
        session.add(first)
        session.flush()
        session.add_all([
            Task(kind="escalation", group_id=group.id, assignee_id=people[1].id, checkin_id=first.id,
                 dedupe_key="a", state="no_answer", asked_at=utc(2026, 12, 1, 9, 30)),
            Task(kind="escalation", group_id=group.id, assignee_id=people[0].id, checkin_id=first.id,
                 dedupe_key="b", state="asked", asked_at=utc(2026, 12, 1, 9, 50)),
            Inbound(member_id=people[6].id, channel="sms", body="new words", intent="unknown",
                    received_at=now - timedelta(days=2)),
            Inbound(member_id=people[6].id, channel="sms", body="old words", intent="unknown",
                    received_at=now - timedelta(days=2, seconds=1)),
            # Each as inbound._unknown passes words on: with their trail in the group.
            Event(at=now - timedelta(days=2), group_id=group.id, member_id=people[6].id, kind="reply_forwarded"),
            Event(at=now - timedelta(days=2, seconds=1), group_id=group.id, member_id=people[6].id,
                  kind="reply_forwarded"),
            Message(group_id=group.id, member_id=people[7].id, to_phone="+447911100001", channel="sms",
                    kind="checkin", template="checkin", priority=3, body="x", dedupe_key="m1", state="failed",
                    created_at=now - timedelta(days=3), not_before=now, error="old failure"),
            Message(group_id=group.id, member_id=people[7].id, to_phone="+447911100001", channel="sms",
                    kind="checkin", template="checkin", priority=3, body="x", dedupe_key="m2", state="failed",
                    created_at=now - timedelta(hours=1), not_before=now, error="30003"),
        ])
    with session_scope(engine) as session:
        data = group_status(session, session.scalar(select(Group)), now)
    assert [(i["member"], [(a["name"], a["state"]) for a in i["asked"]]) for i in data["open"]] == [
        ("P6", [("P1", "no_answer"), ("P0", "asked")])]
    assert data["paused"] == [{"member": "P1", "until": "2026-12-01"}]
    assert data["opted_out"] == ["P3"] and data["phone_problems"] == [{"member": "P4", "problem": "landline"}]
    assert [r["text"] for r in data["replies_to_read"]] == ["new words"]
    assert [p["error"] for p in data["delivery_problems"]] == ["30003"]

    with session_scope(engine) as session:
        group = session.scalar(select(Group))
        one = _selects(engine, lambda: group_status(session, group, now))
    with session_scope(engine) as session:
        for n, person in enumerate(people[:6]):  # five more open, each with its own person asked
            checkin = _checkin(group, person, utc(2026, 12, 1, 8, n), 10 + n, state="alerted", sent_at=now)
            session.add(checkin)
            session.flush()
            session.add(Task(kind="alert", group_id=group.id, assignee_id=people[7 - n].id, checkin_id=checkin.id,
                             dedupe_key=f"c{n}", state="asked", asked_at=now))
    with session_scope(engine) as session:
        group = session.scalar(select(Group))
        many = _selects(engine, lambda: group_status(session, group, now))
        data = group_status(session, group, now)
    assert [i["member"] for i in data["open"]] == ["P0", "P1", "P2", "P3", "P4", "P5", "P6"]
    assert many == one


def test_status_times_are_worked_out_once_per_instant_and_keep_their_offsets():
    """The status's memo of formatted instants: an instant met again gives the same text, and
    the same instant given in another zone still prints its own offset (equal datetimes in
    different zones are equal dict keys)."""
    from phonetree.status import _Times, _iso, _local

    times = _Times(LONDON)
    summer = utc(2026, 7, 1, 8, 0)
    assert times.iso(summer) == _iso(summer) == "2026-07-01T08:00:00+00:00"
    assert times.iso(summer.astimezone(LONDON)) == "2026-07-01T09:00:00+01:00"
    assert times.iso(utc(2026, 7, 1, 8, 0)) == "2026-07-01T08:00:00+00:00" and times.iso(None) is None
    assert times.local(summer) == times.local(summer.astimezone(LONDON)) == _local(summer, LONDON) == "Wed 01 Jul 09:00"
