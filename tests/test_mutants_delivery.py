"""What happens after a message leaves (phonetree/delivery.py), at the edges the rest of the
suite left open: each test kills mutants that survived it (bench/mutation.py --module delivery).
The rules held are the module's docstrings and the README: a call a person picked up is
delivered and is nobody's silence; an answering machine or no answer is no answer (a check-in
call is tried once more, never after a machine; an escalation call passes on at once); a
message that will never arrive still reaches a person by another way."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable

from click.testing import Result
from freezegun import freeze_time
from sqlalchemy import Engine, select

from phonetree.db import session_scope
from phonetree.gateways.twilio import TwilioGateway
from phonetree.models import CheckIn, Event
from schedules.engine import tick
from tests.conftest import JO, LANDLINE, MARGARET, VERA, outbox_json
from tests.test_delivery import wired  # noqa: F401 - the fixture: the stand-in, our webhooks, the gateway
from tests.twilio_standin import TwilioStandIn

Wired = tuple[TwilioStandIn, TwilioGateway]
Ok = Callable[..., Result]


def _utc(hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(2026, 12, 1, hour, minute, second, tzinfo=timezone.utc)  # London is on UTC


def _run(engine: Engine, gateway: TwilioGateway, *moments: datetime) -> None:
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


def _landline_checkin(ok: Ok) -> None:
    """Oakfield's Lil, on a landline: rung at 09:00 for her check-in, Jo after 30 minutes."""
    with freeze_time("2026-11-30 12:00:00"):
        ok("member", "add", "Oakfield", "Lil", "--phone", LANDLINE)
        ok("checkin", "add", "Oakfield", "Lil", "--at", "09:00", "--window", "30m", "--escalate-to", "Jo",
           "--reminder", "off")


def _landline_contact(ok: Ok) -> None:
    """Hill: Vera checks in by text at 09:00; Lil (a landline, so rung) is asked first, then Jo."""
    with freeze_time("2026-11-30 12:00:00"):
        ok("group", "add", "Hill", "--timezone", "Europe/London")
        ok("member", "add", "Hill", "Vera", "--phone", VERA)
        ok("member", "add", "Hill", "Lil", "--phone", LANDLINE)
        ok("member", "add", "Hill", "Jo", "--phone", JO)
        ok("member", "add", "Hill", "Margaret", "--phone", MARGARET, "--role", "organiser")
        ok("checkin", "add", "Hill", "Vera", "--at", "09:00", "--window", "30m", "--escalate-to", "Lil,Jo",
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
