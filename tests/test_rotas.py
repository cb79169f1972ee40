"""Call rotas through the CLI and the real engine: rounds, prompts, DONE / CANT, backups,
follow-up, fair skipping, roster changes, and the iCalendar export."""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from itertools import combinations

import pytest
from freezegun import freeze_time
from icalendar import Calendar
from sqlalchemy import event, select

from phonetree import rotas
from schedules import planner
from phonetree.db import session_scope
from phonetree.models import Rota, RotaRound, Task
from tests.conftest import sent, utc

PEERS = ["Ann", "Ben", "Cath", "Dev", "Eve", "Fred"]
PHONES = {name: f"07911 2000{i:02d}" for i, name in enumerate(PEERS, start=1)}
E164 = {name: "+44" + phone.replace(" ", "")[1:] for name, phone in PHONES.items()}
# Monday 30 November 2026; rounds on Tuesdays at 18:00 GMT.
CREATED = "2026-11-30 12:00:00"


@pytest.fixture
def dales(ok) -> str:
    with freeze_time(CREATED):
        ok("group", "add", "Dales", "--timezone", "Europe/London")
        ok("member", "add", "Dales", "Org", "--phone", "07911 200099", "--role", "organiser")
        for name in PEERS:
            ok("member", "add", "Dales", name, "--phone", PHONES[name])
    return "Dales"


def add_rota(ok, *extra: str) -> None:
    with freeze_time(CREATED):
        ok("rota", "add", "Dales", "weekly", "--kind", "pairs", "--on", "tue", "--at", "18:00",
           "--members", ",".join(PEERS), *extra)


def show(ok, weeks: int, when: str = CREATED) -> list[dict]:
    with freeze_time(when):
        return json.loads(ok("rota", "show", "Dales", "weekly", "--weeks", str(weeks), "--json").stdout)


def test_show_json_has_the_contract_shape_and_everyone_meets_everyone(dales, ok):
    add_rota(ok)
    rounds = show(ok, 5)
    assert [r["date"] for r in rounds] == ["2026-12-01", "2026-12-08", "2026-12-15", "2026-12-22", "2026-12-29"]
    met = set()
    for r in rounds:
        people = [p for c in r["calls"] for p in (c["caller"], c["callee"])]
        assert sorted(people) == sorted(PEERS)  # everyone in exactly one call each round
        met |= {frozenset((c["caller"], c["callee"])) for c in r["calls"]}
    assert met == {frozenset(p) for p in combinations(PEERS, 2)}  # 15 pairs in 5 rounds


def test_never_pair_is_honoured(dales, ok):
    add_rota(ok, "--never-pair", "Ann:Ben", "--never-pair", "Cath:Dev")
    for r in show(ok, 10):
        pairs = {frozenset((c["caller"], c["callee"])) for c in r["calls"]}
        assert frozenset(("Ann", "Ben")) not in pairs and frozenset(("Cath", "Dev")) not in pairs


def test_impossible_constraints_are_refused_up_front(dales, ok, run_cli):
    with freeze_time(CREATED):
        result = run_cli("rota", "add", "Dales", "tiny", "--kind", "pairs", "--on", "tue", "--at", "18:00",
                         "--members", "Ann,Ben", "--never-pair", "Ann:Ben")
    assert result.exit_code == 1 and result.stderr.startswith("Error: ") and "Ann" in result.stderr


def test_ring_rotas_rotate_and_everyone_rings_once(dales, ok):
    with freeze_time(CREATED):
        ok("rota", "add", "Dales", "weekly", "--kind", "ring", "--on", "tue", "--at", "18:00",
           "--members", ",".join(PEERS))
    rounds = show(ok, 3)
    for r in rounds:
        assert sorted(c["caller"] for c in r["calls"]) == sorted(PEERS)
        assert sorted(c["callee"] for c in r["calls"]) == sorted(PEERS)
    first, second = ({c["caller"]: c["callee"] for c in r["calls"]} for r in rounds[:2])
    assert all(first[p] != second[p] for p in PEERS)


