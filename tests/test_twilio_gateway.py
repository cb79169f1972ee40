"""The twilio gateway, run with the REAL twilio client over real sockets against the stand-in
(tests/twilio_standin.py): request parameters, TwiML, every error mapping in TWILIO.md "Codes",
network failures, the base-URL override, settings errors, and the stand-in's signed webhooks."""
from __future__ import annotations

import io
import logging
import re
import socket
import threading
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import parse_qs, urlencode, urlsplit
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from freezegun import freeze_time
from sqlalchemy import create_engine, select
from twilio.base.exceptions import TwilioException

from phonetree.config import Settings
from phonetree.db import session_scope
from phonetree.errors import PhonetreeError
from phonetree.gateways import base, get_gateway
from phonetree.gateways.base import GatewayError, Outgoing
from phonetree.gateways.twilio import (
    TwilioGateway,
    call_twiml,
    classify_status_error,
    gather_reply_twiml,
    retry_gather_twiml,
)
from phonetree.models import CheckIn, Inbound, Member, Message
from phonetree.web import Request, WebhookApp
from schedules.engine import tick
from tests.conftest import LANDLINE, snapshot, utc
from tests.twilio_standin import DEFAULT_SID, DEFAULT_TOKEN, TwilioStandIn

PUBLIC = "https://phonetree.example.org"
FROM = "+447700900123"
TO = "+447911100001"
SERVICE = "MG" + "ab" * 16
CHECKIN = "Hi Vera, just checking in. Reply OK if all is well, or CALL if you'd like a call."
SPOKEN = "Hello Vera. This is your daily call. Press 1 if you are OK."


def sms(message_id: int = 42, validity_s: int | None = 3600, body: str = CHECKIN) -> Outgoing:
    return Outgoing(message_id=message_id, to=TO, channel="sms", kind="checkin", body=body,
                    validity_s=validity_s)


def voice(message_id: int = 43, gather: bool = True, body: str = SPOKEN) -> Outgoing:
    return Outgoing(message_id=message_id, to=TO, channel="voice", kind="checkin", body=body,
                    gather=gather)


@pytest.fixture
def settings_for(standin: TwilioStandIn) -> Callable[..., Settings]:
    def make(**changes: Any) -> Settings:
        values: dict[str, Any] = dict(
            gateway="twilio", public_url=PUBLIC, twilio_account_sid=standin.account_sid,
            twilio_auth_token=standin.auth_token, twilio_from_number=FROM,
            twilio_api_base_url=standin.base_url,
        )
        values.update(changes)
        return Settings(**values)

    return make


@pytest.fixture
def gateway(settings_for: Callable[..., Settings]) -> TwilioGateway:
    return TwilioGateway.from_settings(settings_for())


def twiml_of(standin: TwilioStandIn, sid: str) -> ET.Element:
    return ET.fromstring(standin.resource(sid).params["Twiml"])  # must parse as XML


# -- sending


def test_send_sms_posts_what_twilio_needs(standin: TwilioStandIn, gateway: TwilioGateway) -> None:
    sid = gateway.send_sms(sms())
    assert re.fullmatch(r"SM[0-9a-f]{32}", sid)
    [request] = standin.requests_to("Messages")
    assert request.path == f"/2010-04-01/Accounts/{DEFAULT_SID}/Messages.json"
    assert request.auth == (DEFAULT_SID, DEFAULT_TOKEN)
    assert request.params == {
        "To": TO, "From": FROM, "Body": CHECKIN, "ValidityPeriod": "3600",
        "StatusCallback": f"{PUBLIC}/twilio/status/message?m=42",
    }
    assert standin.resource(sid).kind == "Messages"


def test_successive_sends_reuse_one_connection_as_with_twilio(standin: TwilioStandIn,
                                                              gateway: TwilioGateway) -> None:
    # Twilio's API keeps connections alive; so does the stand-in (HTTP/1.1), and the real
    # client reuses its connection: no handshake per message to slow (or flatter) a benchmark.
    for _ in range(3):
        gateway.send_sms(sms())
    assert len({r.client for r in standin.requests_to("Messages")}) == 1


def test_the_registry_builds_the_twilio_gateway(settings_for: Callable[..., Settings]) -> None:
    assert isinstance(get_gateway(settings_for()), TwilioGateway)


@pytest.mark.parametrize("validity_s, sent", [(None, None), (0, "1"), (-5, "1"), (1, "1"),
                                              (600, "600"), (36000, "36000"), (90000, "36000")])
