"""The webhook server `phonetree run` builds (issue 13 #2): hundreds of idle TCP connections don't
shut a signed reply out, and a body over 64 KiB gets 413 without being read."""
from __future__ import annotations

import http.client
import socket
import threading
import time
from typing import Iterator
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

from phonetree.config import Settings
from phonetree.gateways.outbox import OutboxGateway
from phonetree.web import MAX_BODY
from schedules.runner import Runner
from tests.test_web import ACCOUNT, INBOUND, PUBLIC, TOKEN

IDLE = 400


@pytest.fixture
def served(engine, oakfield) -> Iterator[tuple[str, int]]:
    """Runner's own waitress server on a free port (the scheduler is not started)."""
    settings = Settings(public_url=PUBLIC, twilio_auth_token=TOKEN, twilio_account_sid=ACCOUNT)
    runner = Runner(engine, OutboxGateway(), settings, host="127.0.0.1", port=0)
    thread = threading.Thread(target=runner.server.run, daemon=True)
    thread.start()
    try:
        yield "127.0.0.1", runner.server.effective_port
    finally:
        runner.server.close()
        thread.join(timeout=5)


def post(host: str, port: int, body: bytes, signature: str | None, timeout: float = 10) -> int:
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if signature:
        headers["X-Twilio-Signature"] = signature
    try:
        connection.request("POST", "/twilio/sms", body=body, headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()


def announce(host: str, port: int, length: int, signature: str) -> int:
    """Send only the headers of a POST whose body would be `length` bytes; the server's answer.
    (Sending the body too races the server's close after it refuses: a broken pipe.)"""
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(f"POST /twilio/sms HTTP/1.1\r\nHost: {host}\r\nX-Twilio-Signature: {signature}\r\n"
                     f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {length}\r\n\r\n"
                     .encode())
        sock.sendall(b"Body=xxxx")  # the start of the body, never the rest
        return int(sock.recv(1024).split(b" ", 2)[1])


def signed_ok(sid_digit: str) -> tuple[bytes, str]:
    params = dict(INBOUND, MessageSid="SM" + sid_digit * 32, Body="OK")
    return urlencode(params).encode(), RequestValidator(TOKEN).compute_signature(PUBLIC + "/twilio/sms", params)


def test_a_signed_reply_is_answered_within_seconds_while_hundreds_of_idle_connections_are_held(served):
    host, port = served
    idle = []
    try:
        for _ in range(IDLE):
            idle.append(socket.create_connection((host, port), timeout=5))
        time.sleep(0.5)  # let the server accept them all
        body, signature = signed_ok("7")
        started = time.monotonic()
        status = post(host, port, body, signature, timeout=10)
        took = time.monotonic() - started
    finally:
        for sock in idle:
            sock.close()
    print(f"\n{IDLE} idle connections held; a signed reply answered {status} in {took:.2f} s")
    assert status == 200 and took < 3


def test_bodies_over_64_kib_get_413_and_64_kib_is_read(served):
    host, port = served
    assert announce(host, port, MAX_BODY + 1, "x") == 413
    assert announce(host, port, 10 * MAX_BODY, "x") == 413
    assert post(host, port, b"Body=" + b"x" * (MAX_BODY - 5), "bm9wZQ==") == 403  # read, and not signed


def test_a_signed_reply_padded_past_64_kib_is_refused_unread(engine, served):
    """Before, the first 64 KiB were read and the rest silently dropped; now nothing is read."""
    from tests.conftest import snapshot

    host, port = served
    body, signature = signed_ok("8")
    before = snapshot(engine)
    assert announce(host, port, len(body) + MAX_BODY, signature) == 413
    assert snapshot(engine) == before
