"""What happens after a message leaves (phonetree/delivery.py), at the edges the rest of the
suite left open: each test kills mutants that survived it (bench/mutation.py --module delivery).
The rules held are the module's docstrings and the README: a call a person picked up is
delivered and is nobody's silence; an answering machine or no answer is no answer (a check-in
call is tried once more, never after a machine; an escalation call passes on at once); a
message that will never arrive still reaches a person by another way."""
from __future__ import annotations

import logging
import re
import threading
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

import pytest
from click.testing import Result
from freezegun import freeze_time
from waitress.server import create_server
from sqlalchemy import Engine, select

from phonetree.db import session_scope
from phonetree.gateways.base import Gateway
from phonetree.gateways.twilio import TwilioGateway
from phonetree.models import CheckIn, Event, Group, Member, Task
from schedules.engine import tick
from tests.conftest import JO, LANDLINE, MARGARET, SAM, VERA, outbox_json
from tests.test_delivery import wired  # noqa: F401 - the fixture: the stand-in, our webhooks, the gateway
from tests.twilio_standin import TwilioStandIn

Wired = tuple[TwilioStandIn, TwilioGateway]
Ok = Callable[..., Result]


DAY = "2026-12-01"


def _utc(hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(2026, 12, 1, hour, minute, second, tzinfo=timezone.utc)  # London is on UTC


def _run(engine: Engine, gateway: Gateway, *moments: datetime) -> None:
    for moment in moments:
        tick(engine, gateway, moment)


def _at(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _outbox(ok: Ok, to: str) -> list[dict[str, Any]]:
    return [m for m in outbox_json(ok) if m["to"] == to]


def _checkin_state(engine: Engine) -> str:
    with session_scope(engine) as session:
        return session.scalars(select(CheckIn.state).where(CheckIn.state != "scheduled")).one()


def _events(engine: Engine, kind: str) -> list[str | None]:
    with session_scope(engine) as session:
        return list(session.scalars(select(Event.detail).where(Event.kind == kind).order_by(Event.id)))


def _trail(engine: Engine, kind: str) -> list[tuple[Any, ...]]:
    """The recorded transitions of one kind (models.Event: what an organiser reads back), with
    the group, member and check-in they are about as names and dates."""
    with session_scope(engine) as session:
        names = {m.id: m.name for m in session.scalars(select(Member))}
        groups = {g.id: g.name for g in session.scalars(select(Group))}
        occurrences = {c.id: c.occurrence for c in session.scalars(select(CheckIn))}
        return [(e.at.strftime("%H:%M"), groups.get(e.group_id), names.get(e.member_id),  # type: ignore[arg-type]
                 occurrences.get(e.checkin_id), e.detail)  # type: ignore[arg-type]
                for e in session.scalars(select(Event).where(Event.kind == kind).order_by(Event.id))]


def _words(twiml: str) -> list[str]:
    return re.findall(r"<Say[^>]*>(.*?)</Say>", twiml)


def _status(ok: Ok, group: str, moment: datetime) -> str:
    with freeze_time(_at(moment)):
        return ok("status", group).stdout


def _landline_checkin(ok: Ok, reminder: str = "off") -> None:
    """Oakfield's Lil, on a landline: rung at 09:00 for her check-in, Jo after 30 minutes."""
    with freeze_time("2026-11-30 12:00:00"):
        ok("member", "add", "Oakfield", "Lil", "--phone", LANDLINE)
        ok("checkin", "add", "Oakfield", "Lil", "--at", "09:00", "--window", "30m", "--escalate-to", "Jo",
           "--reminder", reminder)


def _landline_contact(ok: Ok) -> None:
    """Hill: Vera checks in by text at 09:00; Lil (a landline, so rung) is asked first, then Jo."""
    with freeze_time("2026-11-30 12:00:00"):
        ok("group", "add", "Hill", "--timezone", "Europe/London")
        ok("member", "add", "Hill", "Vera", "--phone", VERA)
        ok("member", "add", "Hill", "Lil", "--phone", LANDLINE)
        ok("member", "add", "Hill", "Jo", "--phone", JO)
        ok("member", "add", "Hill", "Sam", "--phone", SAM)
        ok("member", "add", "Hill", "Margaret", "--phone", MARGARET, "--role", "organiser")
        ok("checkin", "add", "Hill", "Vera", "--at", "09:00", "--window", "30m", "--escalate-to", "Lil,Jo,Sam",
           "--escalation-wait", "20m", "--reminder", "off")


# --- call_status: who picked up ---------------------------------------------------------------

def test_a_checkin_call_a_person_picked_up_is_delivered_and_not_rung_again(
        engine: Engine, oakfield: str, ok: Ok, wired: Wired) -> None:
    # Lil picked up and put the phone down without pressing a key: the call reached her. It is
    # shown as delivered, it is not redialled (a redial is for no answer), and her check-in still
    # waits for her answer until its window ends.
    standin, gateway = wired
    _landline_checkin(ok)
    _run(engine, gateway, _utc(9, 0))
    [call] = standin.calls
    with freeze_time("2026-12-01 09:01:00"):
        assert standin.send_call_status(call.sid, "completed", answered_by="human", duration=20)[0] == 200
    _run(engine, gateway, _utc(9, 6), _utc(9, 7))
    assert len(standin.calls) == 1
    [shown] = _outbox(ok, "+441522500001")
    assert shown["state"] == "delivered" and shown["error"] is None
    assert _events(engine, "call_unanswered") == []
    assert _checkin_state(engine) == "sent"


def test_an_escalation_call_a_machine_answered_passes_to_the_next_contact_at_once(
        engine: Engine, ok: Ok, wired: Wired) -> None:
    # Lil's answering machine took the call asking her to ring Vera: nobody heard it, so Jo is
    # asked now, not after Lil's 20 minutes.
    standin, gateway = wired
    _landline_contact(ok)
    _run(engine, gateway, _utc(9, 0), _utc(9, 30))
    [call] = standin.calls
    assert "Vera has not replied" in call.params["Twiml"]
    with freeze_time("2026-12-01 09:31:00"):
        assert standin.send_call_status(call.sid, "completed", answered_by="machine_end_beep")[0] == 200
    _run(engine, gateway, _utc(9, 31))
    assert [m["to"] for m in _outbox(ok, "+447911100002")] == ["+447911100002"]
    [shown] = _outbox(ok, "+441522500001")
    assert shown["error"] == "answering machine"


def test_an_escalation_call_a_person_picked_up_gives_them_their_wait(
        engine: Engine, ok: Ok, wired: Wired) -> None:
    # Lil heard the request and hung up without pressing a key: she may be on her way. Jo is
    # asked when Lil's 20 minutes are up, not at once.
    standin, gateway = wired
    _landline_contact(ok)
    _run(engine, gateway, _utc(9, 0), _utc(9, 30))
    [call] = standin.calls
    with freeze_time("2026-12-01 09:31:00"):
        assert standin.send_call_status(call.sid, "completed", answered_by="human", duration=15)[0] == 200
    _run(engine, gateway, _utc(9, 31), _utc(9, 45))
    assert _outbox(ok, "+447911100002") == []
    [shown] = _outbox(ok, "+441522500001")
    assert shown["state"] == "delivered"
    _run(engine, gateway, _utc(9, 50), _utc(9, 50, 5))
    assert len(_outbox(ok, "+447911100002")) == 1


def test_a_checkin_call_a_machine_answered_is_not_rung_again(
        engine: Engine, oakfield: str, ok: Ok, wired: Wired) -> None:
    # Ofcom: no repeated calls to a machine. The first call reached one: no redial, the window
    # runs, and at its end Jo is asked.
    standin, gateway = wired
    _landline_checkin(ok)
    _run(engine, gateway, _utc(9, 0))
    [call] = standin.calls
    with freeze_time("2026-12-01 09:01:00"):
        standin.send_call_status(call.sid, "completed", answered_by="machine_start")
    _run(engine, gateway, _utc(9, 6), _utc(9, 7), _utc(9, 20))
    assert len(standin.calls) == 1
    [shown] = _outbox(ok, "+441522500001")
    assert shown["error"] == "answering machine"
    assert _checkin_state(engine) == "sent"
    _run(engine, gateway, _utc(9, 30))
    assert len(_outbox(ok, "+447911100002")) == 1


def test_a_checkin_call_nobody_answered_is_redialled_once_five_minutes_later(
        engine: Engine, oakfield: str, ok: Ok, wired: Wired) -> None:
    standin, gateway = wired
    _landline_checkin(ok)
    _run(engine, gateway, _utc(9, 0))
    [call] = standin.calls
    with freeze_time("2026-12-01 09:01:00"):
        standin.send_call_status(call.sid, "no-answer")
    _run(engine, gateway, _utc(9, 3), _utc(9, 5, 59))
    assert len(standin.calls) == 1  # not before five minutes
    _run(engine, gateway, _utc(9, 6))
    assert len(standin.calls) == 2
    with freeze_time("2026-12-01 09:07:00"):
        standin.send_call_status(standin.calls[1].sid, "busy")
    _run(engine, gateway, _utc(9, 12), _utc(9, 13), _utc(9, 20))
    assert len(standin.calls) == 2  # the redial is the last try: the window and Jo do the rest
    assert [m["error"] for m in _outbox(ok, "+441522500001")] == ["no-answer", "busy"]
    assert _trail(engine, "call_unanswered") == [("09:01", "Oakfield", "Lil", DAY, "no-answer"),
                                                 ("09:07", "Oakfield", "Lil", DAY, "busy")]
    assert _checkin_state(engine) == "sent"
    _run(engine, gateway, _utc(9, 30))
    assert len(_outbox(ok, "+447911100002")) == 1


def test_a_reminder_call_nobody_answered_is_redialled_too(
        engine: Engine, oakfield: str, ok: Ok, wired: Wired) -> None:
    standin, gateway = wired
    _landline_checkin(ok, reminder="10m")
    _run(engine, gateway, _utc(9, 0))
    with freeze_time("2026-12-01 09:01:00"):
        standin.send_call_status(standin.calls[0].sid, "completed", answered_by="human")
    _run(engine, gateway, _utc(9, 10), _utc(9, 10, 5))
    assert len(standin.calls) == 2  # the reminder
    with freeze_time("2026-12-01 09:11:00"):
        standin.send_call_status(standin.calls[1].sid, "no-answer")
    _run(engine, gateway, _utc(9, 16), _utc(9, 16, 5))
    assert len(standin.calls) == 3
    # The same words again (only the message id in the keypress URL differs).
    reminder = _words(standin.calls[1].params["Twiml"])
    assert reminder and _words(standin.calls[2].params["Twiml"]) == reminder


def test_an_escalation_call_nobody_answered_passes_on_at_once_as_no_answer(
        engine: Engine, ok: Ok, wired: Wired) -> None:
    # README: the next contact is asked at once, shown as not reached, never as Lil's CANT.
    standin, gateway = wired
    _landline_contact(ok)
    _run(engine, gateway, _utc(9, 0), _utc(9, 30))
    [call] = standin.calls
    with freeze_time("2026-12-01 09:31:00"):
        assert standin.send_call_status(call.sid, "no-answer")[0] == 200
    _run(engine, gateway, _utc(9, 31))
    assert len(_outbox(ok, "+447911100002")) == 1
    status = _status(ok, "Hill", _utc(9, 32))
    assert "Lil (no_answer)" in status and "cant" not in status
    assert len(standin.calls) == 1  # an escalation call is not redialled: the next person is asked


def test_a_late_no_answer_after_the_contacts_wait_ran_out_skips_nobody(
        engine: Engine, ok: Ok, wired: Wired) -> None:
    # Lil's 20 minutes ran out and Jo was asked; then Twilio's delayed status for Lil's call
    # says nobody answered. Lil's ask is already closed: Jo keeps her own 20 minutes.
    standin, gateway = wired
    _landline_contact(ok)
    _run(engine, gateway, _utc(9, 0), _utc(9, 30), _utc(9, 50), _utc(9, 50, 5))
    assert len(_outbox(ok, "+447911100002")) == 1
    with freeze_time("2026-12-01 09:51:00"):
        assert standin.send_call_status(standin.calls[0].sid, "no-answer")[0] == 200
    _run(engine, gateway, _utc(9, 51), _utc(10, 0))
    assert _outbox(ok, "+447911100003") == []  # Sam not yet
    status = _status(ok, "Hill", _utc(10, 1))
    assert "Lil (expired)" in status
    _run(engine, gateway, _utc(10, 10), _utc(10, 10, 5))
    assert len(_outbox(ok, "+447911100003")) == 1


# --- message_status: receipts in any order -----------------------------------------------------

def _vera_at_nine(ok: Ok, reminder: str = "off") -> None:
    with freeze_time("2026-11-30 12:00:00"):
        ok("checkin", "add", "Oakfield", "Vera", "--at", "09:00", "--window", "30m", "--escalate-to", "Jo",
           "--reminder", reminder)


def test_an_undelivered_receipt_after_a_sent_one_still_reaches_a_person(
        engine: Engine, oakfield: str, ok: Ok, wired: Wired) -> None:
    # Twilio reports "sent" (handed to the network), then "undelivered" (unknown number): the
    # later, worse news is acted on, not dropped because a receipt came first.
    standin, gateway = wired
    _vera_at_nine(ok)
    _run(engine, gateway, _utc(9, 0))
    [prompt] = standin.messages
    with freeze_time("2026-12-01 09:01:00"):
        assert standin.send_status(prompt.sid, "sent")[0] == 200
    assert _outbox(ok, "+447911100001")[0]["state"] == "sent"
    with freeze_time("2026-12-01 09:02:00"):
        assert standin.send_status(prompt.sid, "undelivered", error_code=30005)[0] == 200
    assert _checkin_state(engine) == "escalating"
    [shown] = _outbox(ok, "+447911100001")
    assert shown["state"] == "failed" and shown["error"] == "30005: delivery failed"
    _run(engine, gateway, _utc(9, 2))
    assert len(_outbox(ok, "+447911100002")) == 1  # Jo, at once


def test_a_failed_receipt_without_a_code_is_a_failure_too(
        engine: Engine, oakfield: str, ok: Ok, wired: Wired) -> None:
    # "failed" (Twilio could not send it at all), with no ErrorCode: Vera's prompt did not
    # arrive, so a person is asked now, and status lists the failure as it is.
    standin, gateway = wired
    _vera_at_nine(ok)
    _run(engine, gateway, _utc(9, 0))
    [prompt] = standin.messages
    with freeze_time("2026-12-01 09:01:00"):
        assert standin.send_status(prompt.sid, "failed")[0] == 200
    assert _checkin_state(engine) == "escalating"
    [shown] = _outbox(ok, "+447911100001")
    assert shown["state"] == "failed" and shown["error"] == "delivery failed"
    _run(engine, gateway, _utc(9, 1))
    assert len(_outbox(ok, "+447911100002")) == 1
    assert "prompt undeliverable: not delivered" in _status(ok, "Oakfield", _utc(9, 2))


def test_a_read_receipt_means_it_arrived_even_before_the_delivered_one(
        engine: Engine, oakfield: str, ok: Ok, wired: Wired) -> None:
    standin, gateway = wired
    _vera_at_nine(ok)
    _run(engine, gateway, _utc(9, 0))
    [prompt] = standin.messages
    with freeze_time("2026-12-01 09:01:00"):
        assert standin.send_status(prompt.sid, "read")[0] == 200
        assert standin.send_status(prompt.sid, "delivered")[0] == 200
    assert _outbox(ok, "+447911100001")[0]["state"] == "delivered"


def test_a_sending_receipt_for_a_prompt_never_marked_sent_stops_it_going_twice(
        engine: Engine, oakfield: str, ok: Ok, caplog: pytest.LogCaptureFixture) -> None:
    # The worker died after Twilio took the prompt and before marking it; Twilio's "sending"
    # receipt says it left. Its lease running out must not send Vera the same text again.
    from phonetree import delivery
    from phonetree.gateways.outbox import OutboxGateway
    from phonetree.models import Message
    from schedules import dispatcher
    from schedules.engine import step

    _vera_at_nine(ok)
    step(engine, _utc(9, 0))
    with session_scope(engine) as session:
        [prompt] = dispatcher._claim(session, _utc(9, 0), 10, dispatcher.LEASE)
        prompt_id = prompt.id
    with caplog.at_level(logging.INFO, logger="phonetree.delivery"), session_scope(engine) as session:
        assert delivery.message_status(session, _utc(9, 0, 20), session.get_one(Message, prompt_id), "sending",
                                       None, None)
    # The operator's log says which message it was, and what was done.
    assert [r.getMessage() for r in caplog.records if r.name == "phonetree.delivery"] == [
        f"message {prompt_id}: a receipt arrived before its send was recorded; marked sent"]
    gateway = OutboxGateway()
    _run(engine, gateway, _utc(9, 3), _utc(9, 4))  # past the 120 s lease
    [shown] = _outbox(ok, "+447911100001")
    assert shown["state"] == "sent" and shown["sent_at"] == "2026-12-01T09:00:20+00:00"
    assert _checkin_state(engine) == "sent"


def test_a_receipt_for_a_prompt_given_up_on_is_still_recorded(
        engine: Engine, oakfield: str, ok: Ok, wired: Wired) -> None:
    # The 09:00 prompt's send timed out (Twilio had in fact taken it); the service was then
    # down until the next day, when the prompt had expired unsent as far as we knew. Twilio's
    # receipt for the first try then says it arrived: the outbox shows it delivered.
    from phonetree.config import Settings

    standin, _ = wired
    settings = Settings(gateway="twilio", public_url="https://tree.example.org",
                        twilio_account_sid=standin.account_sid, twilio_auth_token=standin.auth_token,
                        twilio_from_number="+441522000000", twilio_api_base_url=standin.base_url)
    impatient = TwilioGateway.from_settings(settings, timeout=0.5)
    _vera_at_nine(ok)
    standin.delay_next("Messages", 1.5)
    _send_once(engine, impatient, _utc(9, 0))
    assert _outbox(ok, "+447911100001")[0]["state"] == "queued"  # we don't know it left
    tomorrow = datetime(2026, 12, 2, 0, 0, 30, tzinfo=timezone.utc)
    _run(engine, impatient, tomorrow)
    assert _outbox(ok, "+447911100001")[0]["state"] == "expired"
    # A prompt whose day ended unsent is reported as missed, never raised as "no reply": Jo
    # is not asked; Margaret hears of it.
    assert _checkin_state(engine) == "missed"
    assert _outbox(ok, "+447911100002") == []
    assert len(_outbox(ok, "+447911100004")) == 1
    [taken] = standin.messages
    with freeze_time("2026-12-02 00:01:00"):
        assert standin.send_status(taken.sid, "delivered")[0] == 200
    assert _outbox(ok, "+447911100001")[0]["state"] == "delivered"


def _send_once(engine: Engine, gateway: Gateway, moment: datetime) -> None:
    """A tick that tries one message only: the timed-out send is not tried again in the same
    pass (a loaded machine can take longer than its backoff to get there)."""
    from schedules import dispatcher
    from schedules.engine import step

    step(engine, moment)
    dispatcher.dispatch(engine, gateway, moment, limit=1)


def _impatient(standin: TwilioStandIn) -> TwilioGateway:
    """A gateway to the stand-in that gives up on an answer after half a second."""
    from phonetree.config import Settings

    settings = Settings(gateway="twilio", public_url="https://tree.example.org",
                        twilio_account_sid=standin.account_sid, twilio_auth_token=standin.auth_token,
                        twilio_from_number="+441522000000", twilio_api_base_url=standin.base_url)
    return TwilioGateway.from_settings(settings, timeout=0.5)


def test_a_receipt_while_a_timed_out_send_waits_to_be_retried_stops_the_retry(
        engine: Engine, oakfield: str, ok: Ok, wired: Wired) -> None:
    # We gave up waiting for Twilio's answer (it had taken the text) and held the prompt for
    # another try; its receipt then arrives. It left: it is marked sent, and Vera gets it once.
    standin, _ = wired
    gateway = _impatient(standin)
    _vera_at_nine(ok)
    standin.delay_next("Messages", 1.5)
    _send_once(engine, gateway, _utc(9, 0))
    assert _outbox(ok, "+447911100001")[0]["state"] == "queued"
    [taken] = standin.messages
    with freeze_time("2026-12-01 09:00:01"):
        assert standin.send_status(taken.sid, "delivered")[0] == 200
    _run(engine, gateway, _utc(9, 0, 5), _utc(9, 1))
    assert [m.params["To"] for m in standin.messages] == ["+447911100001"]
    [shown] = _outbox(ok, "+447911100001")
    assert shown["state"] == "delivered" and shown["sent_at"] == "2026-12-01T09:00:01+00:00"
    assert _checkin_state(engine) == "sent"


def test_a_phone_that_is_off_is_tried_again_in_ten_minutes_not_at_once(
        engine: Engine, oakfield: str, ok: Ok, wired: Wired) -> None:
    standin, gateway = wired
    _vera_at_nine(ok)
    _run(engine, gateway, _utc(9, 0))
    with freeze_time("2026-12-01 09:02:00"):
        standin.send_status(standin.messages[0].sid, "undelivered", error_code=30003)
    _run(engine, gateway, _utc(9, 2), _utc(9, 5), _utc(9, 11, 59))
    assert len(standin.messages) == 1
    _run(engine, gateway, _utc(9, 12))
    assert [m.params["To"] for m in standin.messages] == ["+447911100001", "+447911100001"]


def test_a_bad_number_notice_says_we_could_not_reach_them(
        engine: Engine, oakfield: str, ok: Ok, wired: Wired) -> None:
    standin, gateway = wired
    _vera_at_nine(ok)
    standin.fail_next("Messages", status=400, code=21211, message="The 'To' number is not a valid phone number.")
    _run(engine, gateway, _utc(9, 0))
    [notice] = [m for m in standin.messages if m.params["To"] == "+447911100004"]
    assert "couldn't reach Vera" in notice.params["Body"] and "number not in use" in notice.params["Body"]
    assert "ring it instead" not in notice.params["Body"]


def test_a_notice_about_a_failure_that_fails_too_is_logged_not_renotified(
        engine: Engine, oakfield: str, ok: Ok, wired: Wired, caplog: pytest.LogCaptureFixture) -> None:
    # Margaret's notice that Vera's number is bad comes back undelivered itself: the log says so
    # at ERROR, with Twilio's code, and no notice about the notice is sent (no loop).
    standin, gateway = wired
    _vera_at_nine(ok)
    standin.fail_next("Messages", status=400, code=21211, message="The 'To' number is not a valid phone number.")
    _run(engine, gateway, _utc(9, 0))
    [notice] = [m for m in standin.messages if m.params["To"] == "+447911100004"]
    with caplog.at_level(logging.ERROR), freeze_time("2026-12-01 09:01:00"):
        assert standin.send_status(notice.sid, "undelivered", error_code=30006)[0] == 200
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == ["a notice about a failed message could not be delivered either (30006: delivery failed)"]
    _run(engine, gateway, _utc(9, 2))
    assert len([m for m in standin.messages if m.params["To"] == "+447911100004"]) == 1


@pytest.fixture
def woken(engine: Engine) -> Iterator[tuple[TwilioStandIn, TwilioGateway, list[str]]]:
    """As `wired`, with the webhook app's on_change (the service's "send now") recorded."""
    from phonetree.config import Settings
    from phonetree.web import WebhookApp

    wakes: list[str] = []
    standin = TwilioStandIn(public_url="https://tree.example.org", number="+441522000000")
    app = WebhookApp(engine, standin.auth_token, "https://tree.example.org", account_sid=standin.account_sid,
                     on_change=lambda: wakes.append("wake"))
    server = create_server(app, host="127.0.0.1", port=0, threads=2)
    standin.deliver_to = f"http://127.0.0.1:{server.effective_port}"
    with standin:
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        settings = Settings(gateway="twilio", public_url="https://tree.example.org",
                            twilio_account_sid=standin.account_sid, twilio_auth_token=standin.auth_token,
                            twilio_from_number="+441522000000", twilio_api_base_url=standin.base_url)
        try:
            yield standin, TwilioGateway.from_settings(settings), wakes
        finally:
            server.close()
            thread.join(timeout=5)


def test_an_undelivered_prompt_wakes_the_sender_for_the_contact_it_asks(
        engine: Engine, oakfield: str, ok: Ok, woken: tuple[TwilioStandIn, TwilioGateway, list[str]]) -> None:
    # The receipt queues Jo's ask, due now: the service must send it now, not at its next tick.
    standin, gateway, wakes = woken
    _vera_at_nine(ok)
    _run(engine, gateway, _utc(9, 0))
    with freeze_time("2026-12-01 09:01:00"):
        standin.send_status(standin.messages[0].sid, "undelivered", error_code=30005)
    assert wakes == ["wake"]


def test_an_escalation_call_nobody_answered_wakes_the_sender_for_the_next_contact(
        engine: Engine, ok: Ok, woken: tuple[TwilioStandIn, TwilioGateway, list[str]]) -> None:
    standin, gateway, wakes = woken
    _landline_contact(ok)
    _run(engine, gateway, _utc(9, 0), _utc(9, 30))
    with freeze_time("2026-12-01 09:31:00"):
        standin.send_call_status(standin.calls[0].sid, "busy")
    assert wakes == ["wake"]


# --- left: a receipt for a message never marked sent --------------------------------------------

def test_a_receipt_for_an_organisers_notice_does_not_start_the_window_of_a_prompt_still_to_go(
        engine: Engine, oakfield: str, ok: Ok, wired: Wired) -> None:
    # Lil's number can't take texts: her prompt is to be spoken instead, and Margaret is told.
    # The worker sends Margaret's notice and dies before marking it; the notice's receipt says
    # it left. Lil's half hour starts when her call leaves, not when Margaret's text did.
    from phonetree import delivery
    from phonetree.models import Message
    from schedules import dispatcher
    from schedules.engine import step

    standin, gateway = wired
    with freeze_time("2026-11-30 12:00:00"):
        ok("member", "add", "Oakfield", "Lil", "--phone", "07911 100009")
        ok("checkin", "add", "Oakfield", "Lil", "--at", "09:00", "--window", "30m", "--escalate-to", "Jo",
           "--reminder", "off")
    step(engine, _utc(9, 0))
    standin.fail_next("Messages", status=400, code=21614, message="'To' number is not a valid mobile number")
    dispatcher.dispatch(engine, gateway, _utc(9, 0), limit=1)  # the text prompt: refused
    # On record: who was switched to calls, in which group (the trail an organiser reads back).
    assert _trail(engine, "switched_to_voice") == [("09:00", "Oakfield", "Lil", None, None)]
    with session_scope(engine) as session:
        [notice] = dispatcher._claim(session, _utc(9, 1), 1, dispatcher.LEASE)
        assert notice.template == "switched_to_voice"
        notice_id = notice.id
    with session_scope(engine) as session:
        delivery.message_status(session, _utc(9, 1, 10), session.get_one(Message, notice_id), "sent", None, None)
    assert _checkin_state(engine) == "prompting"
    _run(engine, gateway, _utc(9, 5))  # the call leaves
    with session_scope(engine) as session:
        checkin = session.scalars(select(CheckIn).where(CheckIn.state != "scheduled")).one()
        assert (checkin.state, checkin.window_ends_at) == ("sent", _utc(9, 35))


def test_a_receipt_for_the_retry_of_an_ask_does_not_give_the_contact_longer(
        engine: Engine, oakfield: str, ok: Ok) -> None:
    # Jo's phone was off for her ask (30003): it is tried again ten minutes later, and the worker
    # dies sending that retry; its receipt comes. Jo's 20 minutes ran from the ask that left
    # (README: each contact in turn, --escalation-wait each), so Sam is asked at 09:50.
    from phonetree import delivery
    from phonetree.gateways import base
    from phonetree.gateways.outbox import OutboxGateway
    from phonetree.models import Message
    from schedules import dispatcher

    with freeze_time("2026-11-30 12:00:00"):
        ok("checkin", "add", "Oakfield", "Vera", "--at", "09:00", "--window", "30m", "--escalate-to", "Jo,Sam",
           "--escalation-wait", "20m", "--reminder", "off")
    gateway = OutboxGateway()
    _run(engine, gateway, _utc(9, 0), _utc(9, 30))
    with session_scope(engine) as session:
        ask = session.scalars(select(Message).where(Message.template == "escalation")).one()
        assert ask.state == "sent" and ask.to_phone == "+447911100002"
        delivery.message_status(session, _utc(9, 31), ask, "undelivered", base.RETRY_LATER, "30003")
    with session_scope(engine) as session:
        [retry] = dispatcher._claim(session, _utc(9, 41), 10, dispatcher.LEASE)
        assert retry.to_phone == "+447911100002"
        retry_id = retry.id
    with session_scope(engine) as session:
        delivery.message_status(session, _utc(9, 42), session.get_one(Message, retry_id), "sent", None, None)
    _run(engine, gateway, _utc(9, 49))
    assert [m["to"] for m in _outbox(ok, "+447911100003")] == []
    _run(engine, gateway, _utc(9, 50), _utc(9, 50, 5))
    assert len(_outbox(ok, "+447911100003")) == 1


def test_a_receipt_with_a_status_we_do_not_know_changes_nothing_whatever_its_length(
        engine: Engine, oakfield: str, ok: Ok, wired: Wired) -> None:
    # A signed receipt whose status is long and unknown (Twilio adds statuses): it is recorded as
    # seen (so a repeat is one), answered 200 on both databases, and changes nothing.
    standin, gateway = wired
    _vera_at_nine(ok)
    _run(engine, gateway, _utc(9, 0))
    [prompt] = standin.messages
    with freeze_time("2026-12-01 09:01:00"):
        assert standin.send_status(prompt.sid, "partially_delivered_to_some_of_the_handsets")[0] == 200
        assert standin.send_status(prompt.sid, "partially_delivered_to_some_of_the_handsets")[0] == 200
    [shown] = _outbox(ok, "+447911100001")
    assert shown["state"] == "sent" and shown["error"] is None
    assert _checkin_state(engine) == "sent"


# --- undeliverable: what a message that will never arrive still does -----------------------------

def test_a_contacts_number_that_is_bad_passes_the_ask_on_at_once(
        engine: Engine, oakfield: str, ok: Ok, wired: Wired) -> None:
    # Jo's ask is refused for good (not a valid number): Sam is asked now, and status shows Jo
    # as unreachable, not as having said CANT.
    standin, gateway = wired
    with freeze_time("2026-11-30 12:00:00"):
        ok("checkin", "add", "Oakfield", "Vera", "--at", "09:00", "--window", "30m", "--escalate-to", "Jo,Sam",
           "--escalation-wait", "20m", "--reminder", "off")
    _run(engine, gateway, _utc(9, 0))
    standin.fail_next("Messages", status=400, code=21211, message="The 'To' number is not a valid phone number.")
    _run(engine, gateway, _utc(9, 30), _utc(9, 30, 5))
    assert len(_outbox(ok, "+447911100003")) == 1
    status = _status(ok, "Oakfield", _utc(9, 31))
    assert "Jo (unreachable)" in status and "cant" not in status
    assert _trail(engine, "undeliverable") == [("09:30", "Oakfield", "Jo", DAY, "escalation: number not in use")]


def test_a_reminder_that_cannot_be_delivered_asks_a_person_now(
        engine: Engine, oakfield: str, ok: Ok, wired: Wired) -> None:
    standin, gateway = wired
    _vera_at_nine(ok, reminder="15m")
    _run(engine, gateway, _utc(9, 0), _utc(9, 15))
    [prompt, reminder] = standin.messages
    with freeze_time("2026-12-01 09:16:00"):
        assert standin.send_status(reminder.sid, "undelivered", error_code=30005)[0] == 200
    assert _checkin_state(engine) == "escalating"
    _run(engine, gateway, _utc(9, 16))
    assert len(_outbox(ok, "+447911100002")) == 1  # Jo, now rather than at 09:30
    assert _trail(engine, "undeliverable") == [("09:16", "Oakfield", "Vera", DAY, "reminder: number not in use"),
                                               ("09:16", "Oakfield", "Vera", DAY, "number not in use")]


def test_a_reminder_refused_by_a_landline_is_spoken_instead(
        engine: Engine, oakfield: str, ok: Ok, wired: Wired) -> None:
    standin, gateway = wired
    _vera_at_nine(ok, reminder="15m")
    _run(engine, gateway, _utc(9, 0))
    standin.fail_next("Messages", status=400, code=21614, message="'To' number is not a valid mobile number")
    _run(engine, gateway, _utc(9, 15), _utc(9, 15, 5))
    [call] = standin.calls
    assert call.params["To"] == "+447911100001" and _words(call.params["Twiml"])
    assert _checkin_state(engine) == "sent"  # still hers to answer, by a key now


def test_a_long_refusal_of_a_failure_notice_is_logged_cut_short(
        engine: Engine, oakfield: str, ok: Ok, wired: Wired, caplog: pytest.LogCaptureFixture) -> None:
    # Margaret's notice about Vera's bad number is refused too, with a long explanation from
    # the provider: the one ERROR line carries its first 100 characters, not the lot.
    standin, gateway = wired
    _vera_at_nine(ok)
    why = "The 'To' number is not a valid phone number. " * 4
    standin.fail_next("Messages", status=400, code=21211, message="The 'To' number is not a valid phone number.")
    standin.fail_next("Messages", status=400, code=21211, message=why)  # the next one: the notice
    with caplog.at_level(logging.ERROR):
        _run(engine, gateway, _utc(9, 0))
    assert [m.params["To"] for m in standin.messages] == ["+447911100002"]  # only Jo's ask left
    notices = [r.getMessage() for r in caplog.records
               if r.getMessage().startswith("a notice about a failed message")]
    assert len(notices) == 1
    said = notices[0].removeprefix("a notice about a failed message could not be delivered either (")[:-1]
    assert len(said) == 100 and said.startswith("the number is not valid (The 'To' number")



def test_a_member_who_opted_out_before_her_prompt_left_is_followed_up_by_a_person(
        engine: Engine, oakfield: str, ok: Ok) -> None:
    # Vera texted STOP while her 09:00 prompt waited to go: it is not sent (suppressed), and
    # since she will not be asked, a person is, now.
    from phonetree.gateways.outbox import OutboxGateway
    from phonetree.models import Member
    from schedules.engine import step

    _vera_at_nine(ok)
    step(engine, _utc(9, 0))
    with session_scope(engine) as session:
        session.scalars(select(Member).where(Member.name == "Vera")).one().opted_out = True
    _run(engine, OutboxGateway(), _utc(9, 0, 10), _utc(9, 0, 20))
    assert _outbox(ok, "+447911100001")[0]["state"] == "suppressed"
    assert _checkin_state(engine) == "escalating"
    assert len(_outbox(ok, "+447911100002")) == 1


@pytest.mark.parametrize("how, reminder", [("held back", "suppressed"), ("refused", "failed")])
def test_a_reminder_to_her_after_she_opted_out_leaves_the_window_to_run(
        engine: Engine, oakfield: str, ok: Ok, wired: Wired, how: str, reminder: str) -> None:
    # Her prompt went; she opted out before the 09:15 reminder. Either phonetree knows and holds
    # the reminder back, or her STOP was lost (phonetree crashed answering it, and Twilio does not
    # retry) and Twilio refuses the reminder (21610; long-run seed 11101732). Either way nothing
    # is raised early: she had the prompt and may still reply, and the window's end asks Jo as for
    # any unanswered check-in (before, when refused: Jo was asked at 09:15, mid-window).
    standin, gateway = wired
    _vera_at_nine(ok, reminder="15m")
    _run(engine, gateway, _utc(9, 0))
    if how == "held back":
        with session_scope(engine) as session:
            session.scalars(select(Member).where(Member.name == "Vera")).one().opted_out = True
    else:
        standin.fail_next("Messages", status=400, code=21610, message="Attempt to send to unsubscribed recipient")
    _run(engine, gateway, _utc(9, 15), _utc(9, 16))
    assert [m["state"] for m in _outbox(ok, "+447911100001")] == ["sent", reminder]
    with session_scope(engine) as session:
        assert session.scalars(select(Member).where(Member.name == "Vera")).one().opted_out
    assert _checkin_state(engine) == "sent" and _outbox(ok, "+447911100002") == []
    _run(engine, gateway, _utc(9, 30))
    assert len(_outbox(ok, "+447911100002")) == 1


def test_an_alert_texted_to_a_landline_is_rung_instead_and_stays_with_her(
        engine: Engine, oakfield: str, ok: Ok, wired: Wired) -> None:
    # Long-run seed 10101552: Vera, with no check-in, asks for a call; with nobody to ask, the
    # organiser is alerted, by text, and her number is a landline (21614). The same alert is rung
    # instead and Margaret keeps it (before: it was marked unreachable and passed on, and with no
    # other organiser nobody held Vera's call).
    standin, gateway = wired
    with freeze_time(_at(_utc(10, 0))):  # by the webhook, which sends nothing itself
        assert standin.send_inbound_sms("+447911100001", "HELP")[0] == 200
    _run(engine, gateway, _utc(10, 0))
    [alert] = [m for m in standin.messages if m.params["To"] == "+447911100004"]
    with freeze_time(_at(_utc(10, 0, 3))):
        assert standin.send_status(alert.sid, "undelivered", error_code=21614)[0] == 200
    _run(engine, gateway, _utc(10, 0, 5))
    [call] = standin.calls
    assert call.params["To"] == "+447911100004" and "Vera asked for a call" in call.params["Twiml"]
    with session_scope(engine) as session:
        [task] = session.scalars(select(Task).where(Task.kind == "alert")).all()
        assert (task.assignee.name, task.state) == ("Margaret", "asked")
        assert session.scalars(select(Member.channel).where(Member.name == "Margaret")).one() == "voice"


def test_a_reminder_that_expired_unsent_just_lapses(
        engine: Engine, oakfield: str, ok: Ok, wired: Wired) -> None:
    # The provider was down from before the 09:15 reminder until after the window's end: the
    # reminder is dropped, not raised as a failure; the window's end asks Jo, once.
    standin, gateway = wired
    _vera_at_nine(ok, reminder="15m")
    _run(engine, gateway, _utc(9, 0))
    standin.fail_next("Messages", status=503, times=1)
    _run(engine, gateway, _utc(9, 15))
    assert [m["state"] for m in _outbox(ok, "+447911100001")] == ["sent", "queued"]
    # The service's sender runs on its own schedule: here it reaches 09:30 before the tick does.
    from schedules import dispatcher
    dispatcher.dispatch(engine, gateway, _utc(9, 30))
    assert [m["state"] for m in _outbox(ok, "+447911100001")] == ["sent", "expired"]
    assert _checkin_state(engine) == "sent"  # not raised as undeliverable: the window's end acts
    _run(engine, gateway, _utc(9, 30), _utc(9, 30, 5))
    assert _checkin_state(engine) == "escalating"
    assert len(_outbox(ok, "+447911100002")) == 1
    assert _trail(engine, "undeliverable") == [("09:30", "Oakfield", "Vera", DAY, "reminder: not sent in time")]


@pytest.mark.parametrize("code, reason", [(30007, "blocked by the network"), (21408, "account settings")])
def test_a_prompt_the_network_or_our_account_blocks_is_told_to_the_organiser(
        engine: Engine, oakfield: str, ok: Ok, wired: Wired, code: int, reason: str) -> None:
    # Nobody can fix these but a person: Margaret is told why, as well as Jo being asked.
    standin, gateway = wired
    _vera_at_nine(ok)
    _run(engine, gateway, _utc(9, 0))
    with freeze_time("2026-12-01 09:01:00"):
        assert standin.send_status(standin.messages[0].sid, "undelivered", error_code=code)[0] == 200
    _run(engine, gateway, _utc(9, 1))
    [notice] = [m for m in standin.messages if m.params["To"] == "+447911100004"]
    assert f"couldn't reach Vera on 07911 100001 ({reason})" in notice.params["Body"]
    assert len(_outbox(ok, "+447911100002")) == 1


def test_an_opted_out_receipt_tells_no_organiser_about_the_number(
        engine: Engine, oakfield: str, ok: Ok, wired: Wired) -> None:
    # Twilio says she has opted out (21610 on a receipt): a person follows up (Jo), but no
    # notice says her number is broken, because it isn't.
    standin, gateway = wired
    _vera_at_nine(ok)
    _run(engine, gateway, _utc(9, 0))
    with freeze_time("2026-12-01 09:01:00"):
        assert standin.send_status(standin.messages[0].sid, "undelivered", error_code=21610)[0] == 200
    _run(engine, gateway, _utc(9, 1))
    assert len(_outbox(ok, "+447911100002")) == 1
    assert not any("couldn't reach" in (m["body"] or "") for m in _outbox(ok, "+447911100004"))


def test_a_prompt_that_expires_after_she_already_answered_raises_nothing(
        engine: Engine, oakfield: str, ok: Ok, wired: Wired) -> None:
    # Her 09:00 prompt was held (the send timed out) and the service went down; she texted OK
    # anyway. When the prompt is found expired the next day, her answered check-in stays
    # answered: nobody is told it was missed.
    standin, _ = wired
    gateway = _impatient(standin)
    _vera_at_nine(ok)
    standin.delay_next("Messages", 1.5)
    _send_once(engine, gateway, _utc(9, 0))
    with freeze_time("2026-12-01 09:10:00"):  # by the webhook, which sends nothing itself
        assert standin.send_inbound_sms("+447911100001", "OK")[0] == 200
    assert _checkin_state(engine) == "answered"
    _run(engine, gateway, datetime(2026, 12, 2, 0, 0, 30, tzinfo=timezone.utc))
    assert _checkin_state(engine) == "answered"
    assert _outbox(ok, "+447911100004") == [] and _outbox(ok, "+447911100002") == []


def test_a_late_failure_receipt_for_an_ask_whose_wait_ran_out_skips_nobody(
        engine: Engine, oakfield: str, ok: Ok, wired: Wired) -> None:
    # Jo's ask went at 09:30; her 20 minutes ran out and Sam was asked at 09:50. A delayed
    # receipt then says Jo's ask never arrived: her ask is closed already, so Sam keeps his
    # 20 minutes before the organisers are alerted.
    standin, gateway = wired
    with freeze_time("2026-11-30 12:00:00"):
        ok("checkin", "add", "Oakfield", "Vera", "--at", "09:00", "--window", "30m", "--escalate-to", "Jo,Sam",
           "--escalation-wait", "20m", "--reminder", "off")
    _run(engine, gateway, _utc(9, 0), _utc(9, 30), _utc(9, 50), _utc(9, 50, 5))
    [jo_ask] = [m for m in standin.messages if m.params["To"] == "+447911100002"]
    assert len(_outbox(ok, "+447911100003")) == 1
    with freeze_time("2026-12-01 09:51:00"):
        assert standin.send_status(jo_ask.sid, "undelivered", error_code=30005)[0] == 200
    _run(engine, gateway, _utc(9, 51), _utc(10, 5))
    [notice] = _outbox(ok, "+447911100004")  # told Jo's number is bad; not yet alerted
    assert "couldn't reach Jo" in notice["body"]
    _run(engine, gateway, _utc(10, 10), _utc(10, 10, 5))
    assert len(_outbox(ok, "+447911100004")) == 2  # Sam's time up: now the alert
