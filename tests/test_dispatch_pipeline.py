"""The dispatcher's marks, recorded on a thread of their own while the next message is being
sent (schedules/dispatcher.py, `_Marker` and `Outgoing.ready`): still no request leaves a
sending thread before its previous message is recorded, so a worker killed at any moment has
at most one unrecorded message per sending thread; and a mark the database refuses for good
stops the pass instead of sending on, unrecorded. Real twilio client, real stand-in, SQLite
and PostgreSQL."""
from __future__ import annotations

import logging
import re
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, select, text

from phonetree.config import Settings
from phonetree.db import normalise_url, session_scope
from phonetree.gateways.twilio import TwilioGateway
from phonetree.models import CheckIn, Message
from schedules import dispatcher
from schedules.engine import step
from tests.test_faults import message_ids_posted, seed_due_checkins
from tests.test_journal import ReadOnly
from tests.twilio_standin import TwilioStandIn

PUBLIC = "https://tree.example.org"
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)


def gateway_for(standin: TwilioStandIn) -> TwilioGateway:
    return TwilioGateway.from_settings(Settings(
        gateway="twilio", public_url=PUBLIC, twilio_account_sid=standin.account_sid,
        twilio_auth_token=standin.auth_token, twilio_from_number="+441522000000",
        twilio_api_base_url=standin.base_url))


def queued_prompts(engine: Engine, count: int) -> None:
    """`count` check-ins due, their prompts queued by a step (nothing sent yet)."""
    seed_due_checkins(engine, count, NOW)
    step(engine, NOW)
    with session_scope(engine) as session:
        assert len(session.scalars(select(Message.id).where(Message.state == "queued")).all()) == count


class Watching(TwilioStandIn):
    """A stand-in that, as each Messages POST arrives, counts the messages POSTed so far (this
    one included) that the database does not yet have as sent: those a worker killed at this
    instant would send again."""

    def __init__(self, db_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # A plain engine (no BEGIN IMMEDIATE): reading must not take the writers' lock.
        self.db = create_engine(normalise_url(db_url))
        self.posted: set[int] = set()
        self.unrecorded: list[int] = []
        self._watch = threading.Lock()

    def _answer(self, method, path, endpoint, auth, params, multi):  # type: ignore[no-untyped-def]
        if endpoint == "Messages" and method == "POST":
            mid = int(params["StatusCallback"].rsplit("m=", 1)[1])
            with self._watch:
                self.posted.add(mid)
                with self.db.connect() as conn:
                    recorded = set(conn.execute(text("SELECT id FROM messages WHERE state = 'sent'")).scalars())
                self.unrecorded.append(len(self.posted - recorded))
        return super()._answer(method, path, endpoint, auth, params, multi)


@pytest.mark.parametrize("threads", [1, 4])
def test_no_request_leaves_before_the_senders_previous_message_is_recorded(
        engine: Engine, db_url: str, monkeypatch: pytest.MonkeyPatch, threads: int):
    """Marks take 30 ms each (the marker thread is slowed): a sender that went on without
    waiting would POST its next message while the last was unrecorded. At every POST the
    messages POSTed but not recorded are at most one per sending thread (the duplicates a kill
    at that instant could cause), every prompt leaves once and every check-in's window starts."""
    count = 12
    queued_prompts(engine, count)
    real = dispatcher._record_sent

    def slow_record_sent(*args: Any, **kwargs: Any) -> None:
        time.sleep(0.03)
        real(*args, **kwargs)

    monkeypatch.setattr(dispatcher, "_record_sent", slow_record_sent)
    with Watching(db_url, public_url=PUBLIC) as standin:
        result = dispatcher.dispatch(engine, gateway_for(standin), NOW, threads=threads)
        posted = message_ids_posted(standin)
        unrecorded = list(standin.unrecorded)
        standin.db.dispose()
    assert result.sent == count
    assert sorted(posted.values()) == [1] * count
    assert len(unrecorded) == count and max(unrecorded) <= threads, unrecorded
    with session_scope(engine) as session:
        assert set(session.scalars(select(Message.state))) == {"sent"}
        assert set(session.scalars(select(CheckIn.state))) == {"sent"}


@pytest.mark.parametrize("threads", [1, 4])
def test_a_mark_the_database_refuses_stops_the_pass_and_the_message_is_not_lost(
        engine: Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, threads: int):
    """The database turns read-only as the first prompt reaches Twilio, so no mark can be
    recorded. The pass sends at most one message per sending thread (those already on their
    way), logs each one it could not record, and fails loudly (the runner logs it and tries
    again) instead of sending the other prompts unrecorded. Once the database is back and the
    lease has run out, every prompt leaves and every window starts; only the unrecorded ones
    went twice (the documented duplicate)."""
    count = 12
    queued_prompts(engine, count)
    monkeypatch.setattr(dispatcher, "MARK_ATTEMPTS", 2)  # 0.25 s of retries, not 8 s
    fault = ReadOnly(engine)  # refuses writes at the database itself

    class Turning(TwilioStandIn):
        turned = False

        def _answer(self, method, path, endpoint, auth, params, multi):  # type: ignore[no-untyped-def]
            if endpoint == "Messages" and not self.turned:
                self.turned = fault.on = True
            return super()._answer(method, path, endpoint, auth, params, multi)

    try:
        with Turning(public_url=PUBLIC) as standin:
            gateway = gateway_for(standin)
            with caplog.at_level(logging.ERROR, logger="schedules.dispatcher"):
                with pytest.raises(dispatcher.MarkFailed):
                    dispatcher.dispatch(engine, gateway, NOW, threads=threads)
            first = message_ids_posted(standin)
            assert 1 <= sum(first.values()) <= threads, first
            logged = [found.group(1) for r in caplog.records
                      if (found := re.match(r"could not record message (\d+)\b", r.getMessage()))]
            assert {int(mid) for mid in logged} == set(first), logged
            fault.on = False
            later = NOW + dispatcher.LEASE + timedelta(seconds=1)
            result = dispatcher.dispatch(engine, gateway, later, threads=threads)
            posted = message_ids_posted(standin)
    finally:
        fault.remove()
    assert result.sent == count
    assert {mid: n for mid, n in posted.items() if n > 1} == {mid: 2 for mid in first}
    assert len(posted) == count
    with session_scope(engine) as session:
        assert set(session.scalars(select(Message.state))) == {"sent"}
        assert set(session.scalars(select(CheckIn.state))) == {"sent"}
