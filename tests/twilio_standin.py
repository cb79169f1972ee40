"""A local stand-in for Twilio, over real sockets, for tests that run the real twilio client.

It serves the two REST endpoints phonetree uses (Messages.json and Calls.json under
/2010-04-01/Accounts/<sid>/), checks basic auth, answers with Twilio's JSON shapes, records every
request, and can be scripted to fail. It also plays Twilio's side of the webhooks: status
callbacks, inbound SMS and keypresses, signed exactly as Twilio signs them.

Behind a TLS-terminating proxy Twilio signs the public https:// URL but the app receives plain
http:// on another address; so the stand-in signs with `public_url` and delivers to `deliver_to`.

    with TwilioStandIn(public_url="https://phonetree.example.org",
                       deliver_to="http://127.0.0.1:8080") as twilio:
        settings = Settings(..., twilio_api_base_url=twilio.base_url)
        twilio.fail_next("Messages", status=400, code=21211, message="not a valid phone number")
"""
from __future__ import annotations

import base64
import json
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.error import HTTPError
from urllib.parse import parse_qs, urlencode, urlsplit
from urllib.request import ProxyHandler, Request, build_opener

from twilio.request_validator import RequestValidator

API_VERSION = "2010-04-01"
DEFAULT_SID = "AC" + "0123456789abcdef" * 2
DEFAULT_TOKEN = "standin-auth-token-0123456789ab"
DEFAULT_NUMBER = "+447700900123"
ENDPOINTS = ("Messages", "Calls")

# Never route the stand-in's callbacks through an HTTP(S)_PROXY from the environment.
_OPENER = build_opener(ProxyHandler({}))


@dataclass(frozen=True)
class Recorded:
    """One request the stand-in received."""

    method: str
    path: str
    endpoint: str | None           # Messages | Calls | None (anything else)
    params: dict[str, str]         # form params, first value of each
    multi: dict[str, list[str]]    # every value (StatusCallbackEvent repeats)
    auth: tuple[str, str] | None   # basic-auth user and password as sent
    headers: dict[str, str]
    status: int                    # what the stand-in answered
    client: tuple[str, int] = ("", 0)  # the connection it came on (address, port)
    at: float = 0.0                # when it arrived (time.monotonic), before any latency


@dataclass
class Planned:
    status: int
    body: str
    content_type: str = "application/json"
    delay: float = 0.0


@dataclass
class Resource:
    """A created message or call: what was asked for, as Twilio would remember it."""

    sid: str
    kind: str  # Messages | Calls
    params: dict[str, str]
    multi: dict[str, list[str]] = field(default_factory=dict)


