"""A check-in's whole life through the real engine: prompt, reply, reminder, window,
escalation chain, organisers, late OK, HELP, and the ticks that must do nothing twice."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from phonetree.db import session_scope
from phonetree.gateways.base import Gateway
from phonetree.models import CheckIn, Member, Task
from tests.conftest import JO, MARGARET, SAM, VERA, sent, utc

# Tuesday 1 December 2026, GMT: local time == UTC.
DAY = (2026, 12, 1)


@pytest.fixture
def gateway(either_gateway: Gateway) -> Gateway:
    """Every flow here runs twice: through the outbox gateway, and through the real twilio
    client against the Twilio stand-in (tests/twilio_standin.py)."""
    return either_gateway


def add_vera_checkin(ok, *extra: str) -> None:
    with freeze_time("2026-11-30 12:00:00"):
        ok("checkin", "add", "Oakfield", "Vera", "--at", "09:00", "--window", "30m",
           "--escalate-to", "Jo,Sam", "--escalation-wait", "20m", *extra)


def receive(ok, phone: str, text: str, when) -> str:
    with freeze_time(when):
        return ok("receive", "--from", phone, text).stdout


def checkin_state(engine) -> str:
    with session_scope(engine) as session:
        return session.scalars(select(CheckIn.state).order_by(CheckIn.due_at)).first()


def bodies_to(engine, phone_e164: str) -> list[str]:
    return [m.body for m in sent(engine, to_phone=phone_e164)]


E164 = {VERA: "+447911100001", JO: "+447911100002", SAM: "+447911100003", MARGARET: "+447911100004"}


def test_prompt_goes_out_at_the_minute_not_before(oakfield, ok, engine, ticker):
    add_vera_checkin(ok)
    ticker(utc(*DAY, 8, 59, 59))
    assert sent(engine, kind="checkin") == []
    ticker(utc(*DAY, 9, 0, 0))
    [prompt] = sent(engine, kind="checkin")
    assert prompt.to_phone == E164[VERA] and prompt.channel == "sms"
    assert "Reply OK" in prompt.body and prompt.state == "sent"


def test_two_ticks_at_the_same_instant_send_nothing_twice(oakfield, ok, engine, ticker):
    add_vera_checkin(ok)
    for moment in (utc(*DAY, 9, 0), utc(*DAY, 9, 0), utc(*DAY, 9, 15), utc(*DAY, 9, 15),
                   utc(*DAY, 9, 30), utc(*DAY, 9, 30)):
        ticker(moment)
    kinds = [m.kind for m in sent(engine)]
    assert kinds.count("checkin") == 1
    assert kinds.count("reminder") == 1
    assert kinds.count("escalation") == 1


def test_cli_tick_twice_sends_once(oakfield, ok, engine):
    add_vera_checkin(ok)
    with freeze_time("2026-12-01 09:00:00"):
        first = ok("tick", "--json").stdout
        second = ok("tick", "--json").stdout
    assert '"prompted": 1' in first and '"prompted": 0' in second
    assert len(sent(engine, kind="checkin")) == 1


def test_ok_answers_and_nobody_is_disturbed(oakfield, ok, engine, ticker):
    add_vera_checkin(ok)
    ticker(utc(*DAY, 9, 0))
    out = receive(ok, VERA, "ok thanks love", "2026-12-01 09:07:00")
    assert "answered" in out
    for minute in range(9, 180, 5):
        ticker(utc(*DAY, 9, 0) + timedelta(minutes=minute))
    assert checkin_state(engine) == "answered"
    assert [m.kind for m in sent(engine)] == ["checkin"]


def test_no_reply_reminds_then_walks_the_chain_then_alerts_organisers(oakfield, ok, engine, ticker, run_cli):
    add_vera_checkin(ok)
    ticker(utc(*DAY, 9, 0))
    ticker(utc(*DAY, 9, 14, 59))
    assert not sent(engine, kind="reminder")
    ticker(utc(*DAY, 9, 15))  # half-way through the window
    assert len(sent(engine, kind="reminder")) == 1
    ticker(utc(*DAY, 9, 29, 59))
    assert not sent(engine, kind="escalation")
    ticker(utc(*DAY, 9, 30))
    [ask_jo] = sent(engine, kind="escalation")
    assert ask_jo.to_phone == E164[JO] and "Vera" in ask_jo.body and "07911 100001" in ask_jo.body
    ticker(utc(*DAY, 9, 49, 59))
    assert len(sent(engine, kind="escalation")) == 1
    ticker(utc(*DAY, 9, 50))  # Jo's 20 minutes are up
    assert [m.to_phone for m in sent(engine, kind="escalation")] == [E164[JO], E164[SAM]]
    ticker(utc(*DAY, 10, 10))  # Sam's too: the organisers
    [alert] = sent(engine, kind="alert")
    assert alert.to_phone == E164[MARGARET] and "Vera" in alert.body
    assert checkin_state(engine) == "alerted"
    # It stays open until a person acts, however long that takes; the alert is repeated
    # twice, three hours apart, then left on `status`.
    for hours in range(1, 30):
        ticker(utc(*DAY, 10, 10) + timedelta(hours=hours, minutes=1))
    alerts = [m for m in sent(engine, kind="alert") if m.checkin_id == alert.checkin_id]
    assert [m.created_at for m in alerts] == [utc(*DAY, 10, 10), utc(*DAY, 13, 11), utc(*DAY, 16, 11)]
    assert all(m.to_phone == E164[MARGARET] for m in alerts)
    with freeze_time("2026-12-02 16:00:00"):
        status = run_cli("status", "Oakfield").stdout
    assert "Vera: alerted" in status


def test_done_resolves_and_cant_passes_on_at_once(oakfield, ok, engine, ticker):
    add_vera_checkin(ok)
    ticker(utc(*DAY, 9, 0))
    ticker(utc(*DAY, 9, 30))
    receive(ok, JO, "Sorry I can't", "2026-12-01 09:33:00")
    assert [m.to_phone for m in sent(engine, kind="escalation")] == [E164[JO], E164[SAM]]
    assert "ask someone else" in bodies_to(engine, E164[JO])[-1]
    receive(ok, SAM, "done, she's fine", "2026-12-01 09:41:00")
    assert checkin_state(engine) == "resolved"
    assert bodies_to(engine, E164[SAM])[-1] == "Thank you, Sam."
    for minute in range(45, 300, 10):
        ticker(utc(*DAY, 9, 0) + timedelta(minutes=minute))
    assert not sent(engine, kind="alert")


def test_late_ok_stands_everyone_down_and_tells_whoever_was_asked(oakfield, ok, engine, ticker):
    add_vera_checkin(ok)
    for moment in (utc(*DAY, 9, 0), utc(*DAY, 9, 30), utc(*DAY, 9, 50), utc(*DAY, 10, 10)):
        ticker(moment)
    assert checkin_state(engine) == "alerted"
    receive(ok, VERA, "OK sorry was in the garden", "2026-12-01 10:20:00")
    assert checkin_state(engine) == "answered"
    told = {m.to_phone for m in sent(engine) if "no need to ring" in (m.body or "")}
    assert told == {E164[JO], E164[SAM], E164[MARGARET]}
    with session_scope(engine) as session:
        assert set(session.scalars(select(Task.state))) == {"stood_down"}


def test_help_alerts_the_first_contact_at_once_whatever_the_window(oakfield, ok, engine, ticker):
    add_vera_checkin(ok)
    ticker(utc(*DAY, 9, 0))
    receive(ok, VERA, "Can you call me please", "2026-12-01 09:02:00")
    [ask] = sent(engine, kind="escalation")
    assert ask.to_phone == E164[JO] and ask.priority == 0 and "asked for a call" in ask.body
    assert "we've asked Jo to ring you" in bodies_to(engine, E164[VERA])[-1]
    assert checkin_state(engine) == "escalating"
    # Vera hears back as urgently as Jo is asked (not behind a morning's prompts), Jo first.
    [ack] = sent(engine, kind="confirmation", to_phone=E164[VERA])
    assert ack.priority == 0 and ack.id > ask.id


def test_help_with_nothing_open_still_reaches_a_person(oakfield, ok, engine, ticker):
    add_vera_checkin(ok)
    ticker(utc(*DAY, 9, 0))
    receive(ok, VERA, "OK", "2026-12-01 09:02:00")
    receive(ok, VERA, "NOT OK", "2026-12-01 15:00:00")
    [ask] = sent(engine, kind="escalation")
    assert ask.to_phone == E164[JO] and "asked for a call" in ask.body
    ticker(utc(*DAY, 15, 20))  # Jo doesn't answer: Sam next, still urgent
    assert [m.priority for m in sent(engine, kind="escalation")] == [0, 0]


def test_unrecognised_reply_counts_as_contact_and_reaches_a_person(oakfield, ok, engine, ticker, run_cli):
    add_vera_checkin(ok)
    ticker(utc(*DAY, 9, 0))
    receive(ok, VERA, "the dog has been sick again", "2026-12-01 09:04:00")
    assert checkin_state(engine) == "answered"
    [forward] = sent(engine, to_phone=E164[MARGARET])
    assert "the dog has been sick again" in forward.body and "Vera" in forward.body
    with freeze_time("2026-12-01 10:00:00"):
        assert "the dog has been sick again" in run_cli("status", "Oakfield").stdout


def test_unknown_sender_changes_nothing_and_learns_nothing(oakfield, ok, engine, ticker):
    from tests.conftest import snapshot

    add_vera_checkin(ok)
    ticker(utc(*DAY, 9, 0))
    before = snapshot(engine)
    for text in ("OK", "HELP", "STOP", "DONE", "hello who is this"):
        out = receive(ok, "07911 100099", text, "2026-12-01 09:05:00")  # a real number, nobody's
        assert "nothing changed" in out
    assert snapshot(engine) == before


def test_stop_opts_out_tells_organiser_and_start_resumes(oakfield, ok, engine, ticker):
    add_vera_checkin(ok)
    receive(ok, VERA, "STOP", "2026-12-01 08:00:00")
    [notice] = sent(engine, to_phone=E164[MARGARET])
    assert "STOP" in notice.body and not sent(engine, to_phone=E164[VERA])  # Twilio replies itself
    ticker(utc(*DAY, 9, 0))
    assert not sent(engine, kind="checkin")
    assert checkin_state(engine) == "skipped"
    receive(ok, VERA, "START", "2026-12-01 12:00:00")
    assert "START" in sent(engine, to_phone=E164[MARGARET])[-1].body
    ticker(utc(2026, 12, 2, 9, 0))
    assert len(sent(engine, kind="checkin")) == 1


def test_a_stopped_member_asking_for_help_still_reaches_a_person(oakfield, ok, engine):
    add_vera_checkin(ok)
    receive(ok, VERA, "STOP", "2026-12-01 08:00:00")
    receive(ok, VERA, "HELP", "2026-12-01 08:30:00")
    [ask] = sent(engine, kind="escalation")
    assert ask.to_phone == E164[JO]


def test_pause_by_reply_and_back(oakfield, ok, engine, ticker):
    add_vera_checkin(ok)
    out = receive(ok, VERA, "away 2", "2026-12-01 07:30:00")
    assert "paused until 2026-12-02" in out
    ticker(utc(*DAY, 9, 0))
    ticker(utc(2026, 12, 2, 9, 0))
    assert not sent(engine, kind="checkin")
    ticker(utc(2026, 12, 3, 9, 0))
    assert len(sent(engine, kind="checkin")) == 1
    receive(ok, VERA, "PAUSE", "2026-12-03 09:05:00")  # answers today's too (it is contact)
    ticker(utc(2026, 12, 4, 9, 0))
    assert len(sent(engine, kind="checkin")) == 1
    receive(ok, VERA, "back", "2026-12-04 10:00:00")
    ticker(utc(2026, 12, 5, 9, 0))
    assert len(sent(engine, kind="checkin")) == 2


def test_member_pause_command_skips_until_the_date_inclusive(oakfield, ok, engine, ticker):
    add_vera_checkin(ok)
    with freeze_time("2026-11-30 12:00:00"):
        ok("member", "pause", "Oakfield", "Vera", "--until", "2026-12-02")
    for day in (1, 2, 3):
        ticker(utc(2026, 12, day, 9, 0))
    [prompt] = sent(engine, kind="checkin")
    assert prompt.created_at.day == 3


def test_paused_contact_is_skipped_in_the_chain(oakfield, ok, engine, ticker):
    add_vera_checkin(ok)
    with freeze_time("2026-11-30 12:00:00"):
        ok("member", "pause", "Oakfield", "Jo", "--until", "2026-12-05")
    ticker(utc(*DAY, 9, 0))
    ticker(utc(*DAY, 9, 30))
    [ask] = sent(engine, kind="escalation")
    assert ask.to_phone == E164[SAM]


def test_window_counts_from_the_actual_send_after_downtime(oakfield, ok, engine, ticker):
    add_vera_checkin(ok)
    # The service was down from before 09:00 until 13:00 the same day.
    ticker(utc(*DAY, 13, 0))
    [prompt] = sent(engine, kind="checkin")
    assert prompt.sent_at == utc(*DAY, 13, 0)
    ticker(utc(*DAY, 13, 29))
    assert not sent(engine, kind="escalation")  # no false alarm for the hours it was down
    ticker(utc(*DAY, 13, 30))
    assert len(sent(engine, kind="escalation")) == 1


def test_a_contacts_wait_counts_from_when_the_ask_left(oakfield, ok, engine, ticker):
    """The ask to Jo is queued at 09:30 but (behind a burst, say) leaves only at 09:40: it is
    marked sent with its provider id, and Jo's 20 minutes run from 09:40, not 09:30."""
    from phonetree.gateways.outbox import OutboxGateway
    from schedules import dispatcher
    from schedules.engine import step

    add_vera_checkin(ok)
    ticker(utc(*DAY, 9, 0))
    step(engine, utc(*DAY, 9, 30))  # the window closes; the ask is queued, not yet sent
    assert [m.state for m in sent(engine, kind="escalation")] == ["queued"]
    dispatcher.dispatch(engine, OutboxGateway(), utc(*DAY, 9, 40))
    [ask_jo] = sent(engine, kind="escalation")
    assert (ask_jo.state, ask_jo.sent_at, ask_jo.lease_until) == ("sent", utc(*DAY, 9, 40), None)
    assert ask_jo.provider_sid and ask_jo.gateway == "outbox"
    with session_scope(engine) as session:
        [task] = session.scalars(select(Task).where(Task.state == "asked"))
        assert task.expires_at == utc(*DAY, 10, 0)
    ticker(utc(*DAY, 9, 59, 59))
    assert len(sent(engine, kind="escalation")) == 1
    ticker(utc(*DAY, 10, 0))
    assert [m.to_phone for m in sent(engine, kind="escalation")] == [E164[JO], E164[SAM]]


