"""A correctly signed request is still refused unless its fields are Twilio's own (issue 13 #1):
the signature runs names and values together, so a captured HELP can be re-split and still
verify. Each re-split below is first shown to verify, then shown to be refused and change nothing."""
from __future__ import annotations

import io
from typing import Any
from urllib.parse import urlencode

import pytest
from freezegun import freeze_time
from twilio.request_validator import RequestValidator

from phonetree.web import Params, WebhookApp
from tests.conftest import sent, snapshot, utc
from tests.test_web import ACCOUNT, INBOUND, PUBLIC, TOKEN

URL = PUBLIC + "/twilio/sms"
SID = "SM" + "ab" * 16
HELP = dict(INBOUND, MessageSid=SID, Body="HELP")  # Vera asks for a call


def pairs_sign(pairs: list[tuple[str, str]]) -> str:
    return RequestValidator(TOKEN).compute_signature(URL, dict(pairs))


def post(app: WebhookApp, pairs: list[tuple[str, str]], signature: str) -> str:
    """POST these exact pairs (repeats included) to /twilio/sms with this signature."""
    body = urlencode(pairs).encode()
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/twilio/sms", "QUERY_STRING": "",
               "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body)}
    environ["HTTP_X_TWILIO_SIGNATURE"] = signature
    captured: dict[str, Any] = {}
    b"".join(app(environ, lambda status, headers: captured.update(status=status)))
    return str(captured["status"])


def signed_string(pairs: list[tuple[str, str]]) -> str:
    """What the signature covers after the URL: every name and value, sorted by name, run together."""
    return "".join(name + value for name, value in sorted(pairs))


def resplits(params: dict[str, str]) -> dict[str, list[tuple[str, str]]]:
    """Re-splittings of a captured request that keep its signed string, so its signature:
    the sid losing its first letter to a new name, a value swallowing the start of the next
    name (leaving a made-up one), and the sid swallowing the whole next parameter."""
    target = signed_string(list(params.items()))
    names, sid = sorted(params), params["MessageSid"]
    found: dict[str, list[tuple[str, str]]] = {}

    def keep(label: str, changed: dict[str, str]) -> None:
        if signed_string(list(changed.items())) == target:
            found[label] = list(changed.items())

    moved = {n: v for n, v in params.items() if n != "MessageSid"}
    keep("MessageSidS=M…", {**moved, "MessageSidS": sid[1:]})
    after_sid = names[names.index("MessageSid") + 1]
    # Prefer the boundary after the sid (a "new" sid each time); else any adjacent pair.
    pairs = [("MessageSid", after_sid)] + list(zip(names, names[1:]))
    for first, second in pairs:
        for k in range(1, len(second)):
            rest = second[k:]
            if rest in params:
                continue
            changed = {n: v for n, v in params.items() if n != second}
            changed[first] = params[first] + second[:k]
            changed[rest] = params[second]
            before = len(found)
            keep(f"{first}=…{second[:k]} + made-up {rest}=…", changed)
            if len(found) > before:
                break
        else:
            continue
        break
    swallowed = {n: v for n, v in params.items() if n != after_sid}
    keep(f"MessageSid=<sid>{after_sid}…", {**swallowed, "MessageSid": sid + after_sid + params[after_sid]})
    assert len(found) == 3, found
    return found


@pytest.fixture
def helped(engine, oakfield, ok):
    """Vera's 09:00 check-in is out; her captured HELP was delivered once and asked Jo."""
    from phonetree.gateways.outbox import OutboxGateway
    from schedules.engine import tick

    with freeze_time("2026-11-30 12:00:00"):
        ok("checkin", "add", "Oakfield", "Vera", "--at", "09:00", "--window", "30m", "--escalate-to", "Jo,Sam")
    tick(engine, OutboxGateway(), utc(2026, 12, 1, 9, 0))
    app = WebhookApp(engine, TOKEN, PUBLIC, account_sid=ACCOUNT)
    with freeze_time("2026-12-01 09:05:00"):
        assert post(app, list(HELP.items()), pairs_sign(list(HELP.items()))).startswith("200")
    assert len(sent(engine, to_phone="+447911100002")) == 1  # Jo (07911 100002) asked once
    return app


