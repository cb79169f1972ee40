"""The `twilio` gateway: SMS and voice calls through Twilio's REST API (the official sync client).

Only this module (and web.py, for signatures and TwiML replies) imports the twilio package. Every
failure, Twilio's or the network's, leaves here as a GatewayError whose `action` tells the
dispatcher what to do: see `ERROR_ACTIONS` and `_translate`.

Callbacks carry our message id in the query (`?m=<id>`); web.py validates signatures against
PHONETREE_PUBLIC_URL + path + that raw query, so the URLs built here must be exactly what it sees.
"""
from __future__ import annotations

import json
import logging
import os
import re
import threading
from typing import Any, Callable, TypeVar
from urllib.parse import urlencode

import requests
from requests.adapters import HTTPAdapter
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse

from phonetree.config import Settings
from phonetree.errors import PhonetreeError
from phonetree.gateways import base
from phonetree.gateways.base import Gateway, GatewayError, Outgoing
from phonetree.phones import mask

log = logging.getLogger(__name__)

# Seconds to wait for Twilio's API. The sync client has no default (it would wait forever), and
# one hung request would stall the whole dispatch batch behind it.
HTTP_TIMEOUT = 10.0

# Twilio accepts ValidityPeriod from 1 to 36000 s (10 h); outside that it refuses the message.
MIN_VALIDITY, MAX_VALIDITY = 1, 36000

# Seconds a call rings before it counts as no-answer (Twilio's default is 60, which lets most UK
# voicemail pick up first; 25 s is long enough for someone to reach the phone).
RING_TIMEOUT = 25
# Twilio refuses inline TwiML longer than this.
MAX_TWIML = 4000
LANGUAGE = "en-GB"
# Seconds <Gather> waits for a key after the words have been spoken.
GATHER_TIMEOUT = 8

# Callback paths (web.py routes them). The message id goes in the query as `m`.
SMS_STATUS_PATH = "/twilio/status/message"
CALL_STATUS_PATH = "/twilio/voice/status"
GATHER_PATH = "/twilio/voice/gather"

GEO_PERMISSIONS = ("the Twilio account lacks permission to send to that country: check Geo "
                   "Permissions in the Twilio console (Messaging and Voice settings)")

# Twilio error codes (REST answers and delivery receipts alike) -> what the dispatcher does.
ERROR_ACTIONS: dict[int, str] = {
    20429: base.RETRY,        # too many requests: never processed, back off
    30001: base.RETRY,        # queue overflow (sender's queue is full)
    21611: base.RETRY,        # this From number has ~10 h of messages queued already
    30003: base.RETRY_LATER,  # handset off or out of signal
    21211: base.BAD_NUMBER,   # invalid To number
    21217: base.BAD_NUMBER,   # voice: "phone number does not appear to be valid"
    30005: base.BAD_NUMBER,   # unknown destination handset (number not in use)
    30006: base.USE_VOICE,    # landline or unreachable carrier: can't get texts
    21614: base.USE_VOICE,    # To is not a mobile number
    21610: base.OPTED_OUT,    # the person sent STOP to this sender
    30004: base.BLOCKED,      # message blocked (by the handset or carrier)
    30007: base.BLOCKED,      # filtered by the carrier as spam
    21408: base.CONFIG,       # no permission for that country (Geo Permissions)
    20003: base.CONFIG,       # authentication failed: wrong SID or token
}

_MESSAGES: dict[int, str] = {
    20429: "Twilio is rate limiting requests",
    30001: "Twilio's queue for this sender is full",
    21611: "Twilio's queue for this sender is full",
    30003: "the phone is off or out of signal",
    21211: "the number is not valid",
    21217: "the number is not valid",
    30005: "the number is not in use",
    30006: "the number can't receive texts",
    21614: "the number is not a mobile and can't receive texts",
    21610: "the person has replied STOP to this sender",
    30004: "the message was blocked",
    30007: "the message was filtered by the carrier",
    21408: GEO_PERMISSIONS,
    20003: "Twilio refused the credentials: check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN",
}

_TRANSIENT = {base.RETRY, base.RETRY_LATER}

# Twilio's messages quote the number ("The 'To' number +447911100001 is not valid"); the error is
# stored and logged, so mask it as everywhere else.
_E164 = re.compile(r"\+\d{7,15}")

T = TypeVar("T")


