"""Replies acted on (phonetree/inbound.py), at the edges the rest of the suite left open: each
test kills mutants that survived it (bench/mutation.py --module inbound). The rules held are the
module's docstrings: a DONE that may be the reply still owed to an earlier ask is held and the
holder asked to confirm, in the channel they used; a message that will never arrive passes on
what it carried (delivery.undeliverable)."""
from __future__ import annotations

from typing import Callable

from click.testing import Result
from freezegun import freeze_time
from sqlalchemy import Engine, select

from phonetree import delivery
from phonetree.db import session_scope
from phonetree.gateways import base
from phonetree.models import Event, Message, Task
from tests.conftest import JO, SAM, VERA, sent
from tests.test_help_stays_asked import E164, add_checkin, at, receive, templates_to, vera_open

Ticker = Callable[..., object]


def test_a_held_done_is_checked_by_text_and_if_that_never_arrives_the_call_passes_on(
        oakfield: str, ok: Callable[..., Result], engine: Engine, ticker: Ticker) -> None:
    # Jo is called rather than texted (a voice contact with a mobile). She was asked twice about
    # Vera (the escalation, then Vera's HELP), texted DONE once; Vera asked again and Jo's next
    # DONE is held (test_help_stays_asked). The check goes back by text, the way Jo replied, tied
    # to the ask it holds open and to Vera's check-in. Jo has opted out of texts since, so it can
    # never arrive: nobody knows whether Jo has rung about the newer request, so Sam is asked at
    # once, not after Jo's 20 minutes, and the failure is on the check-in's record.
    with freeze_time("2026-11-30 12:00:00"):
        ok("member", "set", "Oakfield", "Jo", "--channel", "voice")
    add_checkin(ok)
    ticker(at(9))
    ticker(at(9, 30))  # no reply: Jo is asked
    receive(ok, VERA, "HELP", at(9, 35))
    ticker(at(9, 35))
    receive(ok, JO, "done", at(9, 40))
    receive(ok, VERA, "I can't breathe", at(9, 42))
    ticker(at(9, 42))
    assert templates_to(engine, JO) == ["escalation", "help", "thanks", "help"]
    assert [m.channel for m in sent(engine, to_phone=E164[JO])] == ["voice", "voice", "sms", "voice"]
    receive(ok, JO, "DONE", at(9, 42, 20))
    ticker(at(9, 42, 20))
    [checkin] = vera_open(engine)
    with session_scope(engine) as session:
        [held] = session.scalars(select(Task).where(Task.state == "asked"))
        assert held.assignee.name == "Jo" and held.checkin_id == checkin.id
        held_id = held.id
    [check] = sent(engine, to_phone=E164[JO], template="done_check")
    assert (check.channel, check.task_id, check.checkin_id, check.state) == ("sms", held_id, checkin.id, "sent")
    assert templates_to(engine, SAM) == []
    with freeze_time(at(9, 43)), session_scope(engine) as session:
        message = session.get_one(Message, check.id)
        assert delivery.message_status(session, at(9, 43), message, "undelivered", base.OPTED_OUT, "21610")
    ticker(at(9, 43))
    with session_scope(engine) as session:
        assert session.get_one(Task, held_id).state != "asked"
        [failed] = session.scalars(select(Event).where(Event.kind == "undeliverable"))
        assert failed.checkin_id == checkin.id
    assert templates_to(engine, SAM) == ["help"]
    assert [c.state for c in vera_open(engine)] == ["escalating"]
