"""Every outgoing message fits the provider's limits: an SMS body at most 1,600 characters
(Twilio 21617), inline TwiML at most 4,000. Sent through the real twilio client to the stand-in,
which refuses what Twilio refuses."""
from __future__ import annotations

from typing import Iterator

import pytest
from freezegun import freeze_time

from phonetree import cascades, directory, inbound
from phonetree.config import Settings
from phonetree.db import session_scope
from phonetree.gateways.twilio import TwilioGateway
from phonetree.sms_encoding import segment_info
from phonetree.texts import MORE, fit
from schedules import dispatcher
from tests.conftest import VERA, sent, utc
from tests.twilio_standin import TwilioStandIn

PUBLIC = "https://tree.example.org"


@pytest.fixture
def twilio() -> Iterator[TwilioGateway]:
    with TwilioStandIn(public_url=PUBLIC) as standin:
        yield TwilioGateway.from_settings(Settings(
            gateway="twilio", public_url=PUBLIC, twilio_account_sid=standin.account_sid,
            twilio_auth_token=standin.auth_token, twilio_from_number="+441522000000",
            twilio_api_base_url=standin.base_url))


def test_a_long_reply_forwarded_to_an_organiser_is_trimmed_and_accepted(oakfield, ok, engine, ticker, twilio):
    with freeze_time("2026-11-30 12:00:00"):
        ok("checkin", "add", "Oakfield", "Vera", "--at", "09:00", "--escalate-to", "Jo")
    ticker(utc(2026, 12, 1, 9, 0))
    long_text = ("my tooth hurts and the bus didn't come " * 50)[:1600]
    # Straight to the domain, not `receive`: that would send the forward through the outbox gateway.
    with session_scope(engine) as session:
        inbound.handle(session, utc(2026, 12, 1, 9, 5), VERA, long_text)
    dispatcher.dispatch(engine, twilio, utc(2026, 12, 1, 9, 6))
    [forward] = [m for m in sent(engine, template="forward")]
    assert forward.state == "sent" and forward.error is None, (forward.state, forward.error)
    assert len(forward.body) <= 1600 and forward.body.endswith(MORE)
    assert segment_info(forward.body).encoding == "GSM-7"  # the cut added no UCS-2 character


def test_long_news_by_voice_fits_in_twiml(oakfield, ok, engine, twilio):
    news = "Thursday's meeting has moved to the hall & the car park is shut. " * 40  # ~2,600 chars
    with session_scope(engine) as session:
        cascades.start(session, directory.get_group(session, "Oakfield"), news, utc(2026, 12, 1, 10, 0),
                       by_voice=True)
    dispatcher.dispatch(engine, twilio, utc(2026, 12, 1, 10, 1))
    calls = [m for m in sent(engine, kind="cascade") if m.channel == "voice"]
    assert calls and all(m.state == "sent" and m.error is None for m in calls), [(m.state, m.error) for m in calls]


def test_fit_keeps_short_text_and_cuts_on_a_word() -> None:
    assert fit("Hi Vera, just checking in.") == "Hi Vera, just checking in."
    cut = fit("word " * 400)
    assert len(cut) <= 1600 and cut.endswith("word" + MORE)
    emoji = fit("👍" * 1000)  # two UTF-16 units each, as Twilio counts them
    assert len(emoji.encode("utf-16-le")) // 2 <= 1600 and emoji.endswith(MORE)
    spoken = fit("&" * 3000, "voice")
    assert len(spoken.replace("&", "&amp;")) <= 3000