def test_prompts_go_out_at_the_round_time_with_the_callees_number(dales, ok, engine, ticker):
    add_rota(ok)
    ticker(utc(2026, 12, 1, 17, 59))
    assert not sent(engine, kind="call_prompt")
    ticker(utc(2026, 12, 1, 18, 0))
    prompts = sent(engine, kind="call_prompt")
    assert len(prompts) == 3
    planned = show(ok, 1, "2026-12-01 18:05:00")[0]["calls"]
    for call in planned:
        [prompt] = [m for m in prompts if m.to_phone == E164[call["caller"]]]
        assert f"please ring {call['callee']} on {PHONES[call['callee']]}" in prompt.body
        assert "this week" in prompt.body


def test_done_confirms_and_cant_passes_to_a_free_backup_at_once(dales, ok, engine, ticker):
    add_rota(ok)
    ticker(utc(2026, 12, 1, 18, 0))
    calls = show(ok, 1, "2026-12-01 18:05:00")[0]["calls"]
    first, second = calls[0], calls[1]
    with freeze_time("2026-12-01 19:00:00"):
        ok("receive", "--from", PHONES[first["caller"]], "done, lovely chat")
        ok("receive", "--from", PHONES[second["caller"]], "can't this week sorry")
    backup_prompts = [m for m in sent(engine, kind="call_prompt") if second["callee"] in m.body
                      and m.to_phone != E164[second["caller"]]]
    assert len(backup_prompts) == 1
    backup = next(n for n, p in E164.items() if p == backup_prompts[0].to_phone)
    assert backup not in (second["caller"], second["callee"])
    with session_scope(engine) as session:
        states = {(t.assignee.name, t.subject.name): t.state for t in session.scalars(select(Task))}
    assert states[(first["caller"], first["callee"])] == "done"
    assert states[(second["caller"], second["callee"])] == "cant"
    assert states[(backup, second["callee"])] == "asked"
    # The past round shows who was asked first, as it was.
    assert show(ok, 1, "2026-12-02 09:00:00")[0]["calls"] == calls


def test_unconfirmed_calls_are_followed_up_then_reach_the_organiser(dales, ok, engine, ticker):
    with freeze_time(CREATED):
        ok("rota", "add", "Dales", "weekly", "--kind", "pairs", "--on", "tue", "--at", "18:00",
           "--members", "Ann,Ben", "--confirm-within", "1d")
    ticker(utc(2026, 12, 1, 18, 0))
    [prompt] = sent(engine, kind="call_prompt")
    ticker(utc(2026, 12, 2, 17, 59))
    assert len(sent(engine, kind="call_prompt")) == 1
    ticker(utc(2026, 12, 2, 18, 0))  # a day without DONE, and no other peer free: the organiser
    followed = sent(engine, kind="call_prompt")
    assert len(followed) == 2 and followed[1].to_phone == "+447911200099"
    assert "hasn't been made" in followed[1].body


def test_paused_members_are_skipped_and_nobody_is_left_out(dales, ok, engine, ticker):
    add_rota(ok)
    with freeze_time(CREATED):
        ok("member", "pause", "Dales", "Dev", "--until", "2026-12-02")
    ticker(utc(2026, 12, 1, 18, 0))
    prompts = sent(engine, kind="call_prompt")
    bodies = " ".join(m.body for m in prompts)
    assert E164["Dev"] not in {m.to_phone for m in prompts} and "ring Dev" not in bodies
    named = {n for n in PEERS if n in bodies or E164[n] in {m.to_phone for m in prompts}}
    assert named == set(PEERS) - {"Dev"}  # five people: a trio, nobody left out
    assert len(prompts) == 3  # one pair's call + the trio's two


def test_joining_and_leaving_keeps_past_rounds(dales, ok, engine, ticker):
    add_rota(ok)
    ticker(utc(2026, 12, 1, 18, 0))
    before = show(ok, 1, "2026-12-02 09:00:00")[0]
    with freeze_time("2026-12-02 09:00:00"):
        ok("member", "add", "Dales", "Gus", "--phone", "07911 200007")
        ok("rota", "join", "Dales", "weekly", "Gus")
        ok("rota", "leave", "Dales", "weekly", "Ann")
    after = show(ok, 2, "2026-12-02 09:00:00")
    assert after[0] == before
    names = {p for c in after[1]["calls"] for p in (c["caller"], c["callee"])}
    assert "Gus" in names and "Ann" not in names