def _code(value: object) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def classify_status_error(error_code: str | int | None) -> str | None:
    """The dispatcher action for the ErrorCode of a delivery receipt (status callback), or None
    when there is no error code. Unknown codes are FAILED: don't retry what we don't understand."""
    if error_code is None or str(error_code).strip() in ("", "0"):
        return None
    code = _code(error_code)
    if code is None:
        return base.FAILED
    return ERROR_ACTIONS.get(code, base.FAILED)


def error_for_code(code: int | None, status: int | None, detail: str) -> GatewayError:
    """Map a Twilio error (its code and HTTP status) to a GatewayError. The code wins over the
    status: e.g. 21611 arrives as a 400 but is transient."""
    action = ERROR_ACTIONS.get(code) if code is not None else None
    message = _MESSAGES.get(code) if code is not None else None
    if action is None:
        if status == 429:
            # Rate limited: Twilio did not act on it, so a resend can't duplicate.
            action, message = base.RETRY, "Twilio is rate limiting requests"
        elif status is not None and status >= 500:
            # Twilio's side failed. It may or may not have acted; the dispatcher's bounded,
            # backed-off attempts are the accepted risk of a duplicate.
            action, message = base.RETRY, f"Twilio answered HTTP {status}"
        elif status in (401, 403) and code is None:
            action, message = base.CONFIG, _MESSAGES[20003]
        else:
            action = base.FAILED
    text = message or "Twilio refused the request"
    if detail:
        text = f"{text} ({_E164.sub(lambda m: mask(m.group()), detail.strip())})"
    return GatewayError(text, permanent=action not in _TRANSIENT, action=action, code=code)


def _translate(error: Exception) -> GatewayError:
    if isinstance(error, TwilioRestException):
        # msg looks like "Unable to create record: <Twilio's message>".
        return error_for_code(_code(error.code), error.status, str(error.msg).split(": ", 1)[-1])
    if isinstance(error, TwilioServiceException):
        return error_for_code(_code(error.code), _code(error.status), error.detail or error.title)
    if isinstance(error, requests.Timeout):
        # A read timeout may mean Twilio did act; the dispatcher's attempts are bounded.
        return GatewayError("no answer from Twilio in time", False, base.RETRY)
    if isinstance(error, requests.ConnectionError):
        return GatewayError("could not connect to Twilio", False, base.RETRY)
    if isinstance(error, requests.RequestException):
        return GatewayError(f"HTTP error talking to Twilio: {type(error).__name__}", False, base.RETRY)
    response = error.args[1] if isinstance(error, TwilioException) and len(error.args) > 1 else None
    if response is not None and hasattr(response, "status_code"):
        # A list that fails ("Unable to fetch page") carries the raw response, not a RestException.
        try:
            body = json.loads(response.text or "{}")
        except ValueError:
            body = {}
        return error_for_code(_code(body.get("code")), _code(response.status_code), str(body.get("message") or ""))
    if isinstance(error, ValueError):
        # A 2xx whose body isn't JSON (e.g. a proxy's page): the request may have been acted on.
        return GatewayError("unreadable answer from Twilio", False, base.RETRY)
    return GatewayError(f"Twilio client error: {error}", True, base.FAILED)


def _accepted(resource: object, what: str, label: str, out: Outgoing) -> str:
    """The sid of a message or call Twilio just accepted. Without one we can't match its
    callbacks, and it may not exist: retried like a transient error."""
    sid = getattr(resource, "sid", None)
    if not sid:
        raise GatewayError(f"Twilio accepted the {what} but gave no id", False, base.RETRY)
    if log.isEnabledFor(logging.DEBUG):  # mask() parses the number: ~250 calls a message, not for nothing
        log.debug("%s %s to %s queued at Twilio as %s", label, out.message_id, mask(out.to), sid)
    return str(sid)


def _call_twilio(operation: Callable[[], T]) -> T:
    try:
        return operation()
    except (TwilioException, requests.RequestException, ValueError) as error:
        raise _translate(error) from None  # `from None`: no Twilio exception leaves this module


# -- TwiML


def _say(parent: VoiceResponse, text: str) -> None:
    parent.say(text, language=LANGUAGE)


def _checked(response: VoiceResponse) -> str:
    twiml = str(response)
    if len(twiml) > MAX_TWIML:
        raise GatewayError(f"the spoken text is too long for one call ({len(twiml)} > {MAX_TWIML} "
                           "characters of TwiML)", True, base.FAILED)
    return twiml


