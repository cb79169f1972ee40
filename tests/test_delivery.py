"""What happens when Twilio says no, or says later: every error path through the real engine,
the real twilio client and the stand-in, and the delivery callbacks over real HTTP."""
from __future__ import annotations

import threading
from datetime import timedelta
from typing import Iterator

import pytest
from freezegun import freeze_time
from sqlalchemy import select
from waitress.server import create_server

from phonetree.config import Settings
from phonetree.db import session_scope
from phonetree.gateways.twilio import TwilioGateway
from phonetree.models import CheckIn, Member
from phonetree.web import WebhookApp
from schedules.engine import tick
from tests.conftest import JO, MARGARET, VERA, sent, utc
from tests.twilio_standin import TwilioStandIn

PUBLIC = "https://tree.example.org"
DAY = (2026, 12, 1)


@pytest.fixture
def wired(engine) -> Iterator[tuple[TwilioStandIn, TwilioGateway]]:
    """The stand-in, our webhook app served by waitress, and a gateway pointed at the stand-in."""
    standin = TwilioStandIn(public_url=PUBLIC, number="+441522000000")
    # Port 0: waitress binds a free port as it is made, so nothing can take it meanwhile.
    server = create_server(WebhookApp(engine, standin.auth_token, PUBLIC, account_sid=standin.account_sid),
                           host="127.0.0.1", port=0, threads=2)
    standin.deliver_to = f"http://127.0.0.1:{server.effective_port}"
    with standin:
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        settings = Settings(gateway="twilio", public_url=PUBLIC, twilio_account_sid=standin.account_sid,
                            twilio_auth_token=standin.auth_token, twilio_from_number="+441522000000",
                            twilio_api_base_url=standin.base_url)
        try:
            yield standin, TwilioGateway.from_settings(settings)
        finally:
            server.close()
            thread.join(timeout=5)


@pytest.fixture
def morning(oakfield, ok, wired):
    with freeze_time("2026-11-30 12:00:00"):
        ok("checkin", "add", "Oakfield", "Vera", "--at", "09:00", "--window", "30m", "--escalate-to", "Jo",
           "--reminder", "off")
    return wired


def run(engine, gateway, *moments) -> None:
    for moment in moments:
        tick(engine, gateway, moment)


def checkin_state(engine) -> CheckIn:
    with session_scope(engine) as session:
        return session.scalars(select(CheckIn).where(CheckIn.state != "scheduled")).one()


def member(engine, name: str) -> Member:
    with session_scope(engine) as session:
        return session.scalars(select(Member).where(Member.name == name)).one()


def test_invalid_number_marks_it_and_escalates_at_once(engine, morning):
    standin, gateway = morning
    standin.fail_next("Messages", status=400, code=21211, message="The 'To' number is not a valid phone number.")
    run(engine, gateway, utc(*DAY, 9, 0))
    assert checkin_state(engine).state == "escalating"  # not at 09:30: now
    assert member(engine, "Vera").phone_problem == "number not in use"
    to = {m.params["To"] for m in standin.messages}
    assert "+447911100002" in to  # Jo asked to ring
    assert "+447911100004" in to  # Margaret told the number is bad
    # Never silent: the failed prompt is on record with its code.
    [prompt] = sent(engine, kind="checkin")
    assert prompt.state == "failed" and prompt.error.startswith("21211")


def test_a_landline_given_as_sms_switches_to_voice_and_tells_the_organiser(engine, morning):
    standin, gateway = morning
    standin.fail_next("Messages", status=400, code=21614, message="'To' number is not a valid mobile number")
    run(engine, gateway, utc(*DAY, 9, 0), utc(*DAY, 9, 0, 1))
    assert member(engine, "Vera").channel == "voice"
    [call] = standin.calls
    assert call.params["To"] == "+447911100001" and "Press 1" in call.params["Twiml"]
    notice = [m for m in standin.messages if m.params["To"] == "+447911100004"]
    assert len(notice) == 1 and "ring it instead" in notice[0].params["Body"]
    assert checkin_state(engine).state == "sent"  # the spoken prompt is the check-in now


