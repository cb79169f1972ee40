"""Property-based fuzzing (hypothesis): the reply parser on any text, and the webhook app on any
request body, signed or not. Bounded: a few hundred examples per property, deadline off (the
database examples are slow on a 2-core machine, not wrong)."""
from __future__ import annotations

import io
from typing import Any, Callable
from urllib.parse import urlencode

import pytest
from freezegun import freeze_time
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, MetaData, select
from twilio.request_validator import RequestValidator

from phonetree.db import session_scope
from phonetree.models import CheckIn
from phonetree.replies import (ALWAYS_NEGATE, MAX_PAUSE_DAYS, NEGATE_AFTER, SOMETIMES_NEGATE, Intent,
                               Reply, parse_reply)
from phonetree.web import MAX_BODY, Params, WebhookApp
from phonetree.webhook_params import refusal
from tests.conftest import JO, MARGARET, PROFILE, SAM, VERA, examples, sent, snapshot, utc

# ----------------------------------------------------------------------- 5. parse_reply

# Words the parser has rules for, so random messages hit its branches and not only UNKNOWN.
KEYWORDS = ["ok", "okay", "fine", "good", "great", "yes", "alright", "help", "call", "ring", "phone",
            "me", "us", "her", "will", "missed", "not", "no", "dont", "need", "needed", "done",
            "called", "rang", "cant", "busy", "pause", "away", "back", "stop", "start", "end",
            "1", "2", "3", "days", "week", "hours", "but", "tired", "hospital", "please", "thanks",
            "for", "the", "i", "im", "am", "feeling", "really", "so", "is", "it", "👍", "🆘",
            "can't", "I'm", "o.k.", "-3", "1.5"]
SEPARATORS = [" ", "  ", ", ", ". ", "! ", "? ", " - ", "\n", "; ", "... ", " (", ") "]