def test_days_missed_while_down_are_reported_never_sent_late_or_raised_as_alarms(oakfield, ok, engine, ticker):
    add_vera_checkin(ok)
    ticker(utc(2026, 12, 3, 10, 0))  # down from 30 Nov until 3 Dec 10:00
    # One summary for the days missed, not an alarm per day (issue 12)
    [missed] = sent(engine, kind="alert")
    assert missed.to_phone == E164[MARGARET] and missed.template == "missed_summary"
    assert missed.body == ("Hi Margaret, the service was down, so 2 check-ins between Tue 01 Dec and "
                           "Wed 02 Dec weren't sent, for Vera. Please check on them.")
    with session_scope(engine) as session:
        assert sorted(c.occurrence for c in session.scalars(select(CheckIn).where(CheckIn.state == "missed"))) \
            == ["2026-12-01", "2026-12-02"]
    assert len(sent(engine, kind="checkin")) == 1  # today's goes out, late
    assert not sent(engine, kind="escalation")


@pytest.mark.parametrize("margaret", ["opted out", "phone not in use"])
def test_days_missed_while_down_reach_the_first_contact_when_no_organiser_can_be_told(
        oakfield, ok, engine, ticker, margaret):
    """Margaret, the only organiser, has opted out (or her number is dead): the summary of the
    days missed goes to Vera's first named contact, and `status` lists them. Before, it was
    addressed to Margaret alone, suppressed or failed, and no person heard of the missed days."""
    add_vera_checkin(ok)
    with session_scope(engine) as session:
        organiser = session.scalars(select(Member).where(Member.name == "Margaret")).one()
        if margaret == "opted out":
            organiser.opted_out = True
        else:
            organiser.phone_problem = "number not in use"
    ticker(utc(2026, 12, 3, 10, 0))  # down from 30 Nov until 3 Dec 10:00
    [missed] = sent(engine, kind="alert")
    assert missed.to_phone == E164[JO] and missed.template == "missed_summary"
    assert missed.body.startswith("Hi Jo, the service was down, so 2 check-ins between Tue 01 Dec and Wed 02 Dec")
    with freeze_time("2026-12-03 10:01:00"):
        text = ok("status", "Oakfield").stdout
        data = json.loads(ok("status", "Oakfield", "--json").stdout)
    assert [(m["member"], m["due_local"]) for m in data["missed_while_down"]] == [
        ("Vera", "Tue 01 Dec 09:00"), ("Vera", "Wed 02 Dec 09:00")]
    assert ("Not sent while the service was down (please check on them): Vera Tue 01 Dec 09:00, "
            "Vera Wed 02 Dec 09:00") in text


