"""A receipt that arrives for a message we never marked as sent (the process died between the
provider taking it and our mark): the message left, so what its leaving starts must start.
(Simulation finding F7: the check-in stayed `prompting` for ever, no window, nobody asked.)"""
from __future__ import annotations

from datetime import timedelta

from freezegun import freeze_time
from sqlalchemy import select

from phonetree import delivery
from phonetree.db import session_scope
from phonetree.gateways.outbox import OutboxGateway
from phonetree.models import CheckIn, Message, Task
from schedules import dispatcher
from schedules.engine import step, tick
from tests.conftest import sent, utc

T0 = utc(2026, 12, 1, 9, 0)


def add_checkin(ok) -> None:
    with freeze_time("2026-11-30 12:00:00"):
        ok("checkin", "add", "Oakfield", "Vera", "--at", "09:00", "--window", "30m",
           "--escalate-to", "Jo,Sam", "--escalation-wait", "20m", "--reminder", "off")


def claim_then_crash(engine, when) -> list[int]:
    """Claim what is due, as a worker does before it sends; then the worker dies unmarked."""
    with session_scope(engine) as session:
        return [m.id for m in dispatcher._claim(session, when, 10, dispatcher.LEASE)]


def today(session) -> CheckIn:
    return session.scalar(select(CheckIn).where(CheckIn.occurrence == "2026-12-01"))


def test_a_delivery_receipt_for_an_unmarked_prompt_starts_its_window(oakfield, ok, engine):
    add_checkin(ok)
    step(engine, T0)
    [prompt_id] = claim_then_crash(engine, T0)
    with session_scope(engine) as session:
        prompt = session.get(Message, prompt_id)
        assert prompt.state == "sending" and today(session).state == "prompting"
        assert delivery.message_status(session, T0 + timedelta(seconds=20), prompt, "delivered", None, None)
    with session_scope(engine) as session:
        checkin = today(session)
        assert checkin.state == "sent" and checkin.window_ends_at == T0 + timedelta(seconds=20, minutes=30)
        assert session.get(Message, prompt_id).state == "delivered"
    # Its lease running out doesn't send it again, and the window does close: Jo is asked.
    gateway = OutboxGateway()
    tick(engine, gateway, T0 + dispatcher.LEASE + timedelta(seconds=1))
    assert [m.state for m in sent(engine, kind="checkin")] == ["delivered"]
    tick(engine, gateway, T0 + timedelta(seconds=20, minutes=30))
    assert [m.template for m in sent(engine, kind="escalation")] == ["escalation"]


def test_a_receipt_for_an_unmarked_ask_starts_the_contacts_wait_then(oakfield, ok, engine):
    add_checkin(ok)
    gateway = OutboxGateway()
    tick(engine, gateway, T0)
    step(engine, T0 + timedelta(minutes=30))  # the window closes: Jo's ask is queued
    [ask_id] = claim_then_crash(engine, T0 + timedelta(minutes=40))
    with session_scope(engine) as session:
        ask = session.get(Message, ask_id)
        assert ask.template == "escalation"
        delivery.message_status(session, T0 + timedelta(minutes=41), ask, "sent", None, None)
    with session_scope(engine) as session:
        [task] = session.scalars(select(Task))
        assert task.expires_at == T0 + timedelta(minutes=41 + 20)
        assert session.get(Message, ask_id).state == "sent"


def test_a_call_status_for_an_unmarked_voice_prompt_starts_its_window(oakfield, ok, engine):
    with session_scope(engine) as session:
        from phonetree.models import Member
        session.scalar(select(Member).where(Member.name == "Vera")).channel = "voice"
    add_checkin(ok)
    step(engine, T0)
    [call_id] = claim_then_crash(engine, T0)
    with session_scope(engine) as session:
        call = session.get(Message, call_id)
        assert call.channel == "voice"
        delivery.call_status(session, T0 + timedelta(minutes=1), call, "completed", machine=False)
    with session_scope(engine) as session:
        checkin = today(session)
        assert checkin.state == "sent" and checkin.window_ends_at == T0 + timedelta(minutes=31)