def call_twiml(text: str, gather_url: str | None = None) -> str:
    """The TwiML of a call: the words, inside a one-key <Gather> when `gather_url` is given.

    actionOnEmptyResult makes Twilio post to the action even when no key was pressed, so the
    handler can repeat the question once (`retry_gather_twiml`); for the same reason anything
    placed after the <Gather> would never be reached, so nothing is."""
    response = VoiceResponse()
    if gather_url:
        gather = response.gather(input="dtmf", num_digits=1, timeout=GATHER_TIMEOUT,
                                 action=gather_url, method="POST", action_on_empty_result=True)
        _say(gather, text)
    else:
        _say(response, text)
    return _checked(response)


def retry_gather_twiml(text: str, gather_url: str) -> str:
    """For the gather handler when no key came: say the words once more and ask again. Pass a
    `gather_url` with `attempt=2` (see `callback_url`) so the next empty result ends the call."""
    response = VoiceResponse()
    gather = response.gather(input="dtmf", num_digits=1, timeout=GATHER_TIMEOUT,
                             action=gather_url, method="POST", action_on_empty_result=True)
    _say(gather, "Sorry, we didn't hear a key. " + text)
    return _checked(response)


def gather_reply_twiml(text: str) -> str:
    """What the gather handler answers once it has the key (or has given up): a short thank-you,
    then hang up so the person isn't left listening to silence."""
    response = VoiceResponse()
    _say(response, text)
    response.hangup()
    return str(response)


def callback_url(public_url: str, path: str, message_id: int, **extra: str | int) -> str:
    """`<public_url><path>?m=<id>[&...]`: exactly what web.py will rebuild to check the signature."""
    return f"{public_url.rstrip('/')}{path}?{urlencode({'m': message_id, **extra})}"


# -- the gateway

# The sending thread's Outgoing.ready, while it is in `TwilioGateway.send`.
_ready = threading.local()


class _ReadyAdapter(HTTPAdapter):
    """requests' adapter, calling the message's `ready` just before the request is written:
    the client's own work on a message (most of a create's CPU: building, signing and preparing
    the request) then overlaps the recording of the one before, and still no request leaves
    before that is recorded."""

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        ready = getattr(_ready, "call", None)
        if ready is not None:
            ready()
        return super().send(request, *args, **kwargs)