def test_validity_period_is_clamped_to_what_twilio_accepts(
        standin: TwilioStandIn, gateway: TwilioGateway, validity_s: int | None,
        sent: str | None) -> None:
    gateway.send_sms(sms(validity_s=validity_s))
    assert standin.requests_to("Messages")[-1].params.get("ValidityPeriod") == sent


def test_a_messaging_service_sends_instead_of_the_from_number(
        standin: TwilioStandIn, settings_for: Callable[..., Settings]) -> None:
    gateway = TwilioGateway.from_settings(settings_for(twilio_from_number=None,
                                                       twilio_messaging_service_sid=SERVICE))
    gateway.send_sms(sms(validity_s=900))
    params = standin.requests_to("Messages")[-1].params
    assert params["MessagingServiceSid"] == SERVICE
    assert "From" not in params
    assert params["ValidityPeriod"] == "900"


def test_a_messaging_service_cannot_place_calls(
        standin: TwilioStandIn, settings_for: Callable[..., Settings]) -> None:
    gateway = TwilioGateway.from_settings(settings_for(twilio_from_number=None,
                                                       twilio_messaging_service_sid=SERVICE))
    with pytest.raises(GatewayError) as caught:
        gateway.place_call(voice())
    assert caught.value.action == base.CONFIG and caught.value.permanent
    assert "TWILIO_FROM_NUMBER" in caught.value.message
    assert standin.requests == []


def test_place_call_posts_twiml_with_a_gather(standin: TwilioStandIn,
                                              gateway: TwilioGateway) -> None:
    sid = gateway.place_call(voice())
    assert re.fullmatch(r"CA[0-9a-f]{32}", sid)
    [request] = standin.requests_to("Calls")
    assert request.path == f"/2010-04-01/Accounts/{DEFAULT_SID}/Calls.json"
    params = request.params
    assert (params["To"], params["From"]) == (TO, FROM)
    assert params["Timeout"] == "25"
    assert params["MachineDetection"] == "Enable"
    assert params["StatusCallback"] == f"{PUBLIC}/twilio/voice/status?m=43"
    assert request.multi["StatusCallbackEvent"] == ["completed"]
    assert params["StatusCallbackMethod"] == "POST"
    assert len(params["Twiml"]) <= 4000

    root = twiml_of(standin, sid)
    assert root.tag == "Response"
    [gather] = list(root)  # nothing after the Gather: actionOnEmptyResult means it is unreachable
    assert gather.tag == "Gather"
    assert gather.attrib == {
        "input": "dtmf", "numDigits": "1", "timeout": "8", "method": "POST",
        "action": f"{PUBLIC}/twilio/voice/gather?m=43", "actionOnEmptyResult": "true",
    }
    [say] = list(gather)
    assert (say.tag, say.get("language"), say.text) == ("Say", "en-GB", SPOKEN)
    assert standin.gather_action(sid) == f"{PUBLIC}/twilio/voice/gather?m=43"


def test_a_call_without_a_question_just_speaks(standin: TwilioStandIn,
                                               gateway: TwilioGateway) -> None:
    sid = gateway.place_call(voice(gather=False, body="Hello Jo. Vera has been in touch now."))
    root = twiml_of(standin, sid)
    assert [(child.tag, child.get("language"), child.text) for child in root] == [
        ("Say", "en-GB", "Hello Jo. Vera has been in touch now.")]


def test_spoken_text_is_escaped_in_twiml(standin: TwilioStandIn, gateway: TwilioGateway) -> None:
    sid = gateway.place_call(voice(body="Hello Pat & Sam <3"))
    assert twiml_of(standin, sid).find("Gather/Say").text == "Hello Pat & Sam <3"  # type: ignore[union-attr]


def test_twiml_over_4000_characters_is_refused_before_sending(
        standin: TwilioStandIn, gateway: TwilioGateway) -> None:
    with pytest.raises(GatewayError) as caught:
        gateway.place_call(voice(body="Hello. " * 600))
    assert caught.value.action == base.FAILED and caught.value.permanent
    assert standin.requests == []


def test_without_a_public_url_nothing_asks_for_callbacks(
        standin: TwilioStandIn, settings_for: Callable[..., Settings],
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="phonetree.gateways.twilio"):
        gateway = TwilioGateway.from_settings(settings_for(public_url=None))
        gateway.send_sms(sms())
        sid = gateway.place_call(voice())
    assert [r.getMessage() for r in caplog.records].count(caplog.records[0].getMessage()) == 1
    assert "PHONETREE_PUBLIC_URL" in caplog.records[0].getMessage()
    assert "StatusCallback" not in standin.requests_to("Messages")[0].params
    call = standin.requests_to("Calls")[0].params
    assert "StatusCallback" not in call and "StatusCallbackEvent" not in call
    # A keypress could not reach us, so the call doesn't ask for one.
    assert [child.tag for child in twiml_of(standin, sid)] == ["Say"]


