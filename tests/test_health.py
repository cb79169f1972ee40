"""Someone notices when phonetree stops (issue 11 #5): the heartbeat after healthy ticks, at most
once a minute and never in a tick's way, and `GET /health` with a one-line reason."""
from __future__ import annotations

import logging
import socket
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest
from freezegun import freeze_time

from phonetree.config import Settings
from phonetree.db import session_scope
from phonetree.gateways.outbox import OutboxGateway
from phonetree.models import CheckIn, ProviderOutage
from schedules.runner import Runner
from tests.conftest import utc
from tests.test_web import ACCOUNT, PUBLIC, TOKEN, call

SECRET = "5f0c1d2e-aaaa-bbbb-cccc-0123456789ab"


class Pinged:
    """A local HTTP server standing in for a Healthchecks.io check; `delay` makes it slow."""

    def __init__(self, delay: float = 0.0) -> None:
        self.hits: list[str] = []
        self.delay = delay
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                time.sleep(outer.delay)
                outer.hits.append(self.path)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"OK")

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/{SECRET}?rid=1"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def wait_for(self, n: int) -> bool:
        for _ in range(200):  # not time.monotonic(): freezegun holds it still
            if len(self.hits) >= n:
                return True
            time.sleep(0.02)
        return False

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def vera(engine, oakfield, ok):
    with freeze_time("2026-11-30 12:00:00"):
        ok("checkin", "add", "Oakfield", "Vera", "--at", "09:00", "--window", "30m", "--escalate-to", "Jo")


def runner_for(engine, **settings) -> Runner:
    return Runner(engine, OutboxGateway(), Settings(public_url=PUBLIC, twilio_auth_token=TOKEN,
                                                    twilio_account_sid=ACCOUNT, **settings), port=0)


@pytest.fixture
def pinged() -> Iterator[Pinged]:
    server = Pinged()
    yield server
    server.close()


def test_the_heartbeat_is_fetched_after_ticks_at_most_once_a_minute(engine, vera, pinged):
    runner = runner_for(engine, heartbeat_url=pinged.url)
    try:
        with freeze_time("2026-12-01 08:59:00") as frozen:
            runner.tick()
            assert pinged.wait_for(1) and pinged.hits == [f"/{SECRET}?rid=1"]
            for _ in range(11):  # ticks every 5 s for the next 55 s: no more fetches
                frozen.tick(timedelta(seconds=5))
                runner.tick()
            time.sleep(0.3)
            assert len(pinged.hits) == 1
            frozen.tick(timedelta(seconds=5))  # a minute after the first
            runner.tick()
            assert pinged.wait_for(2)
            frozen.tick(timedelta(seconds=30))
            runner.tick()
            time.sleep(0.3)
            assert len(pinged.hits) == 2
    finally:
        runner.server.close()


def test_a_dead_or_slow_heartbeat_never_stops_or_delays_a_tick(engine, vera, caplog):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/{SECRET}?token=pw"
    runner = runner_for(engine, heartbeat_url=dead)
    slow = Pinged(delay=3.0)
    try:
        with freeze_time("2026-12-01 09:00:00") as frozen, caplog.at_level(logging.WARNING):
            runner.tick()  # Vera's 09:00 prompt is due
            for _ in range(100):
                if any("heartbeat" in r.getMessage() for r in caplog.records):
                    break
                time.sleep(0.02)
            with session_scope(engine) as session:
                assert session.query(CheckIn).filter(CheckIn.state == "prompting").count() == 1  # the tick ran
            warnings = [r for r in caplog.records if "heartbeat" in r.getMessage()]
            assert len(warnings) == 1 and warnings[0].levelname == "WARNING"
            assert warnings[0].getMessage() == "heartbeat to http://127.0.0.1/… failed: Connection refused"
            assert runner.last_tick == utc(2026, 12, 1, 9, 0)
            # A heartbeat endpoint that takes 3 s to answer: the tick doesn't wait for it.
            runner.heartbeat.url = slow.url
            frozen.tick(timedelta(minutes=2))
            started = time.perf_counter()
            runner.tick()
            assert time.perf_counter() - started < 1.0
            assert runner.last_tick == utc(2026, 12, 1, 9, 2)
            assert slow.wait_for(1) or slow.wait_for(1)
    finally:
        slow.close()
        runner.server.close()