def test_quiet_hours_hold_routine_prompts_until_they_end(oakfield, ok, engine, ticker):
    with freeze_time("2026-11-30 12:00:00"):
        ok("checkin", "add", "Oakfield", "Vera", "--at", "08:30", "--window", "30m", "--escalate-to", "Jo")
        ok("group", "set", "Oakfield", "--quiet", "21:00-09:00")
    ticker(utc(*DAY, 8, 30))
    [prompt] = sent(engine, kind="checkin")
    assert prompt.state == "queued"
    ticker(utc(*DAY, 8, 59))
    assert sent(engine, kind="checkin")[0].state == "queued"
    ticker(utc(*DAY, 9, 0))
    assert sent(engine, kind="checkin")[0].sent_at == utc(*DAY, 9, 0)
    ticker(utc(*DAY, 9, 29))
    assert not sent(engine, kind="escalation")


def test_escalations_are_not_held_by_quiet_hours(oakfield, ok, engine, ticker):
    with freeze_time("2026-11-30 12:00:00"):
        ok("checkin", "add", "Oakfield", "Vera", "--at", "20:30", "--window", "1h", "--escalate-to", "Jo")
    ticker(utc(*DAY, 20, 30))
    ticker(utc(*DAY, 21, 30))  # inside quiet hours now; a person is still asked
    [ask] = sent(engine, kind="escalation")
    assert ask.state == "sent" and ask.sent_at == utc(*DAY, 21, 30)


