"""Issue 13's attack list, run against a live `phonetree run` (its own process, a real port,
PHONETREE_PUBLIC_URL, a Twilio auth token and account, the outbox gateway): forged signatures,
re-split captures, replays, oversized bodies, and hundreds of idle connections with a signed
reply answered within seconds meanwhile. The database is snapshotted before and after: an
attack must change nothing. The counts are printed (`pytest -s`) for the release note."""
from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urlencode

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, create_engine, func, select
from twilio.request_validator import RequestValidator

from cli import cli
from phonetree.models import Inbound, Message
from tests.conftest import snapshot
from tests.test_twilio_e2e import wait_for
from tests.test_webhook_params import resplits

PUBLIC = "https://tree.example.org"
TOKEN = "attack-test-auth-token-0123456789"
ACCOUNT = "AC" + "5a" * 16
VERA, SAM = "+447911100001", "+447911100003"
IDLE = 500


class Live:
    """`phonetree run --port 0` in a process of its own; the port is read from what it prints."""

    def __init__(self, url: str, tmp: Path, preexec_fn: Callable[[], None] | None = None) -> None:
        env = {**os.environ, "PHONETREE_DATABASE_URL": url, "PHONETREE_GATEWAY": "outbox",
               "TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": TOKEN, "PHONETREE_PUBLIC_URL": PUBLIC,
               "PHONETREE_TICK_SECONDS": "0.5", "PHONETREE_JOURNAL_DIR": str(tmp)}
        self.log = tmp / "run.log"
        self.process = subprocess.Popen([sys.executable, "-m", "cli", "run", "--port", "0"], env=env,
                                        stdout=self.log.open("w"), stderr=subprocess.STDOUT,
                                        cwd=Path(__file__).parent.parent, preexec_fn=preexec_fn)
        found = wait_for(lambda: re.search(r"webhooks on http://127\.0\.0\.1:(\d+)", self.log.read_text()),
                         "phonetree run to listen", timeout=30.0)
        self.port = int(found.group(1))  # type: ignore[union-attr]

    def request(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None,
                timeout: float = 10) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def post(self, path: str, pairs: list[tuple[str, str]], signature: str | None, query: str = "") -> int:
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if signature is not None:
            headers["X-Twilio-Signature"] = signature
        return self.request("POST", path + (f"?{query}" if query else ""), urlencode(pairs).encode(), headers)[0]

    def announce(self, length: int, chunked: bool = False) -> int:
        """Headers of a POST with a body of `length` bytes, then only its start: the answer."""
        framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {length}"
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            sock.sendall(f"POST /twilio/sms HTTP/1.1\r\nHost: x\r\nX-Twilio-Signature: x\r\n{framing}\r\n"
                         "Content-Type: application/x-www-form-urlencoded\r\n\r\n".encode())
            if chunked:
                try:
                    for _ in range(length // 8192 + 1):
                        sock.sendall(b"2000\r\n" + b"x" * 8192 + b"\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # refused part way, as it should be
            else:
                sock.sendall(b"Body=xxxx")
            try:
                return int(sock.recv(1024).split(b" ", 2)[1])
            except (TimeoutError, ConnectionResetError):
                return 0  # no answer: the server sat waiting for the rest

    def stop(self) -> str:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return self.log.read_text()


def sign(path: str, pairs: list[tuple[str, str]], query: str = "", token: str = TOKEN,
         base: str = PUBLIC) -> str:
    return RequestValidator(token).compute_signature(base + path + (f"?{query}" if query else ""), dict(pairs))


def captured(sid_digit: str, phone: str, text: str) -> list[tuple[str, str]]:
    sid = "SM" + sid_digit * 32
    return [("ToCountry", "GB"), ("ToState", ""), ("SmsMessageSid", sid), ("NumMedia", "0"), ("ToCity", ""),
            ("FromZip", ""), ("SmsSid", sid), ("FromState", ""), ("SmsStatus", "received"), ("FromCity", ""),
            ("Body", text), ("FromCountry", "GB"), ("To", "+441522000000"), ("ToZip", ""),
            ("NumSegments", "1"), ("MessageSid", sid), ("AccountSid", ACCOUNT), ("From", phone),
            ("ApiVersion", "2010-04-01")]


def seed_oakfield(tmp_path: Path) -> str:
    """A SQLite database in `tmp_path` with Oakfield (Vera, Jo, Sam; Margaret organises), made
    through the CLI as an organiser would, its engines closed for another process. Its URL."""
    from phonetree.db import dispose_all

    url = f"sqlite:///{tmp_path / 'phonetree.db'}"
    for args in (["group", "add", "Oakfield", "--timezone", "Europe/London"],
                 ["member", "add", "Oakfield", "Vera", "--phone", "07911 100001"],
                 ["member", "add", "Oakfield", "Jo", "--phone", "07911 100002"],
                 ["member", "add", "Oakfield", "Sam", "--phone", "07911 100003"],
                 ["member", "add", "Oakfield", "Margaret", "--phone", "07911 100004", "--role", "organiser"]):
        result = CliRunner().invoke(cli, ["--db", url, *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
    dispose_all()
    return url


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[Live, Engine]]:
    url = seed_oakfield(tmp_path)
    server = Live(url, tmp_path)
    engine = create_engine(url)
    try:
        yield server, engine
    finally:
        engine.dispose()
        log = server.stop()
        assert "Traceback" not in log, log


def settled(engine: Engine) -> dict[str, list[tuple]]:
    """The database once the server has finished acting (two equal snapshots a second apart)."""
    previous = snapshot(engine)
    for _ in range(30):
        time.sleep(1.0)
        current = snapshot(engine)
        if current == previous:
            return current
        previous = current
    raise AssertionError("the database never settled")


def test_the_attack_list_against_a_live_phonetree_run(live):
    server, engine = live
    assert wait_for(lambda: server.request("GET", "/health")[0] == 200, "/health to say ok", timeout=30.0)
    # A genuine HELP from Vera, as Twilio sent it: it acts (a person is asked), once.
    help_ = captured("c", VERA, "HELP")
    help_signature = sign("/twilio/sms", help_)
    assert server.post("/twilio/sms", help_, help_signature) == 200
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(Inbound)) == 1
    before = settled(engine)
    messages_before = len(before["messages"])
    assert messages_before >= 2  # the ask and Vera's acknowledgement

    tried: dict[str, list[int]] = {}

    def attempt(kind: str, status: int) -> None:
        tried.setdefault(kind, []).append(status)

    # 1. Forged: every way of not being signed for exactly this request.
    forged = {
        "no signature": None, "junk": "bm9wZQ==", "empty": "",
        "other token": sign("/twilio/sms", help_, token="not-the-token-0123456789abcdef00"),
        "other host": sign("/twilio/sms", help_, base="https://evil.example.org"),
        "http scheme": sign("/twilio/sms", help_, base="http://tree.example.org"),
        "other path": sign("/twilio/status/message", help_),
        "the app's own URL": sign("/twilio/sms", help_, base=f"http://127.0.0.1:{server.port}"),
    }
    for name, signature in forged.items():
        attempt("forged", server.post("/twilio/sms", help_, signature))
    body_changed = [(n, "HELP please" if n == "Body" else v) for n, v in help_]
    attempt("forged", server.post("/twilio/sms", body_changed, help_signature))
    sam_forged = [(n, SAM if n == "From" else v) for n, v in help_]
    attempt("forged", server.post("/twilio/sms", sam_forged, help_signature))
    for path in ("/twilio/status/message", "/twilio/voice/gather", "/twilio/voice/status"):
        attempt("forged", server.post(path, [("MessageSid", "SM" + "d" * 32), ("CallSid", "CA" + "d" * 32),
                                             ("AccountSid", ACCOUNT), ("MessageStatus", "failed"),
                                             ("CallStatus", "failed"), ("Digits", "2")], "bm9wZQ==", query="m=1"))
    # 2. Re-split: the captured HELP with its boundaries moved; the signature still verifies.
    as_dict = {n: v for n, v in help_}
    for name, pairs in resplits(as_dict).items():
        assert RequestValidator(TOKEN).validate(PUBLIC + "/twilio/sms", dict(pairs), help_signature), name
        for _ in range(3):
            attempt("re-split", server.post("/twilio/sms", pairs, help_signature))
    # 3. Replayed: the captured HELP itself, again and again (200 so Twilio stops; no effect).
    for _ in range(7):
        attempt("replayed", server.post("/twilio/sms", help_, help_signature))
    # 4. Oversized bodies: refused before they are read.
    for length in (64 * 1024 + 1, 1024 * 1024, 50 * 1024 * 1024):
        attempt("oversized", server.announce(length))
    attempt("oversized", server.announce(200 * 1024, chunked=True))
    # 5. Hundreds of idle connections held open; the signed (replayed) HELP still answered fast.
    idle = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(IDLE)]
    try:
        time.sleep(1.0)
        started = time.monotonic()
        try:
            attempt("idle connections", server.post("/twilio/sms", help_, help_signature))
        except (TimeoutError, ConnectionResetError):
            attempt("idle connections", 0)  # not answered within 10 s
        answered_in = time.monotonic() - started
        try:
            health_status = server.request("GET", "/health", timeout=5)[0]
        except (TimeoutError, ConnectionResetError):
            health_status = 0
    finally:
        for sock in idle:
            sock.close()

    after = settled(engine)
    changes = sum(1 for table in before if before[table] != after[table])
    expected = {"forged": 403, "re-split": 403, "replayed": 200, "oversized": 413, "idle connections": 200}
    n = sum(len(statuses) for statuses in tried.values())
    # Accepted: answered as if genuine, other than the capture's own repeats (200 and deduped).
    accepted = sum(1 for kind, statuses in tried.items() if kind not in ("replayed", "idle connections")
                   for status in statuses if 200 <= status < 400)
    lines = [f"{kind}: {len(statuses)} tried, answered {sorted(set(statuses))}" for kind, statuses in tried.items()]
    print(f"\nattacks on a live phonetree run: {n} tried, {accepted} accepted, {changes} tables changed\n  "
          + "\n  ".join(lines) + f"\n  a signed reply with {IDLE} idle connections held: {answered_in:.2f} s;"
          f" /health {health_status}")
    assert accepted == 0
    for kind, statuses in tried.items():
        assert set(statuses) == {expected[kind]}, (kind, statuses)
    assert after == before and changes == 0
    assert len(after["messages"]) == messages_before
    assert answered_in < 3.0 and health_status == 200
    # And the door is still open to Twilio itself: a new, genuine OK from Sam is acted on.
    sam_ok = captured("e", SAM, "OK")
    assert server.post("/twilio/sms", sam_ok, sign("/twilio/sms", sam_ok)) == 200
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(Inbound)) == 2
        assert connection.scalar(select(func.count()).select_from(Message)) >= messages_before