def test_the_heartbeat_is_not_fetched_while_unhealthy(engine, vera, pinged):
    runner = runner_for(engine, heartbeat_url=pinged.url)
    with session_scope(engine) as session:
        session.add(ProviderOutage(gateway="twilio", started_at=utc(2026, 12, 1, 8, 50),
                                   last_failure_at=utc(2026, 12, 1, 8, 59), failures=40, last_error="HTTP 503"))
    try:
        with freeze_time("2026-12-01 09:00:00"):
            runner.tick()
        time.sleep(0.3)
        assert pinged.hits == []  # the provider has been failing 10 minutes: let a person hear
    finally:
        runner.server.close()


def health(runner: Runner) -> tuple[str, str]:
    status, body, _ = call(runner.app, "/health", {}, method="GET")
    return status, body


def test_a_heartbeat_url_is_logged_without_its_secrets():
    from phonetree.heartbeat import shown

    assert shown(f"https://user:pw@hc-ping.com:443/{SECRET}?rid=7") == "https://hc-ping.com/…"


def test_health_answers_503_until_a_tick_and_when_ticks_stop(engine, vera):
    runner = runner_for(engine)
    try:
        with freeze_time("2026-12-01 09:00:00") as frozen:
            assert health(runner) == ("503 Service Unavailable", "no successful tick yet\n")
            runner.tick()
            assert health(runner) == ("200 OK", "ok\n")
            frozen.tick(timedelta(seconds=20))  # 4 intervals of 5 s: still fine
            assert health(runner)[0].startswith("200")
            frozen.tick(timedelta(seconds=5))
            assert health(runner) == ("503 Service Unavailable", "last successful tick 25 s ago\n")
            runner.tick()
            assert health(runner)[0].startswith("200")
    finally:
        runner.server.close()


def test_a_failing_tick_is_not_a_successful_one(engine, vera):
    from tests.test_journal import ReadOnly

    runner = runner_for(engine)
    fault = ReadOnly(engine)
    try:
        with freeze_time("2026-12-01 09:00:00") as frozen:
            runner.tick()
            engine.dispose()
            fault.on = True
            frozen.tick(timedelta(seconds=30))
            runner.tick()  # fails (logged); the last successful tick stays at 09:00
            assert health(runner) == ("503 Service Unavailable", "last successful tick 30 s ago\n")
            fault.on = False
            runner.tick()
            assert health(runner)[0].startswith("200")
    finally:
        fault.remove()
        runner.server.close()


def test_health_answers_503_once_the_provider_has_failed_for_five_minutes(engine, vera):
    runner = runner_for(engine)
    with session_scope(engine) as session:
        outage = ProviderOutage(gateway="twilio", started_at=utc(2026, 12, 1, 8, 56),
                                last_failure_at=utc(2026, 12, 1, 8, 59), failures=12, last_error="HTTP 503")
        session.add(outage)
        session.add(ProviderOutage(gateway="twilio", started_at=utc(2026, 12, 1, 7, 0),  # an old, closed one
                                   last_failure_at=utc(2026, 12, 1, 7, 5), failures=3,
                                   ended_at=utc(2026, 12, 1, 7, 6)))
    try:
        with freeze_time("2026-12-01 09:00:00") as frozen:
            runner.tick()
            assert health(runner)[0].startswith("200")  # failing for 4 minutes
            frozen.tick(timedelta(seconds=61))
            runner.tick()
            assert health(runner) == ("503 Service Unavailable", "provider failing since 2026-12-01T08:56:00Z\n")
            with session_scope(engine) as session:
                session.get(ProviderOutage, outage.id).ended_at = utc(2026, 12, 1, 9, 1)
            runner.tick()
            assert health(runner) == ("200 OK", "ok\n")
    finally:
        runner.server.close()


def test_the_outage_threshold_is_a_setting(engine, vera, monkeypatch):
    monkeypatch.setenv("PHONETREE_HEALTH_OUTAGE_SECONDS", "60")
    settings = Settings.from_env(database_url=str(engine.url))
    assert settings.health_outage_seconds == 60
    runner = Runner(engine, OutboxGateway(), settings, port=0)
    with session_scope(engine) as session:
        session.add(ProviderOutage(gateway="twilio", started_at=utc(2026, 12, 1, 8, 58),
                                   last_failure_at=utc(2026, 12, 1, 8, 59), failures=2))
    try:
        with freeze_time("2026-12-01 09:00:00"):
            runner.tick()
            assert health(runner) == ("503 Service Unavailable", "provider failing since 2026-12-01T08:58:00Z\n")
    finally:
        runner.server.close()