def messages(words: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.lists(st.tuples(words, st.sampled_from(SEPARATORS)), max_size=10).map(
        lambda parts: "".join(w + sep for w, sep in parts))


def case_variants(word: str) -> st.SearchStrategy[str]:
    return st.sampled_from([word, word.upper(), word.capitalize()])


ANY_TEXT = st.text() | messages(st.sampled_from(KEYWORDS) | st.text(max_size=6))
FAST = settings(deadline=None, max_examples=examples(300))


def test_ci_draws_the_same_examples_every_run():
    if PROFILE != "ci":
        pytest.skip("HYPOTHESIS_PROFILE=explore draws fresh examples on purpose")
    drawn: list[str] = []

    @settings(max_examples=40)
    @given(ANY_TEXT)
    def draw(text: str) -> None:
        drawn.append(text)

    draw()
    first, drawn[:] = list(drawn), []
    draw()
    assert drawn == first and len(set(first)) > 10


@FAST
@given(ANY_TEXT)
@example("")
@example("\x00")
@example("pause " + "9" * 5000)
@example("away -1 days")
@example("\ud800")  # a lone surrogate, as a broken decoder might hand over
def test_parse_reply_never_raises_and_returns_a_valid_reply(text: str):
    reply = parse_reply(text)
    assert isinstance(reply, Reply) and isinstance(reply.intent, Intent)
    if reply.intent is Intent.PAUSE:
        assert reply.days is None or 1 <= reply.days <= MAX_PAUSE_DAYS
    else:
        assert reply.days is None


@FAST
@given(ANY_TEXT, ANY_TEXT, case_variants("ok") | case_variants("okay") | case_variants("fine")
       | case_variants("good"), case_variants("not"))
@example("help", "", "ok", "not")
@example("call", "", "ok", "not")
def test_not_before_ok_is_never_ok(before: str, after: str, ok_word: str, not_word: str):
    """Whatever surrounds it, a message with "not ok" in it never stands anyone down."""
    text = f"{before} {not_word} {ok_word} {after}"
    assert parse_reply(text).intent is not Intent.OK, text


@FAST
@given(ANY_TEXT, ANY_TEXT, st.sampled_from(["great", "yes", "alright", "grand", "yep", "all well"]))
def test_not_before_any_all_well_word_is_never_ok(before: str, after: str, ok_word: str):
    """The same for every other all-well word the parser knows: "not great" and "not yes" are a
    negation, which must make a stand-down reply UNKNOWN (replies.py: "any negation, hedge or
    sign of trouble ... makes the reply UNKNOWN"), never OK."""
    text = f"{before} not {ok_word} {after}"
    assert parse_reply(text).intent is not Intent.OK, text


NEGATORS = ALWAYS_NEGATE | SOMETIMES_NEGATE | NEGATE_AFTER
# Ordinary words, the other intents' keywords and signs of trouble, but no negation and no
# "thanks for the help" (a courtesy, rewritten away on purpose).
NEUTRAL = [w for w in KEYWORDS if w.lower().replace("'", "") not in NEGATORS and w != "thanks"] + [
    "today", "love", "x", "xx", "garden", "dog", "mum", "doctor", "sorry", "later", "now", "just",
    "quite", "a", "bit", "of", "with", "my", "hi", "hello", "morning", "been", "to", "shops", "tea"]


@FAST
@given(st.lists(st.sampled_from(NEUTRAL).flatmap(case_variants), max_size=6), st.integers(0, 6),
       case_variants("help"), st.lists(st.sampled_from(SEPARATORS), min_size=7, max_size=7))
def test_help_as_a_word_in_a_short_message_is_help(words: list[str], position: int, help_word: str,
                                                   separators: list[str]):
    """Anything with the word "help" in a short message, with no negation, is HELP: whatever
    else it says (OK, DONE, PAUSE, BACK, STOP words included)."""
    words.insert(min(position, len(words)), help_word)
    text = "".join(w + sep for w, sep in zip(words, separators))
    assert parse_reply(text).intent is Intent.HELP, text


@FAST
@given(st.sampled_from(["no", "dont", "don't", "never", "neednt", "doesnt", "didnt", "won't"]),
       st.lists(st.sampled_from(["really", "need", "any", "thanks", "x"]), max_size=2),
       st.sampled_from(["", " needed", " thanks", " today"]))
def test_negated_help_is_not_help(negator: str, filler: list[str], tail: str):
    """ "no help needed", "dont need help", "never need any help": not a call request."""
    assume(not (negator == "no" and filler and filler[0] != "need"))  # "no" negates only so
    text = " ".join([negator, *filler, "help"]) + tail
    assert parse_reply(text).intent is not Intent.HELP, text


# ------------------------------------------------------------------- 6. the webhook app

PUBLIC = "https://tree.example.org"
TOKEN = "fuzz-auth-token-0123456789abcdef"
ACCOUNT = "AC" + "fa" * 16
OTHER_TOKEN = "not-the-auth-token-0123456789abc"
ROUTES = ["/twilio/sms", "/twilio/status/message", "/twilio/voice/gather", "/twilio/voice/status"]
E164 = {VERA: "+447911100001", JO: "+447911100002", SAM: "+447911100003", MARGARET: "+447911100004"}
# The examples of a test share its database (a fresh one per example would be far slower).
DB_EXAMPLES = settings(deadline=None, max_examples=examples(150),
                       suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                              HealthCheck.data_too_large])


class Call:
    """One in-process WSGI request; what came back."""

    def __init__(self, app: WebhookApp, method: str, path: str, query: str, body: bytes,
                 signature: str | None, content_length: str | None) -> None:
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8080", "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body), "wsgi.errors": io.StringIO(),
            "wsgi.version": (1, 0), "wsgi.multithread": True, "wsgi.multiprocess": False,
            "wsgi.run_once": False, "CONTENT_TYPE": "application/x-www-form-urlencoded",
        }
        if content_length is not None:
            environ["CONTENT_LENGTH"] = content_length
        if signature is not None:
            environ["HTTP_X_TWILIO_SIGNATURE"] = signature
        self.status = ""

        def start_response(status: str, headers: list[tuple[str, str]]) -> None:
            self.status, self.headers = status, headers

        self.body = b"".join(app(environ, start_response))
        self.code = int(self.status.split()[0])