def twilio_error(status: int, code: int, message: str) -> str:
    """Twilio's (legacy, what the API actually sends) error body."""
    return json.dumps({"code": code, "message": message,
                       "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status})


def _now_rfc2822() -> str:
    return formatdate(time.time(), usegmt=True).replace("GMT", "+0000")


class TwilioStandIn:
    def __init__(self, account_sid: str = DEFAULT_SID, auth_token: str = DEFAULT_TOKEN,
                 public_url: str = "https://phonetree.example.org", deliver_to: str | None = None,
                 number: str = DEFAULT_NUMBER, latency: float = 0.0) -> None:
        self.account_sid = account_sid
        # Seconds every Messages/Calls request takes to answer, as Twilio's API takes 100-300 ms.
        self.latency = latency
        self.auth_token = auth_token
        self.public_url = public_url.rstrip("/")
        self.deliver_to = (deliver_to or self.public_url).rstrip("/")
        self.number = number
        self.validator = RequestValidator(auth_token)
        self._lock = threading.Lock()
        self._requests: list[Recorded] = []
        self._planned: dict[str, list[Planned]] = {name: [] for name in ENDPOINTS}
        self._resources: dict[str, Resource] = {}
        # The account's own numbers (IncomingPhoneNumbers), each with where Twilio posts an
        # inbound SMS: by default the sending number, pointed at the app's /twilio/sms.
        self.incoming_numbers: dict[str, dict[str, str]] = {
            number: {"sms_url": f"{self.public_url}/twilio/sms", "sms_method": "POST"}}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> "TwilioStandIn":
        standin = self

        class Handler(BaseHTTPRequestHandler):
            # Keep-alive, as Twilio's API does: a client that reuses its connection must not be
            # slowed by one TCP handshake per request, or benchmarks against it flatter us.
            protocol_version = "HTTP/1.1"
            # TCP_NODELAY, as any real HTTP server sets it: http.server writes the headers and
            # the body in two sends, and with Nagle on a kept-alive connection the body waited
            # for the client's delayed ACK, ~40 ms a request (measured: 48 ms p50 per create at
            # "no added latency"), which made the bare loop as slow as phonetree and every ratio 1.
            disable_nagle_algorithm = True

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                standin._handle(self)

            def do_GET(self) -> None:  # noqa: N802
                standin._handle(self)

            def log_message(self, format: str, *args: Any) -> None:  # quiet test output
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.block_on_close = False  # a scripted slow answer must not hold up stop()
        self._server = server
        # A short poll interval: shutdown() waits for it, once per test.
        self._thread = threading.Thread(target=server.serve_forever, name="twilio-standin",
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "TwilioStandIn":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """Where the REST API listens: give this to the client as its api base_url."""
        assert self._server is not None, "start() the stand-in first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # -- scripting and inspection

    def fail_next(self, endpoint: str, status: int = 500, code: int | None = None,
                  message: str | None = None, delay: float = 0.0, times: int = 1) -> None:
        """Answer the next `times` requests to `endpoint` (Messages | Calls) with an error in
        Twilio's JSON shape; `code` defaults to the HTTP status, as Twilio's own 5xx do."""
        body = twilio_error(status, code if code is not None else status,
                            message or f"Scripted failure {status}")
        self.respond_next(endpoint, status, body, delay=delay, times=times)

    def respond_next(self, endpoint: str, status: int, body: str,
                     content_type: str = "application/json", delay: float = 0.0,
                     times: int = 1) -> None:
        """Answer the next request(s) with exactly this (e.g. a proxy's HTML 502). With a
        2xx status and an empty body, the request is processed normally after `delay`."""
        if endpoint not in self._planned:
            raise ValueError(f"unknown endpoint {endpoint!r} (choose {' or '.join(ENDPOINTS)})")
        with self._lock:
            self._planned[endpoint].extend(Planned(status, body, content_type, delay)
                                           for _ in range(times))

    def delay_next(self, endpoint: str, seconds: float) -> None:
        """Process the next request normally, but only after `seconds` (to trip a timeout)."""
        self.respond_next(endpoint, 201, "", delay=seconds)

    def recover(self, endpoint: str) -> None:
        """The provider is back: scripted answers not yet given to `endpoint` are dropped."""
        with self._lock:
            self._planned[endpoint].clear()

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, endpoint: str) -> list[Recorded]:
        return [r for r in self.requests if r.endpoint == endpoint]

    def resource(self, sid: str) -> Resource:
        with self._lock:
            return self._resources[sid]

    @property
    def messages(self) -> list[Resource]:
        with self._lock:
            return [r for r in self._resources.values() if r.kind == "Messages"]

    @property
    def calls(self) -> list[Resource]:
        with self._lock:
            return [r for r in self._resources.values() if r.kind == "Calls"]

    # -- the REST side

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        arrived = time.monotonic()
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length).decode("utf-8") if length else ""
        multi = parse_qs(raw, keep_blank_values=True)
        if handler.command == "GET":  # a list's filters come in the query
            multi = parse_qs(urlsplit(handler.path).query, keep_blank_values=True)
        params = {name: values[0] for name, values in multi.items()}
        auth = _basic_auth(handler.headers.get("Authorization"))
        path = urlsplit(handler.path).path
        endpoint = self._endpoint(path)

        status, body, content_type, delay = self._answer(handler.command, path, endpoint, auth,
                                                         params, multi)
        if endpoint is not None and self.latency:
            delay += self.latency
        if delay:
            time.sleep(delay)
        with self._lock:
            self._requests.append(Recorded(handler.command, path, endpoint, params, multi, auth,
                                           dict(handler.headers.items()), status,
                                           tuple(handler.client_address[:2]), arrived))
        encoded = body.encode("utf-8")
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(encoded)))
            handler.end_headers()
            handler.wfile.write(encoded)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test): nothing to answer

    def _endpoint(self, path: str) -> str | None:
        prefix = f"/{API_VERSION}/Accounts/"
        if not path.startswith(prefix) or not path.endswith(".json"):
            return None
        name = path[len(prefix):-len(".json")].split("/")
        return name[1] if len(name) == 2 and name[1] in ENDPOINTS else None

    def _answer(self, method: str, path: str, endpoint: str | None, auth: tuple[str, str] | None,
                params: dict[str, str], multi: dict[str, list[str]]) -> tuple[int, str, str, float]:
        json_type = "application/json"
        if auth != (self.account_sid, self.auth_token):
            return 401, twilio_error(401, 20003, "Authenticate"), json_type, 0.0
        if method == "GET" and path == f"/{API_VERSION}/Accounts/{self.account_sid}/IncomingPhoneNumbers.json":
            return 200, self._incoming_numbers(path, params), json_type, 0.0
        if endpoint is None or method != "POST":
            return 404, twilio_error(404, 20404, f"The requested resource {path} was not found"), \
                json_type, 0.0
        if path.split("/")[3] != self.account_sid:
            return 403, twilio_error(403, 20003, "Authenticate"), json_type, 0.0
        delay = 0.0
        with self._lock:
            planned = self._planned[endpoint].pop(0) if self._planned[endpoint] else None
        if planned is not None:
            if planned.body or not 200 <= planned.status < 300:
                return planned.status, planned.body, planned.content_type, planned.delay
            delay = planned.delay
        problem = self._invalid(endpoint, params)
        if problem is not None:
            return 400, twilio_error(400, *problem), json_type, delay
        if endpoint == "Messages":
            sid, payload = self._message(params)
        else:
            sid, payload = self._call(params)
        with self._lock:
            self._resources[sid] = Resource(sid, endpoint, params, multi)
        return 201, json.dumps(payload), json_type, delay

    @staticmethod
    def _invalid(endpoint: str, params: dict[str, str]) -> tuple[int, str] | None:
        if endpoint == "Messages":
            if not params.get("To"):
                return 21604, "A 'To' phone number is required."
            if not (params.get("From") or params.get("MessagingServiceSid")):
                return 21603, "A 'From' phone number is required."
            if not (params.get("Body") or params.get("MediaUrl") or params.get("ContentSid")):
                return 21602, "Message body is required."
            if len(params.get("Body", "").encode("utf-16-le")) // 2 > 1600:
                return 21617, "The concatenated message body exceeds the 1600 character limit."
            validity = params.get("ValidityPeriod")
            if validity is not None and not (validity.isdigit() and 1 <= int(validity) <= 36000):
                return 90007, "Invalid validity period value"
            return None
        if not params.get("To") or not params.get("From"):
            return 21200, "Both 'To' and 'From' are required to create a call."
        if not (params.get("Url") or params.get("Twiml") or params.get("ApplicationSid")):
            return 21200, "One of Url, Twiml or ApplicationSid is required."
        if len(params.get("Twiml", "")) > 4000:
            return 21200, "Twiml is longer than 4000 characters."
        return None

    def set_incoming_number(self, number: str, sms_url: str | None, sms_method: str = "POST") -> None:
        """Put a number on the account with this inbound-SMS URL (None: take it off)."""
        with self._lock:
            if sms_url is None:
                self.incoming_numbers.pop(number, None)
            else:
                self.incoming_numbers[number] = {"sms_url": sms_url, "sms_method": sms_method}

    def _incoming_numbers(self, path: str, params: dict[str, str]) -> str:
        """A page of IncomingPhoneNumbers, filtered by PhoneNumber as Twilio filters it."""
        wanted = params.get("PhoneNumber")
        with self._lock:
            numbers = {n: dict(v) for n, v in self.incoming_numbers.items() if wanted in (None, n)}
        records = [{
            "account_sid": self.account_sid, "api_version": API_VERSION, "friendly_name": number,
            "phone_number": number, "sid": "PN" + uuid.uuid5(uuid.NAMESPACE_OID, number).hex,
            "sms_url": settings["sms_url"], "sms_method": settings["sms_method"],
            "sms_fallback_url": "", "voice_url": "", "capabilities": {"sms": True, "voice": True},
            "uri": f"/{API_VERSION}/Accounts/{self.account_sid}/IncomingPhoneNumbers/PN{number}.json",
        } for number, settings in numbers.items()]
        size = int(params.get("PageSize") or 50)
        return json.dumps({
            "incoming_phone_numbers": records, "page": 0, "page_size": size, "start": 0,
            "end": max(len(records) - 1, 0), "first_page_uri": f"{path}?PageSize={size}&Page=0",
            "next_page_uri": None, "previous_page_uri": None, "uri": f"{path}?PageSize={size}&Page=0",
        })

    def _uri(self, kind: str, sid: str) -> str:
        return f"/{API_VERSION}/Accounts/{self.account_sid}/{kind}/{sid}.json"

    def _message(self, params: dict[str, str]) -> tuple[str, dict[str, Any]]:
        sid = "SM" + uuid.uuid4().hex
        now = _now_rfc2822()
        # With only a Messaging Service, Twilio answers "accepted" and picks From later.
        status = "queued" if params.get("From") else "accepted"
        return sid, {
            "account_sid": self.account_sid, "api_version": API_VERSION,
            "body": params.get("Body", ""), "date_created": now, "date_sent": None,
            "date_updated": now, "direction": "outbound-api", "error_code": None,
            "error_message": None, "from": params.get("From"),
            "messaging_service_sid": params.get("MessagingServiceSid"), "num_media": "0",
            "num_segments": "1", "price": None, "price_unit": "USD", "sid": sid, "status": status,
            "subresource_uris": {"media": self._uri("Messages", sid).replace(".json", "/Media.json")},
            "to": params.get("To"), "uri": self._uri("Messages", sid),
        }

    def _call(self, params: dict[str, str]) -> tuple[str, dict[str, Any]]:
        sid = "CA" + uuid.uuid4().hex
        now = _now_rfc2822()
        return sid, {
            "account_sid": self.account_sid, "annotation": None, "answered_by": None,
            "api_version": API_VERSION, "caller_name": None, "date_created": now,
            "date_updated": now, "direction": "outbound-api", "duration": None, "end_time": None,
            "forwarded_from": None, "from": params.get("From"),
            "from_formatted": params.get("From"), "group_sid": None, "parent_call_sid": None,
            "phone_number_sid": "PN" + uuid.uuid4().hex, "price": None, "price_unit": "USD",
            "queue_time": "0", "sid": sid, "start_time": None, "status": "queued",
            "subresource_uris": {}, "to": params.get("To"), "to_formatted": params.get("To"),
            "trunk_sid": None, "uri": self._uri("Calls", sid),
        }

    # -- the webhook side (Twilio calling the app)

    def sign(self, url: str, params: dict[str, str]) -> str:
        """X-Twilio-Signature for a POST of `params` to `url` (the public URL)."""
        return str(self.validator.compute_signature(url, params))

    def delivery_url(self, url: str) -> str:
        """Where a request Twilio addresses to the public `url` actually arrives."""
        if url.startswith(self.public_url):
            return self.deliver_to + url[len(self.public_url):]
        parts = urlsplit(url)
        return self.deliver_to + parts.path + (f"?{parts.query}" if parts.query else "")

    def post(self, url: str, params: dict[str, str], signature: str | None = None,
             signed: bool = True) -> tuple[int, str]:
        """POST `params` form-encoded, signed for the public `url`, delivered via `deliver_to`.
        Pass `signature` to send a forged one, or signed=False to send none."""
        data = urlencode(params).encode("utf-8")
        request = Request(self.delivery_url(url), data=data, method="POST")
        request.add_header("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
        request.add_header("User-Agent", "TwilioProxy/1.1")
        request.add_header("I-Twilio-Idempotency-Token", uuid.uuid4().hex)
        if signed:
            request.add_header("X-Twilio-Signature", signature or self.sign(url, params))
        try:
            with _OPENER.open(request, timeout=15) as response:  # Twilio waits 15 s at most
                return response.status, response.read().decode("utf-8", errors="replace")
        except HTTPError as error:
            with error:
                return error.code, error.read().decode("utf-8", errors="replace")

    def send_status(self, message_sid: str, status: str, error_code: int | str | None = None
                    ) -> tuple[int, str]:
        """A message status callback to the StatusCallback given when `message_sid` was created."""
        message = self.resource(message_sid)
        url = message.params.get("StatusCallback")
        assert url, f"message {message_sid} was created without a StatusCallback"
        params = {
            "AccountSid": self.account_sid, "ApiVersion": API_VERSION, "MessageSid": message_sid,
            "SmsSid": message_sid, "MessageStatus": status, "SmsStatus": status,
            "From": message.params.get("From") or self.number, "To": message.params.get("To", ""),
        }
        if message.params.get("MessagingServiceSid"):
            params["MessagingServiceSid"] = message.params["MessagingServiceSid"]
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        return self.post(url, params)

    def send_inbound_sms(self, from_: str, body: str, to: str | None = None,
                         **extra: str) -> tuple[int, str]:
        """An incoming SMS to `<public_url>/twilio/sms`, with the blank geo fields Twilio sends
        for UK numbers (a validator that drops blank params fails on these). A MessageSid given
        in `extra` is used for its copies (SmsSid, SmsMessageSid) too, as Twilio's always agree."""
        sid = extra.get("MessageSid") or "SM" + uuid.uuid4().hex
        params = {
            "ToCountry": "GB", "ToState": "", "SmsMessageSid": sid, "NumMedia": "0", "ToCity": "",
            "FromZip": "", "SmsSid": sid, "FromState": "", "SmsStatus": "received", "FromCity": "",
            "Body": body, "FromCountry": "GB", "To": to or self.number, "ToZip": "",
            "NumSegments": "1", "MessageSid": sid, "AccountSid": self.account_sid, "From": from_,
            "ApiVersion": API_VERSION, **extra,
        }
        return self.post(f"{self.public_url}/twilio/sms", params)

    def gather_action(self, call_sid: str) -> str:
        """The action URL of the <Gather> in the TwiML the call was created with."""
        twiml = self.resource(call_sid).params.get("Twiml", "")
        gather = ET.fromstring(twiml).find(".//Gather")
        assert gather is not None and gather.get("action"), f"call {call_sid} has no Gather action"
        return str(gather.get("action"))

    def _call_params(self, call_sid: str, status: str) -> dict[str, str]:
        call = self.resource(call_sid)
        to, from_ = call.params.get("To", ""), call.params.get("From", self.number)
        return {"AccountSid": self.account_sid, "ApiVersion": API_VERSION, "CallSid": call_sid,
                "CallStatus": status, "Called": to, "Caller": from_, "Direction": "outbound-api",
                "From": from_, "To": to}

    def press_key(self, call_sid: str, digits: str) -> tuple[int, str]:
        """The person pressed `digits` (\"\" for no key: actionOnEmptyResult) during the Gather."""
        params = {**self._call_params(call_sid, "in-progress"), "Digits": digits,
                  "FinishedOnKey": "", "msg": "Gather End"}
        return self.post(self.gather_action(call_sid), params)

    def send_call_status(self, call_sid: str, status: str, answered_by: str | None = None,
                         duration: int = 0) -> tuple[int, str]:
        """The call's final status callback (completed, busy, no-answer, failed, canceled)."""
        url = self.resource(call_sid).params.get("StatusCallback")
        assert url, f"call {call_sid} was created without a StatusCallback"
        params = {**self._call_params(call_sid, status), "CallDuration": str(duration),
                  "CallbackSource": "call-progress-events",
                  "SequenceNumber": "0", "Timestamp": _now_rfc2822()}
        if answered_by is not None:
            params["AnsweredBy"] = answered_by
        return self.post(url, params)


def _basic_auth(header: str | None) -> tuple[str, str] | None:
    if not header or not header.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
    except ValueError:
        return None
    return user, password
