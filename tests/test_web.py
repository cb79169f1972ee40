"""The webhook app's signature rules, called as a WSGI app: byte-for-byte query, blank params,
proxies, and that nothing unsigned changes anything."""
from __future__ import annotations

import io
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

from phonetree.clock import now as utc_now
from phonetree.web import WebhookApp
from tests.conftest import snapshot

TOKEN = "test-auth-token"
PUBLIC = "https://tree.example.org"


def call(app: WebhookApp, path: str, params: dict[str, str], query: str = "", signature: str | None = None,
         method: str = "POST") -> tuple[str, str, dict[str, str]]:
    body = urlencode(params).encode()
    environ = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,
        "CONTENT_LENGTH": str(len(body)), "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "http",  # the proxy spoke plain HTTP
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8080",
    }
    if signature is not None:
        environ["HTTP_X_TWILIO_SIGNATURE"] = signature
    captured: dict[str, object] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        captured["status"], captured["headers"] = status, dict(headers)

    text = b"".join(app(environ, start_response)).decode()
    return str(captured["status"]), text, captured["headers"]  # type: ignore[return-value]


def sign(url: str, params: dict[str, str]) -> str:
    return RequestValidator(TOKEN).compute_signature(url, params)


ACCOUNT = "AC" + "2" * 32
INBOUND = {"MessageSid": "SM" + "1" * 32, "AccountSid": ACCOUNT, "From": "+447911100001",
           "To": "+441522000000", "Body": "OK", "ToCity": "", "FromZip": "", "NumSegments": "1"}


@pytest.fixture
def app(engine, oakfield) -> WebhookApp:
    return WebhookApp(engine, TOKEN, PUBLIC, account_sid=ACCOUNT)


def test_a_correctly_signed_inbound_sms_is_accepted_behind_a_proxy(app):
    status, body, headers = call(app, "/twilio/sms", INBOUND, signature=sign(PUBLIC + "/twilio/sms", INBOUND))
    assert status.startswith("200") and headers["Content-Type"].startswith("text/xml")
    assert body.startswith("<?xml") and body.endswith("<Response />")


@pytest.mark.parametrize("tamper", ["no signature", "forged", "other host", "http scheme", "blank dropped",
                                    "body changed", "query reordered"])
def test_anything_not_signed_for_exactly_this_request_is_refused_and_changes_nothing(app, engine, tamper):
    params, query, url = dict(INBOUND), "m=5&attempt=2", PUBLIC + "/twilio/status/message?m=5&attempt=2"
    signature = sign(url, params)
    if tamper == "no signature":
        signature = None
    elif tamper == "forged":
        signature = "bm9wZQ=="
    elif tamper == "other host":
        signature = sign("https://evil.example.org/twilio/status/message?m=5&attempt=2", params)
    elif tamper == "http scheme":
        signature = sign("http://tree.example.org/twilio/status/message?m=5&attempt=2", params)
    elif tamper == "blank dropped":
        signature = sign(url, {k: v for k, v in params.items() if v})
    elif tamper == "body changed":
        params["Body"] = "HELP"
    elif tamper == "query reordered":
        query = "attempt=2&m=5"
    before = snapshot(engine)
    status, body, _ = call(app, "/twilio/status/message", params, query=query, signature=signature)
    assert status.startswith("403")
    assert snapshot(engine) == before


def test_the_raw_query_is_signed_byte_for_byte(app):
    params = {"MessageSid": "SM" + "3" * 32, "MessageStatus": "delivered", "AccountSid": ACCOUNT}
    url = PUBLIC + "/twilio/status/message?m=999&attempt=2"
    status, _, _ = call(app, "/twilio/status/message", params, query="m=999&attempt=2", signature=sign(url, params))
    assert status.startswith("200")  # unknown message: accepted (200) so Twilio stops retrying