def test_a_trailing_slash_on_the_public_url_is_dropped(
        standin: TwilioStandIn, settings_for: Callable[..., Settings]) -> None:
    TwilioGateway.from_settings(settings_for(public_url=PUBLIC + "/")).send_sms(sms(message_id=7))
    assert standin.requests[-1].params["StatusCallback"] == f"{PUBLIC}/twilio/status/message?m=7"


def test_twiml_helpers_for_the_gather_handler() -> None:
    reply = ET.fromstring(gather_reply_twiml("Thank you. Goodbye."))
    assert [(c.tag, c.get("language"), c.text) for c in reply] == [
        ("Say", "en-GB", "Thank you. Goodbye."), ("Hangup", None, None)]
    again = ET.fromstring(retry_gather_twiml(SPOKEN, f"{PUBLIC}/twilio/voice/gather?m=43&attempt=2"))
    [gather] = list(again)
    assert gather.get("action") == f"{PUBLIC}/twilio/voice/gather?m=43&attempt=2"
    assert gather.get("actionOnEmptyResult") == "true"
    assert SPOKEN in (gather.find("Say").text or "")  # type: ignore[union-attr]
    assert [c.tag for c in ET.fromstring(call_twiml("Hi"))] == ["Say"]


# -- errors: every code in TWILIO.md "Codes", through the real client

ERRORS = [
    # (HTTP status, Twilio code, action, permanent)
    (429, 20429, base.RETRY, False),
    (500, 20500, base.RETRY, False),
    (503, 20503, base.RETRY, False),
    (400, 30001, base.RETRY, False),
    (400, 21611, base.RETRY, False),
    (400, 30003, base.RETRY_LATER, False),
    (400, 21211, base.BAD_NUMBER, True),
    (400, 21217, base.BAD_NUMBER, True),
    (400, 30005, base.BAD_NUMBER, True),
    (400, 30006, base.USE_VOICE, True),
    (400, 21614, base.USE_VOICE, True),
    (400, 21610, base.OPTED_OUT, True),
    (400, 30004, base.BLOCKED, True),
    (400, 30007, base.BLOCKED, True),
    (400, 21408, base.CONFIG, True),
    (401, 20003, base.CONFIG, True),
    (400, 21606, base.FAILED, True),   # any other 4xx: permanent
    (404, 20404, base.FAILED, True),
]


def assert_translated(error: GatewayError) -> None:
    """Nothing of Twilio's leaves the gateway, not even as the cause."""
    assert type(error) is GatewayError
    assert not isinstance(error.__cause__, TwilioException)
    assert error.__suppress_context__


@pytest.mark.parametrize("endpoint", ["Messages", "Calls"])
@pytest.mark.parametrize("status, code, action, permanent", ERRORS)
def test_twilio_errors_become_gateway_actions(
        standin: TwilioStandIn, gateway: TwilioGateway, endpoint: str, status: int, code: int,
        action: str, permanent: bool) -> None:
    standin.fail_next(endpoint, status=status, code=code, message=f"Scripted {code}")
    with pytest.raises(GatewayError) as caught:
        gateway.place_call(voice()) if endpoint == "Calls" else gateway.send_sms(sms())
    error = caught.value
    assert_translated(error)
    assert (error.action, error.permanent, error.code) == (action, permanent, code)
    assert f"Scripted {code}" in error.message
    assert "\n" not in error.message
    # Tried once: the dispatcher, not the gateway, decides when to try again.
    assert len(standin.requests_to(endpoint)) == 1


def test_geo_permissions_says_what_to_fix(standin: TwilioStandIn, gateway: TwilioGateway) -> None:
    standin.fail_next("Messages", status=400, code=21408,
                      message="Permission to send an SMS has not been enabled for the region")
    with pytest.raises(GatewayError) as caught:
        gateway.send_sms(sms())
    assert "lacks permission to send to that country" in caught.value.message
    assert "Geo Permissions" in caught.value.message