class TwilioGateway(Gateway):
    name = "twilio"

    def __init__(self, client: Client, *, from_number: str | None = None,
                 messaging_service_sid: str | None = None, public_url: str | None = None) -> None:
        if not (from_number or messaging_service_sid):
            raise PhonetreeError("set TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID to use "
                                 "the twilio gateway.")
        self.client = client
        session = getattr(getattr(client, "http_client", None), "session", None)
        if isinstance(session, requests.Session):
            # The pool size TwilioHttpClient gives its own https adapter.
            adapter = _ReadyAdapter(pool_maxsize=min(32, (os.cpu_count() or 1) + 4))
            session.mount("https://", adapter)
            session.mount("http://", adapter)  # a stand-in (TWILIO_API_BASE_URL)
            self.calls_ready = True
        self.from_number = from_number
        self.messaging_service_sid = messaging_service_sid
        self.public_url = (public_url or "").rstrip("/") or None
        if self.public_url is None:
            log.warning("PHONETREE_PUBLIC_URL is not set: sending without status callbacks, and "
                        "calls won't ask for a keypress, so replies by key can't reach phonetree")

    @classmethod
    def from_settings(cls, settings: Settings, timeout: float = HTTP_TIMEOUT) -> "TwilioGateway":
        missing = [name for name, value in (("TWILIO_ACCOUNT_SID", settings.twilio_account_sid),
                                            ("TWILIO_AUTH_TOKEN", settings.twilio_auth_token))
                   if not value]
        if not (settings.twilio_from_number or settings.twilio_messaging_service_sid):
            missing.append("TWILIO_FROM_NUMBER (or TWILIO_MESSAGING_SERVICE_SID)")
        if missing:
            # Names only: never echo a value, which might be the token pasted into the wrong var.
            raise PhonetreeError(f"the twilio gateway needs {' and '.join(missing)} set in the "
                                 "environment.")
        base_url = (settings.twilio_api_base_url or "").strip().rstrip("/")
        if base_url and not base_url.startswith(("http://", "https://")):
            raise PhonetreeError("TWILIO_API_BASE_URL must start with http:// or https:// "
                                 "(e.g. http://127.0.0.1:8081).")
        client = Client(settings.twilio_account_sid, settings.twilio_auth_token,
                        http_client=TwilioHttpClient(timeout=timeout))
        if base_url:
            # Domain.base_url is read on every request, so setting it here redirects messages and
            # calls (client.messages -> client.api.account.messages). But Client.get_hostname
            # rewrites the host whenever edge or region is set (the constructor reads
            # TWILIO_EDGE / TWILIO_REGION from the environment), and it would turn 127.0.0.1 into
            # 127.0.<region>.1: drop both, so the override is exactly where requests go.
            client.api.base_url = base_url
            client.edge = None
            client.region = None
        return cls(client, from_number=settings.twilio_from_number,
                   messaging_service_sid=settings.twilio_messaging_service_sid,
                   public_url=settings.public_url)

    def send(self, out: Outgoing) -> str:
        _ready.call = out.ready
        try:
            return super().send(out)
        finally:
            _ready.call = None

    def incoming_sms_url(self) -> tuple[bool, str | None, str | None]:
        """For `phonetree doctor`: whether the sending number is on the account, and where and
        how Twilio posts a message that comes in to it (its SmsUrl and SmsMethod). Raises
        GatewayError (e.g. 20003 when the credentials are refused)."""
        numbers = _call_twilio(lambda: self.client.incoming_phone_numbers.list(
            phone_number=self.from_number, limit=20))
        for number in numbers:
            if number.phone_number == self.from_number:
                return True, number.sms_url, number.sms_method
        return False, None, None

    def _url(self, path: str, message_id: int) -> str | None:
        return callback_url(self.public_url, path, message_id) if self.public_url else None

    def send_sms(self, out: Outgoing) -> str:
        kwargs: dict[str, object] = {"to": out.to, "body": out.body}
        if self.messaging_service_sid:
            # A Messaging Service picks the sender from its pool (and is where Twilio documents
            # ValidityPeriod best); a From number alongside it would bypass the pool.
            kwargs["messaging_service_sid"] = self.messaging_service_sid
        else:
            kwargs["from_"] = self.from_number
        status_callback = self._url(SMS_STATUS_PATH, out.message_id)
        if status_callback:
            kwargs["status_callback"] = status_callback
        if out.validity_s is not None:
            # Sent with a plain From number too: Twilio's error docs (30036, 90007) speak of a
            # ValidityPeriod "on the message or on the Messaging Service", and if it is ignored
            # nothing is lost. Either way the dispatcher's own expires_at check still applies.
            kwargs["validity_period"] = min(MAX_VALIDITY, max(MIN_VALIDITY, int(out.validity_s)))
        message = _call_twilio(lambda: self.client.messages.create(**kwargs))
        return _accepted(message, "message", "SMS", out)

    def place_call(self, out: Outgoing) -> str:
        if not self.from_number:
            raise GatewayError("set TWILIO_FROM_NUMBER to place calls (a Messaging Service "
                               "can only send texts)", True, base.CONFIG)
        gather_url = self._url(GATHER_PATH, out.message_id) if out.gather else None
        twiml = call_twiml(out.body, gather_url)
        kwargs: dict[str, object] = {
            "to": out.to, "from_": self.from_number, "twiml": twiml, "timeout": RING_TIMEOUT,
            # Answering machines get the words too, but the status callback's AnsweredBy lets the
            # dispatcher stop redialling a machine (Ofcom: no repeated abandoned/silent calls).
            "machine_detection": "Enable",
        }
        status_callback = self._url(CALL_STATUS_PATH, out.message_id)
        if status_callback:
            kwargs["status_callback"] = status_callback
            # Only the final event: its CallStatus is completed, busy, no-answer, failed or
            # canceled, which is all the dispatcher acts on. (Twilio's default is the same;
            # saying it keeps it true if that default ever changes.)
            kwargs["status_callback_event"] = ["completed"]
            kwargs["status_callback_method"] = "POST"
        call = _call_twilio(lambda: self.client.calls.create(**kwargs))
        return _accepted(call, "call", "call", out)