def test_an_unsigned_help_from_a_member_changes_nothing(app, engine):
    before = snapshot(engine)
    params = dict(INBOUND, Body="HELP", From="+447911100001")
    assert call(app, "/twilio/sms", params)[0].startswith("403")
    assert snapshot(engine) == before


def test_without_a_token_or_public_url_everything_is_refused(engine, oakfield):
    for app in (WebhookApp(engine, None, PUBLIC, account_sid=ACCOUNT), WebhookApp(engine, TOKEN, None, account_sid=ACCOUNT),
                WebhookApp(engine, TOKEN, PUBLIC)):
        assert call(app, "/twilio/sms", INBOUND, signature=sign(PUBLIC + "/twilio/sms", INBOUND))[0].startswith("403")


def test_routes_methods_and_health(app):
    assert call(app, "/health", {}, method="GET")[0].startswith("200")
    assert call(app, "/nope", {}, signature="x")[0].startswith("404")
    assert call(app, "/twilio/sms", {}, method="GET")[0].startswith("405")


def test_an_unknown_sender_learns_nothing(app, engine):
    params = dict(INBOUND, From="+447911999999", Body="who is this?")
    before = snapshot(engine)
    status, body, _ = call(app, "/twilio/sms", params, signature=sign(PUBLIC + "/twilio/sms", params))
    assert status.startswith("200") and body.endswith("<Response />")
    assert snapshot(engine) == before


def test_only_a_reply_that_queues_a_message_wakes_the_sender(engine, oakfield):
    """An OK with nothing to tell anyone doesn't wake the dispatcher (at hundreds of replies a
    second that would be hundreds of empty send passes); a HELP, which asks Jo at once, does."""
    woken: list[int] = []
    app = WebhookApp(engine, TOKEN, PUBLIC, on_change=lambda: woken.append(1), account_sid=ACCOUNT)
    url = PUBLIC + "/twilio/sms"
    ok = dict(INBOUND, MessageSid="SM" + "3" * 32, Body="OK")
    assert call(app, "/twilio/sms", ok, signature=sign(url, ok))[0].startswith("200")
    assert woken == []
    help_ = dict(INBOUND, MessageSid="SM" + "4" * 32, Body="HELP")
    assert call(app, "/twilio/sms", help_, signature=sign(url, help_))[0].startswith("200")
    assert woken == [1]
    # The same HELP delivered again queues nothing new, so wakes nothing.
    assert call(app, "/twilio/sms", help_, signature=sign(url, help_))[0].startswith("200")
    assert woken == [1]


def test_a_number_in_any_format_finds_the_member(engine, oakfield):
    """Twilio's E.164 takes the fast path; a national format (a CLI `receive`) is parsed."""
    from freezegun import freeze_time

    from phonetree import inbound
    from phonetree.db import session_scope

    for phone, known in (("+447911100001", "Vera"), ("07911 100001", "Vera"), ("+447911100099", None),
                         ("not a number", None)):
        with freeze_time("2026-12-01 12:00:00"), session_scope(engine) as session:
            outcome = inbound.handle(session, utc_now(), phone, "hello")
        assert (outcome.known, outcome.member) == (known is not None, known)


# ---------------------------------------------------------------- the quick OK and the whole way


def two_prompted_checkins(ok, engine) -> None:
    """Vera and Sam each have a 09:00 check-in, prompted at 09:00 on Tuesday 1 December (GMT);
    Vera's escalates to Jo, Sam's to Jo too."""
    from freezegun import freeze_time

    from phonetree.gateways.outbox import OutboxGateway
    from schedules.engine import tick
    from tests.conftest import utc

    with freeze_time("2026-11-30 12:00:00"):
        for name in ("Vera", "Sam"):
            ok("checkin", "add", "Oakfield", name, "--at", "09:00", "--window", "30m", "--escalate-to", "Jo")
    tick(engine, OutboxGateway(), utc(2026, 12, 1, 9, 0))