def test_phone_numbers_in_twilio_messages_are_masked(standin: TwilioStandIn,
                                                     gateway: TwilioGateway) -> None:
    standin.fail_next("Messages", status=400, code=21211,
                      message=f"The 'To' number {TO} is not a valid phone number.")
    with pytest.raises(GatewayError) as caught:
        gateway.send_sms(sms())
    assert TO not in caught.value.message
    assert "07911 ***001" in caught.value.message


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_proxy_error_page_is_transient(standin: TwilioStandIn, gateway: TwilioGateway,
                                         status: int) -> None:
    standin.respond_next("Messages", status, "<html><body>Bad Gateway</body></html>",
                         content_type="text/html")
    with pytest.raises(GatewayError) as caught:
        gateway.send_sms(sms())
    assert_translated(caught.value)
    assert (caught.value.action, caught.value.permanent) == (base.RETRY, False)


def test_a_429_without_a_code_is_transient(standin: TwilioStandIn, gateway: TwilioGateway) -> None:
    standin.respond_next("Messages", 429, "", content_type="text/plain")
    with pytest.raises(GatewayError) as caught:
        gateway.send_sms(sms())
    assert caught.value.action == base.RETRY


def test_an_unreadable_success_is_transient(standin: TwilioStandIn, gateway: TwilioGateway) -> None:
    standin.respond_next("Messages", 200, "<html>hello from a captive portal</html>",
                         content_type="text/html")
    with pytest.raises(GatewayError) as caught:
        gateway.send_sms(sms())
    assert_translated(caught.value)
    assert caught.value.action == base.RETRY


def test_a_wrong_token_is_a_configuration_error(
        standin: TwilioStandIn, settings_for: Callable[..., Settings]) -> None:
    gateway = TwilioGateway.from_settings(settings_for(twilio_auth_token="not-the-token"))
    with pytest.raises(GatewayError) as caught:
        gateway.send_sms(sms())
    assert (caught.value.action, caught.value.code) == (base.CONFIG, 20003)
    assert standin.requests[-1].status == 401
    assert "not-the-token" not in caught.value.message


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port that refuses connections: bound for the whole test but never listening, so no
    other process can start listening on it meanwhile."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def test_connection_refused_is_transient(settings_for: Callable[..., Settings], closed_port: int) -> None:
    gateway = TwilioGateway.from_settings(
        settings_for(twilio_api_base_url=f"http://127.0.0.1:{closed_port}"))
    for send in (lambda: gateway.send_sms(sms()), lambda: gateway.place_call(voice())):
        with pytest.raises(GatewayError) as caught:
            send()
        assert_translated(caught.value)
        assert (caught.value.action, caught.value.permanent) == (base.RETRY, False)


def test_a_timeout_is_transient(standin: TwilioStandIn,
                                settings_for: Callable[..., Settings]) -> None:
    gateway = TwilioGateway.from_settings(settings_for(), timeout=0.3)
    standin.delay_next("Messages", 1.5)
    with pytest.raises(GatewayError) as caught:
        gateway.send_sms(sms())
    assert (caught.value.action, caught.value.permanent) == (base.RETRY, False)
    assert "in time" in caught.value.message


def test_the_client_has_a_timeout(gateway: TwilioGateway) -> None:
    assert gateway.client.http_client.timeout == 10.0


# -- base URL override


def test_base_url_override_survives_twilio_edge_and_region(
        monkeypatch: pytest.MonkeyPatch, standin: TwilioStandIn,
        settings_for: Callable[..., Settings]) -> None:
    monkeypatch.setenv("TWILIO_EDGE", "dublin")
    monkeypatch.setenv("TWILIO_REGION", "ie1")
    gateway = TwilioGateway.from_settings(settings_for())
    gateway.send_sms(sms())
    gateway.place_call(voice())
    assert [r.endpoint for r in standin.requests] == ["Messages", "Calls"]
    assert (gateway.client.edge, gateway.client.region) == (None, None)


def test_without_an_override_edge_and_region_are_left_to_the_operator(
        monkeypatch: pytest.MonkeyPatch, settings_for: Callable[..., Settings]) -> None:
    monkeypatch.setenv("TWILIO_REGION", "ie1")
    gateway = TwilioGateway.from_settings(settings_for(twilio_api_base_url=None))
    assert gateway.client.region == "ie1"
    assert gateway.client.api.base_url == "https://api.twilio.com"


# -- settings errors