@pytest.mark.parametrize("variant", list(resplits(HELP)))
def test_a_resplit_capture_still_verifies_but_is_refused_and_changes_nothing(engine, helped, variant, caplog):
    pairs = resplits(HELP)[variant]
    signature = pairs_sign(list(HELP.items()))  # the captured signature, unchanged
    assert RequestValidator(TOKEN).validate(URL, dict(pairs), signature)  # the attack is real
    before = snapshot(engine)
    with freeze_time("2026-12-01 09:06:00"):
        for _ in range(3):
            assert post(helped, pairs, signature).startswith("403")
    assert snapshot(engine) == before
    assert len(sent(engine, to_phone="+447911100002")) == 1
    refusals = [r for r in caplog.records if "not Twilio's own" in r.getMessage()]
    assert len(refusals) == 3 and all(r.levelname == "ERROR" for r in refusals)  # loud: maybe a lost reply
    assert not any(SID[4:] in r.getMessage() or "+4479" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("change", ["other account", "no account", "short sid", "lower prefix", "SmsSid differs",
                                    "repeated Body", "made-up name", "call sid on sms"])
def test_signed_but_not_twilio_shaped_is_refused(engine, helped, change):
    pairs = list(HELP.items())
    if change == "other account":
        pairs = [(n, "AC" + "3" * 32 if n == "AccountSid" else v) for n, v in pairs]
    elif change == "no account":
        pairs = [(n, v) for n, v in pairs if n != "AccountSid"]
    elif change == "short sid":
        pairs = [(n, v[:-1] if n == "MessageSid" else v) for n, v in pairs]
    elif change == "lower prefix":
        pairs = [(n, "sm" + v[2:] if n == "MessageSid" else v) for n, v in pairs]
    elif change == "SmsSid differs":
        pairs.append(("SmsSid", "SM" + "cd" * 16))
    elif change == "repeated Body":
        pairs.append(("Body", "OK"))
    elif change == "made-up name":
        pairs.append(("Extra", "1"))
    elif change == "call sid on sms":
        pairs = [(n, "CA" + v[2:] if n == "MessageSid" else v) for n, v in pairs]
    before = snapshot(engine)
    signature = RequestValidator(TOKEN).compute_signature(URL, Params(urlencode(pairs)))  # repeats too
    with freeze_time("2026-12-01 09:06:00"):
        assert post(helped, pairs, signature).startswith("403")
    assert snapshot(engine) == before


def test_everything_twilio_documents_for_an_inbound_mms_is_accepted(engine, helped):
    """Numbered media parameters, the geographic From*/To* fields and the sid aliases."""
    sid = "MM" + "ef" * 16
    pairs = list(dict(INBOUND, MessageSid=sid, SmsSid=sid, SmsMessageSid=sid, Body="OK", NumMedia="2",
                      MediaUrl0="https://api.twilio.com/x", MediaContentType0="image/jpeg",
                      MediaUrl1="https://api.twilio.com/y", MediaContentType1="image/png", FromCity="LINCOLN",
                      FromState="", FromCountry="GB", ToState="", ToZip="", ToCountry="GB",
                      ApiVersion="2010-04-01", SmsStatus="received", MessagingServiceSid="MG" + "1" * 32).items())
    with freeze_time("2026-12-01 09:06:00"):
        assert post(helped, pairs, pairs_sign(pairs)).startswith("200")
    # Vera's OK after HELP was recorded (what it does is the inbound rules' business).
    from phonetree.db import session_scope
    from phonetree.models import Inbound

    with session_scope(engine) as session:
        assert session.query(Inbound).filter_by(provider_sid=sid).count() == 1


def test_the_checked_sid_dedupes_a_replay(engine, helped):
    before = snapshot(engine)
    with freeze_time("2026-12-01 09:07:00"):
        for _ in range(3):
            assert post(helped, list(HELP.items()), pairs_sign(list(HELP.items()))).startswith("200")
    assert snapshot(engine) == before