def answer_rows(engine, name: str) -> dict[str, list[tuple]]:
    """What answering left for one member, without ids: check-in, events, inbound rows."""
    from sqlalchemy import select

    from phonetree.db import session_scope
    from phonetree.models import CheckIn, Event, Inbound, Member

    with session_scope(engine) as session:
        member = session.scalar(select(Member).where(Member.name == name))
        return {
            "checkins": [tuple(r) for r in session.execute(
                select(CheckIn.state, CheckIn.answered_at, CheckIn.closed_at, CheckIn.outcome)
                .where(CheckIn.member_id == member.id).order_by(CheckIn.due_at))],
            "events": [tuple(r) for r in session.execute(
                select(Event.kind, Event.at, Event.detail)
                .where(Event.member_id == member.id, Event.kind == "answered")
                .order_by(Event.id))],
            "inbound": [tuple(r) for r in session.execute(
                select(Inbound.channel, Inbound.body, Inbound.intent, Inbound.received_at)
                .where(Inbound.member_id == member.id).order_by(Inbound.id))],
        }


def test_a_quick_ok_leaves_exactly_what_the_whole_way_leaves(engine, oakfield, ok):
    """Vera's OK comes by webhook; Sam's identical OK is handed to `inbound.handle` directly (as
    the CLI's `receive` does). Apart from the name, the rows they leave are the same."""
    from freezegun import freeze_time

    from phonetree import inbound
    from phonetree.db import session_scope

    two_prompted_checkins(ok, engine)
    app = WebhookApp(engine, TOKEN, PUBLIC, account_sid=ACCOUNT)
    with freeze_time("2026-12-01 09:04:00"):
        vera = dict(INBOUND, MessageSid="SM" + "5" * 32, From="+447911100001", Body="OK thanks")
        assert call(app, "/twilio/sms", vera, signature=sign(PUBLIC + "/twilio/sms", vera))[0].startswith("200")
        with session_scope(engine) as session:
            outcome = inbound.handle(session, utc_now(), "+447911100003", "OK thanks", sid="SM" + "6" * 32)
        assert outcome.actions == ["check-in answered (2026-12-01)"]
    assert answer_rows(engine, "Vera") == answer_rows(engine, "Sam")
    assert answer_rows(engine, "Vera")["checkins"][0][0] == "answered"
    assert [e[0] for e in answer_rows(engine, "Vera")["events"]] == ["answered"]


def test_the_quick_ok_is_idempotent_and_never_replaces_the_whole_way(engine, oakfield, ok):
    """The same OK twice changes nothing more; an OK while Jo has already been asked stands Jo
    down and wakes the sender; words other than OK are not an OK, and a number written the
    local way is the same sender."""
    from freezegun import freeze_time

    from phonetree import inbound
    from phonetree.db import session_scope
    from phonetree.gateways.outbox import OutboxGateway
    from phonetree.replies import Intent, parse_reply
    from schedules.engine import tick
    from tests.conftest import sent, utc

    two_prompted_checkins(ok, engine)
    woken: list[int] = []
    app = WebhookApp(engine, TOKEN, PUBLIC, on_change=lambda: woken.append(1), account_sid=ACCOUNT)
    url = PUBLIC + "/twilio/sms"
    vera = dict(INBOUND, MessageSid="SM" + "7" * 32, From="+447911100001", Body="OK")
    with freeze_time("2026-12-01 09:05:00"):
        with session_scope(engine) as session:
            outcome = inbound.handle(session, utc_now(), "+447911100001", "OK", sid=vera["MessageSid"])
        assert outcome.actions == ["check-in answered (2026-12-01)"]
        before = snapshot(engine)
        assert call(app, "/twilio/sms", vera, signature=sign(url, vera))[0].startswith("200")
        assert snapshot(engine) == before  # a repeat delivery: nothing more
        assert parse_reply("not ok").intent is not Intent.OK
        assert inbound.e164_of("07911 100003") == "+447911100003"
    assert woken == []
    # Sam says nothing; at 09:30 his window closes and Jo is asked.
    tick(engine, OutboxGateway(), utc(2026, 12, 1, 9, 30))
    asked = len(sent(engine, to_phone="+447911100002"))
    assert asked == 1
    with freeze_time("2026-12-01 09:40:00"):
        assert answer_rows(engine, "Sam")["checkins"][0][0] == "escalating"  # Jo has been asked
        sam = dict(INBOUND, MessageSid="SM" + "9" * 32, From="+447911100003", Body="OK")
        assert call(app, "/twilio/sms", sam, signature=sign(url, sam))[0].startswith("200")
    assert woken == [1]  # Jo is to be stood down
    assert len(sent(engine, to_phone="+447911100002")) == asked + 1
    assert answer_rows(engine, "Sam")["checkins"][0][0] == "answered"