def test_a_late_prompt_found_to_be_a_landline_in_quiet_hours_is_reported_missed_not_rung_next_day(
        oakfield, ok, engine, wired):
    """Long-run seed 15000012. Vera's 20:30 prompt waited out a provider outage; at 22:45 it is
    refused as a landline, and the spoken prompt would be held by quiet hours (22:00-08:00) past
    the end of its day. The day's check-in is reported to Margaret as missed now (before: it sat
    "prompting" all night, to be rung the next morning)."""
    standin, gateway = wired
    with freeze_time("2026-12-01 12:00:00"):  # today's is the first 20:30
        ok("group", "set", "Oakfield", "--quiet", "22:00-08:00")
        ok("checkin", "add", "Oakfield", "Vera", "--at", "20:30", "--window", "30m", "--escalate-to", "Jo",
           "--reminder", "off")
    standin.fail_next("Messages", status=503, times=1000)
    run(engine, gateway, utc(*DAY, 20, 30))
    standin.recover("Messages")
    standin.fail_next("Messages", status=400, code=21614, message="'To' number is not a valid mobile number")
    run(engine, gateway, utc(*DAY, 22, 45), utc(*DAY, 22, 45, 5))
    with session_scope(engine) as session:
        assert session.scalars(select(CheckIn.state).where(CheckIn.occurrence == "2026-12-01")).one() == "missed"
    assert [m for m in sent(engine, channel="voice")] == []
    [report] = sent(engine, template="missed")
    assert report.to_phone == "+447911100004"


def test_opted_out_at_twilio_is_recorded_and_never_retried(engine, morning):
    standin, gateway = morning
    standin.fail_next("Messages", status=400, code=21610, message="Attempt to send to unsubscribed recipient")
    run(engine, gateway, utc(*DAY, 9, 0), utc(*DAY, 9, 5))
    assert member(engine, "Vera").opted_out
    attempts = [r for r in standin.requests_to("Messages") if r.params.get("To") == "+447911100001"]
    assert len(attempts) == 1
    assert checkin_state(engine).state == "escalating"  # a person still checks on her


def test_geo_permission_error_is_shown_to_the_organiser(engine, morning, ok):
    standin, gateway = morning
    standin.fail_next("Messages", status=400, code=21408, message="Permission to send an SMS has not been enabled")
    run(engine, gateway, utc(*DAY, 9, 0))
    [prompt] = sent(engine, kind="checkin")
    assert prompt.state == "failed" and "Geo" in prompt.error
    with freeze_time("2026-12-01 09:01:00"):
        status = ok("status", "Oakfield").stdout
    assert "Geo" in status


@pytest.mark.parametrize("status, code", [(500, None), (429, 20429), (503, None), (400, 30001)])
def test_transient_errors_back_off_and_send_once(engine, morning, status, code):
    standin, gateway = morning
    standin.fail_next("Messages", status=status, code=code, message="try later")
    run(engine, gateway, utc(*DAY, 9, 0))
    [prompt] = sent(engine, kind="checkin")
    assert prompt.state == "queued" and prompt.not_before > utc(*DAY, 9, 0)
    assert (prompt.not_before - utc(*DAY, 9, 0)) <= timedelta(seconds=3)  # jittered 2 s +/- 50%
    run(engine, gateway, utc(*DAY, 9, 0, 1), utc(*DAY, 9, 0, 5), utc(*DAY, 9, 1))
    delivered = [m for m in standin.messages if m.params["To"] == "+447911100001"]
    assert len(delivered) == 1
    assert checkin_state(engine).sent_at == utc(*DAY, 9, 0, 5) or checkin_state(engine).sent_at == utc(*DAY, 9, 0, 1)


def test_phone_off_retries_later_then_a_person_is_asked(engine, morning):
    standin, gateway = morning
    run(engine, gateway, utc(*DAY, 9, 0))
    [message] = standin.messages
    with freeze_time("2026-12-01 09:02:00"):
        assert standin.send_status(message.sid, "undelivered", error_code=30003)[0] == 200
    run(engine, gateway, utc(*DAY, 9, 11), utc(*DAY, 9, 12))
    assert len([m for m in standin.messages if m.params["To"] == "+447911100001"]) == 2
    second = [m for m in standin.messages if m.params["To"] == "+447911100001"][1]
    with freeze_time("2026-12-01 09:14:00"):
        standin.send_status(second.sid, "undelivered", error_code=30003)
    assert checkin_state(engine).state == "escalating"


def test_status_callbacks_are_idempotent_and_only_move_forward(engine, morning):
    standin, gateway = morning
    run(engine, gateway, utc(*DAY, 9, 0))
    [message] = standin.messages
    with freeze_time("2026-12-01 09:01:00"):
        for status in ("delivered", "sent", "queued", "delivered", "undelivered"):
            assert standin.send_status(message.sid, status, error_code=30005 if status == "undelivered" else None)[0] == 200
    [prompt] = sent(engine, kind="checkin")
    assert prompt.state == "delivered" and prompt.provider_status == "delivered"
    assert checkin_state(engine).state == "sent"  # a late 'undelivered' after 'delivered' changed nothing