def test_no_organiser_still_shows_on_status_and_warns_at_setup(ok, run_cli, engine, ticker):
    ok("group", "add", "Hill", "--timezone", "Europe/London")
    ok("member", "add", "Hill", "Vera", "--phone", VERA)
    ok("member", "add", "Hill", "Jo", "--phone", JO)
    with freeze_time("2026-11-30 12:00:00"):
        result = run_cli("checkin", "add", "Hill", "Vera", "--at", "09:00", "--escalate-to", "Jo")
    assert result.exit_code == 0 and "no organiser" in result.stderr
    for moment in (utc(*DAY, 9, 0), utc(*DAY, 9, 30), utc(*DAY, 9, 50)):
        ticker(moment)
    with freeze_time("2026-12-01 10:00:00"):
        assert "Vera: alerted" in run_cli("status", "Hill").stdout


def test_resolve_from_the_command_line_stands_down(oakfield, ok, engine, ticker):
    add_vera_checkin(ok)
    for moment in (utc(*DAY, 9, 0), utc(*DAY, 9, 30)):
        ticker(moment)
    with freeze_time("2026-12-01 09:40:00"):
        out = ok("resolve", "Oakfield", "Vera", "--note", "spoke to her daughter").stdout
    assert "1 person(s) told" in out
    assert checkin_state(engine) == "resolved"
