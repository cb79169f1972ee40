"""The webhook app (plain WSGI, served by waitress in `phonetree run`).

Every Twilio webhook is checked against `X-Twilio-Signature` first, computed over
PHONETREE_PUBLIC_URL + path + the raw query (never the URL the app thinks it was called on: behind
a TLS-terminating proxy that is http://), with every posted parameter, blank ones included.
A missing or forged signature gets 403 and changes nothing; so does a signed request whose
parameters are not Twilio's own for that callback (see phonetree.webhook_params: a captured
request can be re-split and still verify). A body over 64 KiB gets 413 (it is not read, so it
can't be signed over in part).
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import parse_qs, urlparse

from sqlalchemy import Engine, exc
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator, add_port, compare, remove_port
from twilio.twiml.messaging_response import MessagingResponse

from phonetree import clock, delivery, inbound, webhook_params
from phonetree.journal import Entry, Journal, Replay
from phonetree.db import session_scope
from phonetree.gateways.twilio import (GATHER_PATH, callback_url, classify_status_error, gather_reply_twiml,
                                       retry_gather_twiml)
from phonetree.models import Message
from phonetree.phones import mask
from phonetree.replies import Intent
from phonetree.work import unit_of_work

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
EMPTY_TWIML = str(MessagingResponse())

StartResponse = Callable[[str, list[tuple[str, str]]], Any]

# The database can't take a write now (read-only, disk full, locked too long, server gone):
# a verified request is journalled instead (phonetree.journal), not answered 500.
DATABASE_DOWN: tuple[type[BaseException], ...] = (exc.OperationalError, exc.InterfaceError, exc.InternalError,
                                                  exc.TimeoutError)


def signature_matches(validator: RequestValidator, url: str, params: Mapping[str, str], signature: str) -> bool:
    """`validator.validate(url, params, signature)`'s answer for form parameters, with one HMAC
    where it always computes two. Twilio's signature may be over the URL with or without the
    default port (its back end is inconsistent), so validate signs both and accepts either; this
    signs the URL without the port first and with it only if that fails. The HMAC is over every
    parameter: the second one was a sixth of the CPU of a whole OK (issue 14)."""
    parsed = urlparse(url)
    return any(compare(validator.compute_signature(candidate, params), signature)
               for candidate in (remove_port(parsed), add_port(parsed)))


class Tally:
    """Counts the routine replies that are logged at DEBUG one by one, and says once a minute
    (at INFO, on the next one after the minute) how many came, so the log still shows the
    webhook working at a morning's volume without a line per OK (issue 14: that line was ~9% of
    an OK's time)."""

    EVERY = 60.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0
        self._since = time.monotonic()

    def add(self) -> tuple[int, float] | None:
        """Count one; (count, seconds) to report when a minute has passed since the last report."""
        with self._lock:
            self._count += 1
            now = time.monotonic()
            if now - self._since < self.EVERY:
                return None
            report = (self._count, now - self._since)
            self._count, self._since = 0, now
            return report


class Params(dict[str, str]):
    """Form parameters that keep every value of a repeated name (the validator signs them all)."""

    def __init__(self, body: str) -> None:
        self.multi = parse_qs(body, keep_blank_values=True)
        super().__init__({name: values[0] for name, values in self.multi.items()})

    def getall(self, name: str) -> list[str]:
        return self.multi[name]


def clean(value: str | None) -> str:
    """A parameter as safe to store: no NUL characters (PostgreSQL text can't hold them)."""
    return (value or "").replace("\x00", "")


def sid_of(value: str | None) -> str | None:
    """A provider id as safe to key on: real ones are 34 characters; anything longer is hashed
    so a strange one can't break the insert (and with it a real reply's processing)."""
    value = clean(value)
    if not value:
        return None
    return value if len(value) <= 64 else "h:" + hashlib.sha256(value.encode()).hexdigest()[:60]


class Request:
    def __init__(self, environ: dict[str, Any]) -> None:
        self.method = environ.get("REQUEST_METHOD", "GET")
        self.signature = environ.get("HTTP_X_TWILIO_SIGNATURE")
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        self.too_large = length > MAX_BODY
        raw = environ["wsgi.input"].read(length) if 0 < length <= MAX_BODY else b""
        self._parse(environ.get("PATH_INFO", "/"), environ.get("QUERY_STRING", ""),
                    raw.decode("utf-8", errors="replace"))

    def _parse(self, path: str, query: str, body: str) -> None:
        self.path, self.query, self.body = path, query, body
        self.params = Params(body)
        self.query_params = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}

    @classmethod
    def journalled(cls, entry: Entry) -> "Request":
        """A request as it was verified and written to the journal."""
        request = cls.__new__(cls)
        request.method, request.signature, request.too_large = "POST", None, False
        request._parse(entry.path, entry.query, entry.body)
        return request


class Response:
    def __init__(self, status: str, body: str = "", content_type: str = "text/plain") -> None:
        self.status, self.body, self.content_type = status, body, content_type

    @classmethod
    def twiml(cls, body: str = EMPTY_TWIML) -> "Response":
        return cls("200 OK", body, "text/xml")