def sign(url: str, body: bytes) -> str:
    """X-Twilio-Signature as Twilio computes it over these very parameters (repeats included)."""
    return RequestValidator(TOKEN).compute_signature(url, Params(body.decode("utf-8", "replace")))


LATIN1 = st.characters(max_codepoint=255)
PARAM_NAMES = st.sampled_from(["From", "Body", "MessageSid", "SmsSid", "CallSid", "Digits", "MessageStatus",
                               "SmsStatus", "CallStatus", "ErrorCode", "AnsweredBy", "To", "AccountSid"]) \
    | st.text(max_size=12)
PARAM_VALUES = st.text(max_size=40) | st.sampled_from(list(E164.values()) + [VERA, "", "OK", "HELP", "STOP",
                                                                             "delivered", "failed", "1", "2"])


def form(pairs: list[tuple[str, str]]) -> bytes:
    return urlencode(pairs).encode("utf-8")


BODIES = st.one_of(
    st.binary(max_size=300),                                              # random bytes
    st.lists(st.tuples(PARAM_NAMES, PARAM_VALUES), max_size=12).map(form),  # random form fields
    st.lists(st.tuples(PARAM_NAMES, PARAM_VALUES), min_size=1, max_size=4).map(
        lambda pairs: form(pairs * 3)),                                    # repeated params
    st.text(max_size=100).map(lambda t: t.encode("latin-1", "replace")),  # not UTF-8
    st.sampled_from([b"Body=%ff%fe%00&From=%2B447911100001", b"a=%zz&&&=&b", b"%" * 50,
                     b"Body=" + b"x" * (MAX_BODY + 1000), b"=" * 1000,
                     b"From=+447911100001&Body=HELP&Body=OK&MessageSid=SM1"]),
    st.integers(1000, 200_000).map(lambda n: b"Body=" + b"A" * n),         # huge
)


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    body = draw(BODIES)
    path = draw(st.sampled_from(ROUTES + ["/", "/health", "/twilio/sms/", "/twilio"]) | st.text(LATIN1, max_size=20))
    query = draw(st.sampled_from(["", "m=1", "m=1&attempt=2", "m=99999999999999999999999", "m=-1", "m=x"])
                 | st.text(LATIN1, max_size=30))
    length = draw(st.sampled_from(["exact", "missing", "short", "long", "junk", "negative", "huge"]))
    content_length = {"exact": str(len(body)), "missing": None, "short": str(len(body) // 2),
                      "long": str(len(body) + 100), "junk": "ten", "negative": "-5",
                      "huge": "9" * 5000}[length]
    url = PUBLIC + path + (f"?{query}" if query else "")
    signature = draw(st.one_of(
        st.none(),                                                        # missing
        st.text(LATIN1, max_size=40),                                     # junk
        st.just(RequestValidator(OTHER_TOKEN).compute_signature(url, Params(body.decode("utf-8", "replace")))),
        st.just(sign(url + "&x=1" if query else url + "?x=1", body)),     # for another URL
        st.just(sign(url, body + b"&Extra=1")),                           # for other parameters
        st.just(sign("http://127.0.0.1:8080" + path, body)),              # the URL the app is called on
    ))
    method = draw(st.sampled_from(["POST", "POST", "POST", "GET", "PUT", "HEAD", ""]))
    return dict(method=method, path=path, query=query, body=body, signature=signature,
                content_length=content_length)


@pytest.fixture
def webhook_db(oakfield: str, ok: Callable[..., Any], engine: Engine, ticker) -> Engine:  # type: ignore[no-untyped-def]
    """Oakfield with Vera's 09:00 prompt sent (message 1) and Jo asked at 09:30."""
    with freeze_time("2026-11-30 12:00:00"):
        ok("checkin", "add", "Oakfield", "Vera", "--at", "09:00", "--window", "30m",
           "--escalate-to", "Jo,Sam")
    ticker(utc(2026, 12, 1, 9, 0))
    ticker(utc(2026, 12, 1, 9, 30))
    return engine


def correctly_signed(request: dict[str, Any]) -> bool:
    """Whether a drawn "forgery" happens to be valid after all (e.g. signed with &Extra=1 added
    to a body that already had it): such an example proves nothing, so it is skipped."""
    try:
        length = int(request["content_length"] or 0)
    except ValueError:
        length = 0
    received = request["body"][:min(length, MAX_BODY)] if length > 0 else b""
    url = PUBLIC + request["path"] + (f"?{request['query']}" if request["query"] else "")
    return bool(request["signature"]) and RequestValidator(TOKEN).validate(
        url, Params(received.decode("utf-8", "replace")), request["signature"])


def test_unsigned_or_forged_webhooks_never_500_and_change_nothing(webhook_db: Engine):
    """Any request not signed with the auth token for exactly this URL and these parameters
    gets 403 (or 404/405 off the routes, 200 on /health): never a 500, and the database is
    left exactly as it was (snapshot of every table after every request)."""
    changes: list[int] = []
    app = WebhookApp(webhook_db, TOKEN, PUBLIC, on_change=lambda: changes.append(1), account_sid=ACCOUNT)
    before = snapshot(webhook_db)
    # snapshot() reflects the schema on every call (~0.1 s); per example the same comparison
    # runs on the schema reflected once, and snapshot() itself checks again at the end.
    meta = MetaData()
    meta.reflect(webhook_db)

    def rows() -> dict[str, list[tuple]]:
        with webhook_db.connect() as conn:
            return {name: sorted(map(tuple, conn.execute(table.select()).all()), key=repr)
                    for name, table in meta.tables.items()}

    assert rows() == before

    @DB_EXAMPLES
    @given(request=requests())
    def check(request: dict[str, Any]) -> None:
        assume(not (request["method"] == "POST" and request["path"] in ROUTES and correctly_signed(request)))
        response = Call(app, **request)
        assert response.code in (200, 403, 404, 405, 413), (response.status, request)
        if response.code == 413:  # only a body too big to read and check is refused so
            assert int(request["content_length"]) > MAX_BODY, request
        if response.code == 200:
            assert request["path"] == "/health", request
        assert changes == [], request
        assert rows() == before, f"the database changed after {request}"

    check()
    assert snapshot(webhook_db) == before


def message_ids(engine: Engine) -> list[int]:
    return [m.id for m in sent(engine)]


@st.composite
def signed_requests(draw: st.DrawFn, ids: list[int], sids: list[str]) -> dict[str, Any]:
    """What Twilio could post to a URL phonetree gave it: our path and query (`?m=<id>`),
    any parameters at all in the body, from a known member, correctly signed."""
    path = draw(st.sampled_from(ROUTES))
    query = "" if path == "/twilio/sms" else urlencode(
        {"m": draw(st.sampled_from(ids)), **draw(st.sampled_from([{}, {"attempt": 2}]))})
    pairs = draw(st.lists(st.tuples(PARAM_NAMES, PARAM_VALUES), max_size=8))
    pairs.append(("From", draw(st.sampled_from(list(E164.values()) + [VERA, JO]))))
    pairs.append(("Body", draw(ANY_TEXT | st.text(max_size=2000))))
    if draw(st.integers(0, 9)):  # nearly always our account (phonetree refuses any other)
        pairs.append(("AccountSid", ACCOUNT))
    for name, values in (("MessageSid", st.sampled_from(sids) | st.text(max_size=100)),
                         ("CallSid", st.sampled_from(sids) | st.text(max_size=100)),
                         ("MessageStatus", st.sampled_from(["queued", "sent", "delivered", "undelivered",
                                                            "failed", "read"]) | st.text(max_size=12)),
                         ("CallStatus", st.sampled_from(["completed", "busy", "no-answer", "failed",
                                                         "canceled"]) | st.text(max_size=12)),
                         ("ErrorCode", st.sampled_from(["30003", "30006", "21610", "0", ""]) | st.text(max_size=8)),
                         ("Digits", st.sampled_from(["1", "2", "", "#", "12"]) | st.text(max_size=4)),
                         ("AnsweredBy", st.sampled_from(["human", "machine_start", "fax"]) | st.text(max_size=8))):
        if draw(st.booleans()):
            pairs.append((name, draw(values)))
    pairs = draw(st.permutations(pairs))
    body = form(pairs)
    url = PUBLIC + path + (f"?{query}" if query else "")
    return dict(method="POST", path=path, query=query, body=body, signature=sign(url, body),
                content_length=str(len(body)))


def test_signed_random_bodies_never_500(webhook_db: Engine):
    """Correctly signed requests with random parameters, from known members, to every route:
    the app may act on them, but never answers 500."""
    ids = message_ids(webhook_db)
    sids = [m.provider_sid for m in sent(webhook_db) if m.provider_sid] + ["SM" + "0" * 32]
    app = WebhookApp(webhook_db, TOKEN, PUBLIC, account_sid=ACCOUNT)

    def signed(path: str, query: str = "", **params: str) -> dict[str, Any]:
        body = form(list(params.items()))
        url = PUBLIC + path + (f"?{query}" if query else "")
        return dict(method="POST", path=path, query=query, body=body, signature=sign(url, body),
                    content_length=str(len(body)))

    @DB_EXAMPLES
    @given(request=signed_requests(ids, sids))
    # Found by this test on PostgreSQL (SQLite stores them): a NUL in a text that is stored,
    # and a MessageSid longer than its column (64).
    @example(request=signed("/twilio/sms", From=E164[VERA], Body="HELP\x00", MessageSid="SM" + "2" * 32,
                            AccountSid=ACCOUNT))
    @example(request=signed("/twilio/sms", From=E164[VERA], Body="HELP", MessageSid="SM" + "3" * 98,
                            AccountSid=ACCOUNT))
    @example(request=signed("/twilio/voice/gather", f"m={ids[0]}", Digits="1\x00", CallSid="CA" + "4" * 32,
                            AccountSid=ACCOUNT))
    def check(request: dict[str, Any]) -> None:
        response = Call(app, **request)
        # Signed but not Twilio's own (a made-up name, a sid of the wrong shape, another account): 403.
        multi = Params(request["body"].decode("utf-8", "replace")).multi
        expected = 403 if refusal(request["path"], multi, ACCOUNT) else 200
        assert response.code == expected, (response.status, request)

    check()


def test_a_correctly_signed_request_does_reach_the_handler(webhook_db: Engine):
    """The fuzzers' signing is the real thing: a signed OK from Vera answers her check-in."""
    app = WebhookApp(webhook_db, TOKEN, PUBLIC, account_sid=ACCOUNT)
    body = form([("From", E164[VERA]), ("Body", "OK thanks"), ("MessageSid", "SM" + "1" * 32),
                 ("AccountSid", ACCOUNT)])
    forged = Call(app, "POST", "/twilio/sms", "", body, sign(PUBLIC + "/twilio/sms", body + b"x"), str(len(body)))
    assert forged.code == 403
    response = Call(app, "POST", "/twilio/sms", "", body, sign(PUBLIC + "/twilio/sms", body), str(len(body)))
    assert response.code == 200 and b"<Response" in response.body
    with session_scope(webhook_db) as session:
        assert session.scalars(select(CheckIn.state).order_by(CheckIn.due_at)).first() == "answered"
