"""A provider outage is nobody's answer. With Twilio's API answering 500 for minutes, the chain
is not run to its end with nobody reached: each message is held and tried again (about once a
minute at most apart), the waits run from when it finally leaves, urgent messages go first when
it does, `status` says the provider is failing and since when, and the log says so at ERROR
once. (Issue 11 defect 3.) The real twilio client talks to the stand-in throughout."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from freezegun import freeze_time
from sqlalchemy import select

from phonetree import inbound
from phonetree.db import session_scope
from phonetree.models import CheckIn, Group, ProviderOutage, Task
from phonetree.status import group_status
from schedules import dispatcher
from schedules.engine import tick
from tests.conftest import JO, MARGARET, SAM, VERA, sent, utc
from tests.test_faults import twilio_gateway  # noqa: F401 - a fixture (standin is conftest's)

E164 = {VERA: "+447911100001", JO: "+447911100002", SAM: "+447911100003", MARGARET: "+447911100004"}
DAY = (2026, 12, 1)


def at(hour: int, minute: int = 0, second: int = 0) -> datetime:
    return utc(*DAY, hour, minute, second)


def add_checkin(ok, member: str = "Vera", time: str = "09:00", added: str = "2026-11-30 12:00:00") -> None:
    with freeze_time(added):
        ok("checkin", "add", "Oakfield", member, "--at", time, "--window", "30m",
           "--escalate-to", "Jo,Sam" if member != "Jo" else "Sam", "--escalation-wait", "20m")


def reply(engine, phone: str, text: str, when: datetime) -> None:
    """A reply as the webhook takes it (the CLI's `receive` would send with its own gateway)."""
    with session_scope(engine) as session:
        assert inbound.handle(session, when, phone, text).known


def run(engine, gateway, start: datetime, end: datetime, every: timedelta = timedelta(seconds=15)) -> None:
    moment = start
    while moment <= end:
        tick(engine, gateway, moment)
        moment += every


def tasks_now(engine) -> list[tuple[str, str]]:
    with session_scope(engine) as session:
        return [(t.assignee.name, t.state) for t in session.scalars(select(Task).order_by(Task.id))]


def outage_test_status(engine, when: datetime) -> dict:
    with session_scope(engine) as session:
        return group_status(session, session.scalar(select(Group)), when)


def test_five_minutes_of_500s_hold_the_ask_and_it_leaves_when_twilio_is_back(
        oakfield, ok, engine, standin, twilio_gateway, caplog):
    add_checkin(ok)
    tick(engine, twilio_gateway, at(9))  # the prompt leaves while all is well
    standin.fail_next("Messages", status=500, times=10_000)
    caplog.set_level(logging.INFO)
    run(engine, twilio_gateway, at(9, 30), at(9, 35))  # the window closes during the outage

    # Nobody said CANT; the chain did not move on; Jo's ask is waiting, tried many times.
    assert tasks_now(engine) == [("Jo", "asked")]
    [ask] = sent(engine, template="escalation")
    assert ask.state == "queued" and ask.attempts >= 5 and ask.to_phone == E164[JO]
    assert not sent(engine, to_phone=E164[SAM])
    data = outage_test_status(engine, at(9, 35))
    assert data["provider"]["failing_since"] == at(9, 30).isoformat()
    assert data["provider"]["waiting"] == 1 and "500" in data["provider"]["last_error"]
    assert [(a["name"], a["state"]) for a in data["open"][0]["asked"]] == [("Jo", "asked")]
    text = ok("status", "Oakfield").stdout
    assert "provider has been failing since Tue 01 Dec 09:30" in text
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "failing" in errors[0].getMessage()
    assert not [r for r in caplog.records if r.levelno == logging.WARNING and "held" in r.getMessage()]

    # Twilio is back at 09:35: the ask leaves within about a minute, and Jo's 20 minutes run
    # from then, not from 09:30.
    standin.recover("Messages")
    run(engine, twilio_gateway, at(9, 35, 5), at(9, 36, 30), every=timedelta(seconds=5))
    [ask] = sent(engine, template="escalation")
    assert ask.state == "sent" and ask.sent_at <= at(9, 36, 10)
    with session_scope(engine) as session:
        [task] = session.scalars(select(Task))
        assert task.expires_at == ask.sent_at + timedelta(minutes=20)
        [outage] = session.scalars(select(ProviderOutage))
        assert outage.ended_at == ask.sent_at
    assert outage_test_status(engine, at(9, 37))["provider"] is None
    tick(engine, twilio_gateway, ask.sent_at + timedelta(minutes=20) - timedelta(seconds=1))
    assert not sent(engine, to_phone=E164[SAM])
    tick(engine, twilio_gateway, ask.sent_at + timedelta(minutes=20))
    assert [m.template for m in sent(engine, to_phone=E164[SAM])] == ["escalation"]


def test_a_prompt_held_by_an_outage_starts_its_window_when_it_leaves(oakfield, ok, engine, standin,
                                                                      twilio_gateway):
    add_checkin(ok)
    standin.fail_next("Messages", status=503, times=10_000)
    run(engine, twilio_gateway, at(9), at(9, 40), every=timedelta(seconds=30))
    with session_scope(engine) as session:
        [checkin] = session.scalars(select(CheckIn).where(CheckIn.occurrence == "2026-12-01"))
        assert checkin.state == "prompting"  # never escalated: it was never sent
    assert not sent(engine, kind="escalation")
    standin.recover("Messages")
    run(engine, twilio_gateway, at(9, 40, 10), at(9, 41, 30), every=timedelta(seconds=10))
    [prompt] = sent(engine, kind="checkin")
    with session_scope(engine) as session:
        [checkin] = session.scalars(select(CheckIn).where(CheckIn.occurrence == "2026-12-01"))
        assert checkin.state == "sent" and checkin.window_ends_at == prompt.sent_at + timedelta(minutes=30)


def test_urgent_messages_go_first_when_the_provider_comes_back(oakfield, ok, engine, standin, twilio_gateway):
    for member, time in (("Jo", "09:00"), ("Sam", "09:00"), ("Margaret", "09:00")):
        with freeze_time("2026-11-30 12:00:00"):
            ok("checkin", "add", "Oakfield", member, "--at", time, "--escalate-to", "Vera")
    add_checkin(ok, time="08:00")
    tick(engine, twilio_gateway, at(8))  # Vera's prompt leaves, and she answers
    reply(engine, VERA, "ok", at(8, 5))
    standin.fail_next("Messages", status=500, times=10_000)
    run(engine, twilio_gateway, at(8, 59), at(9, 3))  # three prompts held
    reply(engine, VERA, "help", at(9, 3, 30))  # the ask to Jo is urgent
    run(engine, twilio_gateway, at(9, 3, 30), at(9, 5))
    waiting = [m for m in sent(engine) if m.state == "queued"]
    assert sorted(m.kind for m in waiting) == ["checkin"] * 3 + ["confirmation", "escalation"]
    standin.recover("Messages")
    posts_before = len(standin.requests_to("Messages"))
    run(engine, twilio_gateway, at(9, 5, 5), at(9, 6, 30), every=timedelta(seconds=5))
    accepted = [r for r in standin.requests_to("Messages")[posts_before:] if r.status == 201]
    # The HELP's ask to Jo and the acknowledgement to Vera (both urgent) before any routine prompt.
    assert sorted(r.params["To"] for r in accepted[:2]) == [E164[VERA], E164[JO]]
    assert len(accepted) == 5


def test_a_number_refused_for_good_still_passes_on_at_once(oakfield, ok, engine, standin, twilio_gateway):
    add_checkin(ok)
    tick(engine, twilio_gateway, at(9))
    standin.fail_next("Messages", status=400, code=21211, message="Invalid 'To' Phone Number")
    tick(engine, twilio_gateway, at(9, 30))
    assert tasks_now(engine)[0] == ("Jo", "unreachable")
    assert ("Sam", "asked") in tasks_now(engine)
    with session_scope(engine) as session:
        assert session.scalars(select(ProviderOutage)).all() == []  # not an outage


def test_backoff_is_capped_at_about_a_minute():
    for attempt in range(1, 40):
        assert dispatcher.backoff(attempt) <= dispatcher.MAX_BACKOFF
    assert dispatcher.backoff(30) >= timedelta(seconds=30)


def test_a_held_message_past_its_use_is_reported_not_sent(oakfield, ok, engine, standin, twilio_gateway):
    """A prompt the outage held past its day's end is reported as missed, not sent at 00:05."""
    add_checkin(ok, time="20:30", added="2026-12-01 12:00:00")
    standin.fail_next("Messages", status=500, times=10_000)
    run(engine, twilio_gateway, at(20, 30), at(23, 59, 59), every=timedelta(minutes=5))
    standin.recover("Messages")
    run(engine, twilio_gateway, utc(2026, 12, 2, 0, 0, 30), utc(2026, 12, 2, 0, 2))
    [prompt] = sent(engine, kind="checkin")
    assert prompt.state == "expired"
    [report] = sent(engine, template="missed")
    assert report.to_phone == E164[MARGARET] and report.state == "sent"
    with session_scope(engine) as session:
        [checkin] = session.scalars(select(CheckIn).where(CheckIn.occurrence == "2026-12-01"))
        assert checkin.state == "missed"


def test_an_ask_still_held_by_an_outage_is_withdrawn_when_the_member_replies(
        oakfield, ok, engine, standin, twilio_gateway):
    """Jo's ask never left (Twilio down); Vera then texts OK. Jo must not get, when Twilio is
    back, "please ring Vera" and then "no need to ring": nothing at all, as she was never asked."""
    add_checkin(ok)
    tick(engine, twilio_gateway, at(9))
    standin.fail_next("Messages", status=500, times=10_000)
    run(engine, twilio_gateway, at(9, 30), at(9, 32))
    [ask] = sent(engine, template="escalation")
    assert ask.state == "queued" and ask.to_phone == E164[JO]
    reply(engine, E164[VERA], "OK", at(9, 33))  # by a webhook: inbound SMS still arrives
    tried = [r for r in standin.requests_to("Messages") if r.params.get("To") == E164[JO]]
    assert tried  # (refused with 500s: it never left)
    standin.recover("Messages")
    run(engine, twilio_gateway, at(9, 34), at(9, 40), every=timedelta(seconds=10))
    assert [(m.template, m.state) for m in sent(engine, to_phone=E164[JO])] == [("escalation", "withdrawn")]
    assert tasks_now(engine) == [("Jo", "stood_down")]
    assert [r for r in standin.requests_to("Messages") if r.params.get("To") == E164[JO]] == tried


def test_an_ask_that_left_before_the_reply_still_gets_its_stand_down(oakfield, ok, engine, standin,
                                                                      twilio_gateway):
    add_checkin(ok)
    tick(engine, twilio_gateway, at(9))
    run(engine, twilio_gateway, at(9, 30), at(9, 31))
    reply(engine, E164[VERA], "OK", at(9, 33))
    run(engine, twilio_gateway, at(9, 33), at(9, 34))
    assert [(m.template, m.state) for m in sent(engine, to_phone=E164[JO])] == [
        ("escalation", "sent"), ("stand_down", "sent")]


def test_a_probe_refused_for_good_ends_the_outage_and_the_rest_leave_in_the_same_pass(
        oakfield, ok, engine, standin, twilio_gateway):
    """Found by the long simulation (seed 8001249): after a 429 burst the probe went to a number
    Twilio refuses for good. That is Twilio answering, so the outage is over; it used to stay on,
    the pass ended at the probe, and the rest of the queue, due already, waited for another."""
    for member in ("Jo", "Sam", "Margaret"):
        with freeze_time("2026-11-30 12:00:00"):
            ok("checkin", "add", "Oakfield", member, "--at", "09:00", "--escalate-to", "Vera")
    standin.fail_next("Messages", status=429, code=20429, times=3)  # the three claimed at 09:00
    tick(engine, twilio_gateway, at(9))
    assert sorted(m.state for m in sent(engine, kind="checkin")) == ["queued"] * 3
    assert outage_test_status(engine, at(9))["provider"] is not None
    standin.fail_next("Messages", status=400, code=21211, message="The 'To' number is not valid")
    posts = len(standin.requests_to("Messages"))
    tick(engine, twilio_gateway, at(9, 1))  # one pass: the probe, refused for good, then the rest
    statuses = [r.status for r in standin.requests_to("Messages")[posts:]]
    assert statuses[0] == 400 and set(statuses[1:]) == {201}  # (the bad number's own ask to Vera too)
    assert sorted(m.state for m in sent(engine, kind="checkin")) == ["failed", "sent", "sent"]
    assert outage_test_status(engine, at(9, 1))["provider"] is None
    with session_scope(engine) as session:
        [outage] = session.scalars(select(ProviderOutage))
        assert outage.ended_at == at(9, 1)