@pytest.mark.parametrize("changes, names", [
    ({"twilio_account_sid": None}, ["TWILIO_ACCOUNT_SID"]),
    ({"twilio_auth_token": None}, ["TWILIO_AUTH_TOKEN"]),
    ({"twilio_from_number": None}, ["TWILIO_FROM_NUMBER", "TWILIO_MESSAGING_SERVICE_SID"]),
    ({"twilio_account_sid": None, "twilio_from_number": None},
     ["TWILIO_ACCOUNT_SID", "TWILIO_FROM_NUMBER"]),
    ({"twilio_api_base_url": "127.0.0.1:9999"}, ["TWILIO_API_BASE_URL"]),
])
def test_missing_settings_say_which_variable_to_set(
        settings_for: Callable[..., Settings], changes: dict[str, Any], names: list[str]) -> None:
    with pytest.raises(PhonetreeError) as caught:
        TwilioGateway.from_settings(settings_for(**changes))
    message = str(caught.value)
    assert "\n" not in message
    for name in names:
        assert name in message
    assert DEFAULT_TOKEN not in message


def test_a_token_pasted_into_the_wrong_variable_is_not_echoed(
        settings_for: Callable[..., Settings]) -> None:
    with pytest.raises(PhonetreeError) as caught:
        TwilioGateway.from_settings(settings_for(twilio_from_number=None,
                                                 twilio_account_sid=DEFAULT_TOKEN))
    assert DEFAULT_TOKEN not in str(caught.value)


def test_the_twilio_package_is_imported_only_by_the_gateway_and_web() -> None:
    root = Path(__file__).resolve().parent.parent
    importers = {
        str(path.relative_to(root))
        for folder in ("phonetree", "schedules", "cli") for path in (root / folder).rglob("*.py")
        if re.search(r"^\s*(from|import)\s+twilio\b", path.read_text(), re.MULTILINE)
    }
    assert importers <= {"phonetree/gateways/twilio.py", "phonetree/web.py"}


# -- delivery receipts


@pytest.mark.parametrize("error_code, action", [
    (None, None), ("", None), ("0", None),
    ("30003", base.RETRY_LATER), (30003, base.RETRY_LATER),
    ("30001", base.RETRY), ("30005", base.BAD_NUMBER), ("30006", base.USE_VOICE),
    ("30004", base.BLOCKED), ("30007", base.BLOCKED), ("21610", base.OPTED_OUT),
    ("21408", base.CONFIG), ("30008", base.FAILED), ("nonsense", base.FAILED),
])
def test_classify_status_error(error_code: str | int | None, action: str | None) -> None:
    assert classify_status_error(error_code) == action


# -- Twilio's webhooks, as the stand-in signs and delivers them, into phonetree's own app


def wsgi_post(url: str, params: dict[str, str], signature: str) -> dict[str, Any]:
    """The WSGI environ of a POST of `params` to `url`, as it reaches us behind a TLS proxy."""
    parts = urlsplit(url)
    body = urlencode(params).encode()
    return {"REQUEST_METHOD": "POST", "PATH_INFO": parts.path, "QUERY_STRING": parts.query,
            "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
            "HTTP_X_TWILIO_SIGNATURE": signature}


def test_phonetree_checks_signatures_as_twilio_signs_them() -> None:
    # twilio-python's own test vector (TWILIO.md "Signatures"). Its five params use
    # +14158675309 as Caller and From; with any other number the signature differs.
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {"CallSid": "CA1234567890ABCDE", "Caller": "+14158675309", "Digits": "1234",
              "From": "+14158675309", "To": "+18005551212"}
    vector = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    app = WebhookApp(create_engine("sqlite://"), "12345", "https://mycompany.com")
    assert app.is_signed(Request(wsgi_post(url, params, vector)))
    assert not app.is_signed(Request(wsgi_post(url, {**params, "Digits": "1235"}, vector)))
    assert not app.is_signed(Request(wsgi_post(url.replace("foo=1", "foo=2"), params, vector)))
    assert not WebhookApp(create_engine("sqlite://"), "54321", "https://mycompany.com").is_signed(
        Request(wsgi_post(url, params, vector)))
    # The stand-in signs the same way, so the webhook tests below sign as Twilio would.
    assert TwilioStandIn(auth_token="12345").sign(url, params) == vector


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def phonetree_app(engine) -> Iterator[Callable[[str], str]]:
    """`phonetree_app(public_url)`: web.py's WebhookApp, every route its own, on a plain-http
    local port (bound as the server is made: no port to lose), told its public URL is
    https://... as behind a TLS proxy. Returns the local address."""
    servers: list[WSGIServer] = []

    def serve(public_url: str) -> str:
        server: WSGIServer = make_server("127.0.0.1", 0, WebhookApp(engine, DEFAULT_TOKEN, public_url,
                                                                    account_sid=DEFAULT_SID),
                                         handler_class=QuietHandler)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("public", [PUBLIC, "https://example.org/phonetree"])