def test_calling_duty_stays_balanced_over_many_weeks(dales, ok):
    add_rota(ok)
    counts = {p: 0 for p in PEERS}
    for r in show(ok, 20):
        for call in r["calls"]:
            counts[call["caller"]] += 1
    assert max(counts.values()) - min(counts.values()) <= 1


def test_export_is_valid_icalendar_in_the_group_zone(dales, ok):
    add_rota(ok)
    with freeze_time(CREATED):
        text = ok("rota", "export", "Dales", "weekly", "--weeks", "4").stdout_bytes.decode()
    calendar = Calendar.from_ical(text)
    events = [c for c in calendar.walk("VEVENT")]
    assert len(events) == 4 * 3
    assert len({str(e["UID"]) for e in events}) == 12
    first = events[0]
    assert str(first.decoded("DTSTART").tzinfo) == "Europe/London"
    assert first.decoded("DTSTART").hour == 18
    assert first.decoded("DTEND") - first.decoded("DTSTART") == timedelta(minutes=30)
    assert [c.name for c in calendar.walk("VTIMEZONE")] == ["VTIMEZONE"]
    assert "\r\n" in text and all(len(line.encode()) <= 75 for line in text.split("\r\n"))


def test_three_simulated_weeks_of_a_rural_group(dales, ok, engine, ticker):
    """The new-user walk-through: three weeks, some DONE, one CANT, one silent caller."""
    add_rota(ok)
    for week in range(3):
        start = utc(2026, 12, 1 + 7 * week, 18, 0)
        ticker(start)
        calls = show(ok, 1, (start + timedelta(minutes=5)).strftime("%Y-%m-%d %H:%M:%S"))[0]["calls"]
        for i, call in enumerate(calls):
            if week == 1 and i == 0:
                continue  # this caller never confirms: followed up after three days
            with freeze_time(start + timedelta(hours=2 + i)):
                ok("receive", "--from", PHONES[call["caller"]],
                   "CANT" if (week, i) == (2, 1) else f"DONE {call['callee']}")
        for hours in range(0, 24 * 7, 12):
            moment = start + timedelta(hours=hours)
            ticker(moment)
            # Backups asked to step in do make their call (and say whom they rang).
            with session_scope(engine) as session:
                backups = [(t.assignee.name, t.subject.name) for t in session.scalars(select(Task).where(
                    Task.state == "asked", Task.dedupe_key.like("rota:%:backup:%")))]
            for name, callee in backups:
                with freeze_time(moment + timedelta(minutes=30)):
                    ok("receive", "--from", PHONES[name], f"done, spoke to {callee}")
    with session_scope(engine) as session:
        tasks = session.scalars(select(Task).where(Task.kind == "call_prompt")).all()
        states = [t.state for t in tasks]
        detail = "\n".join(f"{t.dedupe_key} {t.assignee.name}->{t.subject.name} {t.state}" for t in tasks)
    assert states.count("expired") == 1 and states.count("cant") == 1, detail
    assert states.count("done") == 9 and len(tasks) == 11, detail  # nine calls, two via backups


def test_no_backup_is_asked_once_the_rounds_week_is_over(dales, ok, engine, ticker):
    add_rota(ok)
    ticker(utc(2026, 12, 1, 18, 0))
    ticker(utc(2026, 12, 8, 18, 0))  # nobody confirmed, and the service only looks again a week on
    late = [m for m in sent(engine, kind="call_prompt") if m.created_at == utc(2026, 12, 8, 18, 0)]
    with session_scope(engine) as session:
        backups = session.scalars(select(Task).where(Task.dedupe_key.like("rota:1:backup:%"))).all()
    assert backups == []  # no peer asked to make last week's call
    followups = [m for m in late if m.template == "call_unmade"]
    assert followups and {m.to_phone for m in followups} == {"+447911200099"}  # the organiser only


def rounds_and_next(engine) -> tuple[list[tuple[int, datetime]], datetime | None]:
    with session_scope(engine) as session:
        made = [(number, due) for number, due in session.execute(
            select(RotaRound.number, RotaRound.due_at).order_by(RotaRound.number))]
        return made, session.scalar(select(Rota.next_round_at))