@pytest.mark.parametrize("signed_over, accepted", [
    ("https://tree.example.org/twilio/sms", True),
    ("https://tree.example.org:443/twilio/sms", True),  # Twilio's back end signs either way
    ("https://tree.example.org:8443/twilio/sms", False),
    ("http://tree.example.org:80/twilio/sms", False),
    ("https://evil.example.org:443/twilio/sms", False),
])
def test_one_hmac_accepts_exactly_what_the_validator_accepts(signed_over, accepted):
    """web.signature_matches computes the second HMAC (URL with the default port) only when the
    first fails; its answer must be RequestValidator.validate's, for public URLs written with and
    without the port."""
    from phonetree.web import signature_matches

    validator = RequestValidator(TOKEN)
    signature = sign(signed_over, INBOUND)
    for public in ("https://tree.example.org/twilio/sms", "https://tree.example.org:443/twilio/sms"):
        assert validator.validate(public, INBOUND, signature) is accepted
        assert signature_matches(validator, public, INBOUND, signature) is accepted
    assert signature_matches(validator, PUBLIC + "/twilio/sms", INBOUND, "bm9wZQ==") is False
    assert signature_matches(validator, PUBLIC + "/twilio/sms", INBOUND, "") is False


def test_routine_oks_are_summed_up_once_a_minute_and_the_rest_logged_one_by_one(engine, oakfield, caplog,
                                                                                monkeypatch):
    """An OK that changes nothing but its check-in is logged at DEBUG and counted; the count is
    logged at INFO once a minute. A HELP, a repeat and an unknown number keep a line each. No
    line carries the number or the text."""
    import logging

    from phonetree import web

    app = WebhookApp(engine, TOKEN, PUBLIC, account_sid=ACCOUNT)
    url = PUBLIC + "/twilio/sms"
    caplog.set_level(logging.INFO, logger="phonetree.web")

    def send(sid: str, body: str, sender: str = "+447911100001") -> None:
        params = dict(INBOUND, MessageSid="SM" + sid * 32, Body=body, From=sender)
        assert call(app, "/twilio/sms", params, signature=sign(url, params))[0].startswith("200")

    send("5", "OK")
    send("6", "ok thanks")
    assert [r for r in caplog.records if r.name == "phonetree.web"] == []
    monkeypatch.setattr(web.Tally, "EVERY", 0.0)  # as if a minute had passed
    send("7", "Fine")
    infos = [r.getMessage() for r in caplog.records if r.name == "phonetree.web"]
    assert len(infos) == 1 and infos[0].startswith("inbound SMS: 3 OK replies in the last ")
    caplog.clear()
    send("7", "Fine")  # a repeat delivery
    send("8", "HELP")
    send("9", "hello?", sender="+447911999999")
    lines = [r.getMessage() for r in caplog.records if r.name == "phonetree.web"]
    assert len(lines) == 3 and lines[0].endswith("ok (repeat delivery)") and lines[1].endswith(": help")
    assert "unknown number" in lines[2]
    assert not any("7911100001" in line or "7911999999" in line or "hello" in line for line in lines)