Handler = Callable[[Request], Response]


class WebhookApp:
    """Routes Twilio's webhooks to the domain. `on_change` is called after anything that may
    have queued messages, so the runner can dispatch at once rather than at its next tick."""

    def __init__(self, engine: Engine, auth_token: str | None, public_url: str | None,
                 on_change: Callable[[], None] | None = None, *, account_sid: str | None = None,
                 journal: Journal | None = None, health: Callable[[], str | None] | None = None) -> None:
        self.engine = engine
        self.health = health or (lambda: None)
        self.journal = journal
        self.validator = RequestValidator(auth_token) if auth_token else None
        self.public_url = (public_url or "").rstrip("/")
        self.account_sid = account_sid
        self.on_change = on_change or (lambda: None)
        self.oks = Tally()
        self.routes: dict[str, Handler] = {
            "/twilio/sms": self.inbound_sms,
            "/twilio/status/message": self.message_status,
            "/twilio/voice/gather": self.voice_gather,
            "/twilio/voice/status": self.voice_status,
        }
        if self.validator is None or not self.public_url or not self.account_sid:
            log.warning("TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and PHONETREE_PUBLIC_URL must all be set: "
                        "until then every webhook is refused with 403")

    def add_route(self, path: str, handler: Handler) -> None:
        self.routes[path] = handler

    # -- WSGI

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        response = self.respond(environ)
        body = response.body.encode("utf-8")
        start_response(response.status, [("Content-Type", f"{response.content_type}; charset=utf-8"),
                                         ("Content-Length", str(len(body)))])
        return [body]

    def respond(self, environ: dict[str, Any]) -> Response:
        path = environ.get("PATH_INFO", "/")
        if path == "/health":
            # 200 when the last tick is recent and the provider isn't failing; else 503 and why.
            reason = self.health()
            return Response("200 OK", "ok\n") if reason is None else Response("503 Service Unavailable", reason + "\n")
        handler = self.routes.get(path)
        if handler is None:
            return Response("404 Not Found", "not found\n")
        if environ.get("REQUEST_METHOD") != "POST":
            return Response("405 Method Not Allowed", "POST only\n")
        request = Request(environ)
        if request.too_large:
            log.warning("refused a request to %s with a body over %d bytes", path, MAX_BODY)
            return Response("413 Payload Too Large", "too large\n")
        if not self.is_signed(request):
            log.warning("refused an unsigned or forged request to %s", path)
            return Response("403 Forbidden", "forbidden\n")
        refused = webhook_params.refusal(path, request.params.multi, self.account_sid)
        if refused is not None:
            # ERROR, not WARNING: either someone is replaying a captured request, or Twilio has
            # started sending a parameter we don't know and members' replies are being refused.
            log.error("refused a signed request to %s that is not Twilio's own: %s", path, refused)
            return Response("403 Forbidden", "forbidden\n")
        if self.journal is not None and self.journal.pending():
            # Earlier requests wait in the journal: they go first (a HELP before the OK after it).
            self.replay_journal()
            if self.journal.pending():
                return self._journal(request, handler, "the journal is not yet applied")
        try:
            return handler(request)
        except DATABASE_DOWN as error:
            return self._journal(request, handler, type(error).__name__)
        except Exception:  # noqa: BLE001 - answer 500 so Twilio retries; the receipt makes that safe
            log.exception("webhook %s failed", path)
            return Response("500 Internal Server Error", "error\n")

    def _journal(self, request: Request, handler: Handler, why: str) -> Response:
        """Keep a verified request for later (see phonetree.journal) and answer as if it had been
        applied; 500 only if the journal can't be written either."""
        if why != "the journal is not yet applied":
            # A pooled connection may be stuck as it was opened (read-only): start afresh next time.
            self.engine.dispose()
        if self.journal is None:
            log.error("webhook %s: the database can't be written (%s) and there is no journal", request.path, why)
            return Response("500 Internal Server Error", "error\n")
        try:
            self.journal.append(Entry(request.path, request.query, request.body, clock.now().isoformat()))
        except OSError as error:
            log.error("webhook %s: neither the database (%s) nor the journal (%s) can be written",
                      request.path, why, error.strerror or type(error).__name__)
            return Response("500 Internal Server Error", "error\n")
        log.warning("webhook %s journalled (%s): it will be applied when the database can be written",
                    request.path, why)
        if handler == self.voice_gather:
            return Response.twiml(gather_reply_twiml("Thank you. Goodbye."))
        return Response.twiml()  # empty TwiML: nothing is sent back, as for any reply

    def replay_journal(self) -> Replay:
        """Apply journalled requests, oldest first, through the same handlers as live ones."""
        if self.journal is None:
            return Replay()

        def apply(entry: Entry) -> None:
            handler = self.routes.get(entry.path)
            if handler is None:
                raise LookupError(f"no route {entry.path[:40]!r}")
            handler(Request.journalled(entry))

        try:
            result = self.journal.replay(apply, stop_on=DATABASE_DOWN)
        except OSError as error:
            log.error("the webhook journal can't be read or rotated (%s)", error.strerror or type(error).__name__)
            return Replay(stopped=True)
        if result.stopped:
            self.engine.dispose()
        if result.applied or result.skipped:
            log.warning("webhook journal: %d applied, %d skipped%s", result.applied, result.skipped,
                        "; the rest waits (the database failed again)" if result.stopped else "")
        return result

    def is_signed(self, request: Request) -> bool:
        if self.validator is None or not self.public_url or not request.signature:
            return False
        url = self.public_url + request.path + (f"?{request.query}" if request.query else "")
        return signature_matches(self.validator, url, request.params, request.signature)

    # -- handlers

    def inbound_sms(self, request: Request) -> Response:
        params = request.params
        sender, body, sid = clean(params.get("From")), clean(params.get("Body")), sid_of(params.get("MessageSid"))
        now = clock.now()
        # A bare unit of work: an OK (most replies) never builds an ORM Session (phonetree.work).
        with unit_of_work(self.engine) as work:
            outcome = inbound.handle(work, now, sender, body, sid=sid, channel="sms")
            queued = bool(work.info.get("queued"))
        if not outcome.known:
            log.info("inbound SMS from an unknown number %s: ignored", mask(sender))
        elif outcome.intent == Intent.OK and not outcome.duplicate and not queued:
            # The commonest reply, which changed nothing but its check-in: counted (see Tally).
            log.debug("inbound SMS from member %s: ok", outcome.member_id)
            report = self.oks.add()
            if report is not None:
                log.info("inbound SMS: %d OK replies in the last %.0f s", *report)
        else:
            # By member id, not the masked number: masking means parsing the number with
            # phonenumbers, which was a sixth of the cost of a whole OK (issue 14).
            log.info("inbound SMS from member %s: %s%s", outcome.member_id, outcome.intent,
                     " (repeat delivery)" if outcome.duplicate else "")
        if queued:
            self.on_change()  # someone is to be told (a HELP, a stand-down): send it now
        # Empty TwiML: replies go out through the dispatcher, and an unknown sender learns nothing.
        return Response.twiml()

    def _message(self, session: Session, request: Request, any_sid: bool = False) -> Message | None:
        """The message a callback is about: by our id in the query, checked against Twilio's sid
        (unless `any_sid`)."""
        try:
            message_id = int(request.query_params.get("m", ""))
        except ValueError:
            return None
        if not 0 < message_id < 2 ** 31:  # an id we could never have issued
            return None
        message = session.get(Message, message_id)
        sid = sid_of(request.params.get("MessageSid") or request.params.get("CallSid"))
        if message is None or (not any_sid and message.provider_sid and sid and message.provider_sid != sid):
            return None
        return message

    def message_status(self, request: Request) -> Response:
        params = request.params
        status = params.get("MessageStatus") or params.get("SmsStatus") or ""
        with session_scope(self.engine) as session:
            message = self._message(session, request)
            if message is None:
                return Response.twiml()  # unknown or stale: 200 so Twilio stops retrying
            if not delivery.first_time(session, clock.now(), sid_of(params.get("MessageSid")) or f"m{message.id}",
                                       f"status:{clean(status)}"):
                return Response.twiml()
            code = clean(params.get("ErrorCode"))[:12] or None
            changed = delivery.message_status(session, clock.now(), message, clean(status),
                                              classify_status_error(code), code)
        if changed:
            self.on_change()
        return Response.twiml()

    def voice_gather(self, request: Request) -> Response:
        params = request.params
        digits = clean(params.get("Digits"))[:8]
        call_sid = sid_of(params.get("CallSid")) or ""
        with session_scope(self.engine) as session:
            # Any call placed for the message: when placing it timed out after Twilio had placed
            # it, the retry's sid is the one recorded, and a key pressed on the first call is
            # still the person's answer (signed, for our URL).
            message = self._message(session, request, any_sid=True)
            if message is None:
                return Response.twiml(gather_reply_twiml("Thank you. Goodbye."))
            if not digits and request.query_params.get("attempt") != "2":
                # No key yet: say it once more and listen again, then give up politely.
                again = callback_url(self.public_url, GATHER_PATH, message.id, attempt=2)
                return Response.twiml(retry_gather_twiml(message.body or "", again))
            if not delivery.first_time(session, clock.now(), call_sid or f"m{message.id}", f"gather:{digits}"):
                words = "Thank you. Goodbye."
            else:
                words = inbound.keypress(session, clock.now(), message, digits, call_sid)
        if session.info.get("queued"):
            self.on_change()
        return Response.twiml(gather_reply_twiml(words))

    def voice_status(self, request: Request) -> Response:
        params = request.params
        status = clean(params.get("CallStatus"))[:20]
        machine = clean(params.get("AnsweredBy")).startswith(("machine", "fax"))
        with session_scope(self.engine) as session:
            message = self._message(session, request)
            if message is None or not delivery.first_time(
                    session, clock.now(), sid_of(params.get("CallSid")) or f"m{message.id}", f"call:{status}"):
                return Response.twiml()
            changed = delivery.call_status(session, clock.now(), message, status, machine)
        if changed:
            self.on_change()
        return Response.twiml()