def test_callbacks_signed_for_the_public_url_reach_phonetree_behind_a_proxy(
        oakfield: str, ok: Callable[..., Any], engine: Any, phonetree_app: Callable[[str], str],
        public: str) -> None:
    # With a path prefix on the public URL the proxy strips it: phonetree still checks the
    # signature over the public URL, prefix and all.
    with freeze_time("2026-11-30 12:00:00"):
        ok("member", "add", "Oakfield", "Lil", "--phone", LANDLINE)
        for name in ("Vera", "Lil"):
            ok("checkin", "add", "Oakfield", name, "--at", "09:00", "--escalate-to", "Jo", "--reminder", "off")
    address = phonetree_app(public)
    with TwilioStandIn(public_url=public, deliver_to=address, number=FROM) as twilio:
        settings = Settings(gateway="twilio", public_url=public, twilio_account_sid=twilio.account_sid,
                            twilio_auth_token=twilio.auth_token, twilio_from_number=FROM,
                            twilio_api_base_url=twilio.base_url)
        tick(engine, TwilioGateway.from_settings(settings), utc(2026, 12, 1, 9, 0))
        [text], [call] = twilio.messages, twilio.calls
        prompt_id, call_id = (int(parse_qs(urlsplit(r.params["StatusCallback"]).query)["m"][0])
                              for r in (text, call))
        assert text.params["StatusCallback"] == f"{public}/twilio/status/message?m={prompt_id}"
        with freeze_time("2026-12-01 09:02:00"):
            assert twilio.send_status(text.sid, "delivered")[0] == 200
            status, again = twilio.press_key(call.sid, "")  # no key yet: asked once more
            assert status == 200
            [gather] = list(ET.fromstring(again))
            assert gather.get("action") == f"{public}/twilio/voice/gather?m={call_id}&attempt=2"
            status, thanks = twilio.press_key(call.sid, "1")
            assert status == 200 and "Glad you're OK" in thanks
            assert twilio.send_call_status(call.sid, "completed", answered_by="human", duration=31)[0] == 200
            assert twilio.send_inbound_sms(TO, "OK")[0] == 200
            before = snapshot(engine)
            # A forged or missing signature is refused, and changes nothing.
            assert twilio.post(f"{public}/twilio/sms", {"From": TO, "Body": "HELP"},
                               signature="bm9wZQ==")[0] == 403
            assert twilio.post(f"{public}/twilio/sms", {"From": TO, "Body": "HELP"}, signed=False)[0] == 403
            assert snapshot(engine) == before
    with session_scope(engine) as session:
        states = dict(session.execute(select(Member.name, CheckIn.state).join(Member, Member.id == CheckIn.member_id)
                                      .where(CheckIn.state != "scheduled")).all())
        assert states == {"Vera": "answered", "Lil": "answered"}
        prompt, spoken = session.get(Message, prompt_id), session.get(Message, call_id)
        assert (prompt.state, prompt.provider_status) == ("delivered", "delivered")
        assert (spoken.state, spoken.provider_status) == ("delivered", "completed")
        assert sorted((i.channel, i.body) for i in session.scalars(select(Inbound))) == [("sms", "OK"), ("voice", "1")]


@pytest.mark.parametrize("change, code, action, reason", [
    ({"body": ""}, 21602, base.FAILED, "Message body is required"),
    ({"sid": "AC" + "0" * 32}, 20003, base.CONFIG, "check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"),
])
def test_a_request_twilio_refuses_for_good_is_tried_once_and_says_why(
        standin: TwilioStandIn, settings_for: Callable[..., Settings], change: dict[str, str], code: int,
        action: str, reason: str) -> None:
    # Refused by the stand-in's own checks, as Twilio refuses (nothing scripted): phonetree
    # gives up at once, with Twilio's reason on one line and nothing of Twilio's client.
    settings = settings_for(**({"twilio_account_sid": change["sid"]} if "sid" in change else {}))
    with pytest.raises(GatewayError) as caught:
        TwilioGateway.from_settings(settings).send_sms(sms(body=change.get("body", CHECKIN)))
    assert_translated(caught.value)
    assert (caught.value.code, caught.value.action, caught.value.permanent) == (code, action, True)
    assert reason in caught.value.message and "\n" not in caught.value.message
    assert len(standin.requests_to("Messages")) == 1