def test_each_round_is_made_36_hours_ahead_and_an_ordinary_tick_reads_no_rota(dales, ok, engine):
    add_rota(ok)  # Tuesdays at 18:00 GMT from 1 December; its next round not yet known (NULL)

    def plan(now: datetime) -> tuple[int, list[str]]:
        seen: list[str] = []

        def record(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
            if not statement.startswith("BEGIN"):
                seen.append(statement)

        event.listen(engine, "before_cursor_execute", record)
        try:
            with session_scope(engine) as session:
                return planner.plan_rounds(session, now), seen
        finally:
            event.remove(engine, "before_cursor_execute", record)

    assert plan(utc(2026, 11, 30, 12, 0, 5))[0] == 1
    assert rounds_and_next(engine) == ([(0, utc(2026, 12, 1, 18))], utc(2026, 12, 8, 18))
    # Until 36 hours before the next round, a tick asks the index one question and reads nothing.
    for now in (utc(2026, 11, 30, 12, 0, 10), utc(2026, 12, 1, 18), utc(2026, 12, 7, 5, 59, 59)):
        created, seen = plan(now)
        assert created == 0 and len(seen) == 1 and "EXISTS" in seen[0], seen
        if engine.dialect.name == "sqlite":
            with engine.connect() as conn:
                steps = [row[3] for row in conn.exec_driver_sql(
                    "EXPLAIN QUERY PLAN " + seen[0], (utc(2026, 12, 7, 5).replace(tzinfo=None).isoformat(" "),))]
            assert not [s for s in steps if "rotas" in s and "ix_rotas_next_round_at" not in s], steps
    # Then the round is made, and the next one bookmarked.
    assert plan(utc(2026, 12, 7, 6))[0] == 1
    assert rounds_and_next(engine) == ([(0, utc(2026, 12, 1, 18)), (1, utc(2026, 12, 8, 18))],
                                       utc(2026, 12, 15, 18))


def test_rounds_missed_while_the_service_was_down_are_all_made_when_it_comes_back(dales, ok, engine):
    add_rota(ok)
    with session_scope(engine) as session:
        assert planner.plan_rounds(session, utc(2026, 11, 30, 12, 0, 5)) == 1
    # Down for three weeks: every round since is made at once (and reported missed when due).
    with session_scope(engine) as session:
        assert planner.plan_rounds(session, utc(2026, 12, 21, 12)) == 3
    made, following = rounds_and_next(engine)
    assert [number for number, _ in made] == [0, 1, 2, 3] and following == utc(2026, 12, 29, 18)


def round_groups(calls: list[dict]) -> list[set[str]]:
    """The groups of a round, from its calls: a pair's one call, or a trio's chain of two."""
    groups: list[set[str]] = []
    for call in calls:
        touching = [g for g in groups if {call["caller"], call["callee"]} & g]
        merged = set().union({call["caller"], call["callee"]}, *touching)
        groups = [g for g in groups if g not in touching] + [merged]
    return groups


def test_seven_peers_all_meet_within_six_weeks_and_nobody_rings_themselves(dales, ok, engine, ticker):
    """Issue 12: with seven peers, six weekly rounds left Vera and Sam unmet while others met
    twice. Through the CLI and the engine: every pair is in a round together within six weeks."""
    with freeze_time(CREATED):
        ok("member", "add", "Dales", "Gus", "--phone", "07911 200077")
        ok("rota", "add", "Dales", "weekly", "--kind", "pairs", "--on", "tue", "--at", "18:00",
           "--members", ",".join([*PEERS, "Gus"]))
    rounds = show(ok, 6)[:6]
    met = {frozenset(p) for r in rounds for g in round_groups(r["calls"]) for p in combinations(sorted(g), 2)}
    assert len(met) == 21
    names = {v: k for k, v in E164.items()} | {"+447911200077": "Gus", "+447911200099": "Org"}
    checked = 0
    for week in range(6):
        ticker(utc(2026, 12, 1, 18, 0) + timedelta(weeks=week))
        # Read at once: texts older than the retention period lose their words.
        prompts = [m for m in sent(engine, kind="call_prompt") if m.body]
        for prompt in prompts:
            assert f"ring {names[prompt.to_phone]} " not in prompt.body  # nobody asked to ring themselves
        checked = max(checked, len(prompts))
    assert checked >= 4