def test_unknown_number_receipt_escalates_now(engine, morning):
    standin, gateway = morning
    run(engine, gateway, utc(*DAY, 9, 0))
    [message] = standin.messages
    with freeze_time("2026-12-01 09:03:00"):
        standin.send_status(message.sid, "undelivered", error_code=30005)
    assert checkin_state(engine).state == "escalating"
    assert member(engine, "Vera").phone_problem == "number not in use"


def test_voice_no_answer_redials_once_then_the_window_runs(engine, oakfield, ok, wired):
    standin, gateway = wired
    with freeze_time("2026-11-30 12:00:00"):
        ok("member", "add", "Oakfield", "Lil", "--phone", "01522 500001")
        ok("checkin", "add", "Oakfield", "Lil", "--at", "09:00", "--window", "30m", "--escalate-to", "Jo",
           "--reminder", "off")
    run(engine, gateway, utc(*DAY, 9, 0))
    [call] = standin.calls
    with freeze_time("2026-12-01 09:01:00"):
        standin.send_call_status(call.sid, "no-answer")
        standin.send_call_status(call.sid, "no-answer")  # delivered twice: one redial
    run(engine, gateway, utc(*DAY, 9, 5), utc(*DAY, 9, 6))
    assert len(standin.calls) == 2
    with freeze_time("2026-12-01 09:07:00"):
        standin.send_call_status(standin.calls[1].sid, "completed", answered_by="machine_start")
    run(engine, gateway, utc(*DAY, 9, 20))
    assert len(standin.calls) == 2  # no third call after a machine
    run(engine, gateway, utc(*DAY, 9, 30))
    asks = [m for m in standin.messages if m.params["To"] == "+447911100002"]
    assert len(asks) == 1 and "Lil" in asks[0].params["Body"]


def test_escalation_keypress_on_a_landline_contact(engine, ok, wired):
    standin, gateway = wired
    with freeze_time("2026-11-30 12:00:00"):
        ok("group", "add", "Hill", "--timezone", "Europe/London")
        ok("member", "add", "Hill", "Vera", "--phone", VERA)
        ok("member", "add", "Hill", "Lil", "--phone", "01522 500001")
        ok("member", "add", "Hill", "Jo", "--phone", JO)
        ok("member", "add", "Hill", "Margaret", "--phone", MARGARET, "--role", "organiser")
        ok("checkin", "add", "Hill", "Vera", "--at", "09:00", "--window", "30m", "--escalate-to", "Lil,Jo",
           "--reminder", "off")
    run(engine, gateway, utc(*DAY, 9, 0), utc(*DAY, 9, 30))
    [call] = standin.calls
    assert "Vera has not replied" in call.params["Twiml"]
    with freeze_time("2026-12-01 09:31:00"):
        status, twiml = standin.press_key(call.sid, "2")  # Lil can't
    assert status == 200 and "someone else" in twiml
    run(engine, gateway, utc(*DAY, 9, 31))
    assert [m.params["To"] for m in standin.messages][-1] == "+447911100002"  # Jo next, at once


def test_a_retry_of_an_ask_is_not_sent_once_the_chain_has_moved_on(engine, oakfield, ok):
    """Jo's phone is off for her ask (30003): it is to be tried again ten minutes later. Her 5
    minutes run out first and Sam is asked. The retry, still queued, is not sent then: the chain
    has moved on without her (it was: "please ring Vera" to Jo after Sam had been asked)."""
    from phonetree import delivery
    from phonetree.gateways import base
    from phonetree.gateways.outbox import OutboxGateway
    from phonetree.models import Message

    with freeze_time("2026-11-30 12:00:00"):
        ok("checkin", "add", "Oakfield", "Vera", "--at", "09:00", "--window", "30m", "--escalate-to", "Jo,Sam",
           "--escalation-wait", "5m", "--reminder", "off")
    gateway = OutboxGateway()

    def run_at(*moments: tuple[int, int]) -> None:
        for hour, minute in moments:
            tick(engine, gateway, utc(*DAY, hour, minute))

    run_at((9, 0), (9, 30))  # no reply: Jo is asked at 09:30
    with session_scope(engine) as session:
        ask = session.scalars(select(Message).where(Message.to_phone == "+447911100002")).one()
        delivery.message_status(session, utc(*DAY, 9, 31), ask, "undelivered", base.RETRY_LATER, "30003")
    run_at((9, 35))  # her 5 minutes are up: Sam is asked
    assert [m.template for m in sent(engine, to_phone="+447911100003")] == ["escalation"]
    run_at((9, 41), (9, 42))
    assert [(m.purpose, m.state) for m in sent(engine, to_phone="+447911100002")] == [
        ("ask", "failed"), ("later", "withdrawn")]
