"""One send rate shared by every worker of a PostgreSQL database (schedules/shared_rate.py, issue
14): reservations from any workers are at least 1/rate apart, a fresh or stale row starts from
the database's now, routine reservations never hold an urgent send back more than the horizon,
and two real workers against the Twilio stand-in send at the number's rate, not twice it, with
the HELP first."""
from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import freezegun
import pytest
from sqlalchemy import Engine, func, select, text

from phonetree.config import Settings
from phonetree.db import dispose_all, get_engine, make_engine, session_scope
from phonetree.gateways.twilio import TwilioGateway
from phonetree.models import Message, SendRate
from schedules import dispatcher
from schedules.dispatcher import RateLimiter
from schedules.runner import Runner
from schedules.shared_rate import HORIZON, SharedRateLimiter, limiters_for
from tests.conftest import drop_postgres_database, fresh_postgres_database
from tests.twilio_standin import TwilioStandIn

PUBLIC = "https://tree.example.org"


@pytest.fixture
def pg_url(postgres_server: str | None) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database: the shared rate exists only there."""
    if postgres_server is None:
        pytest.skip("PostgreSQL is not installed here (.ci/run installs it)")
    url = fresh_postgres_database(postgres_server)
    yield url
    dispose_all()
    drop_postgres_database(postgres_server, url)


def _db_now(engine: Engine) -> float:
    with engine.connect() as conn:
        return float(conn.scalar(text("SELECT extract(epoch FROM clock_timestamp())::float8")))


def _set_next(engine: Engine, channel: str, next_start: float) -> None:
    with session_scope(engine) as session:
        session.merge(SendRate(gateway="twilio", channel=channel, next_start=next_start))


# ---------------------------------------------------------------- the reservation itself


def test_two_workers_reservations_are_never_closer_than_the_interval(pg_url: str) -> None:
    """Two workers (two engines, as two processes have), three sending threads each, urgent and
    routine sends mixed: every start reserved is at least 1/rate after the one before it."""
    rate = 200.0
    engines = [get_engine(pg_url), make_engine(pg_url)]
    limiters = [SharedRateLimiter(engine, "twilio", "sms", rate) for engine in engines]
    starts: list[float] = []
    lock = threading.Lock()

    def thread(limiter: SharedRateLimiter, urgent: bool) -> None:
        for _ in range(20):
            start, _, _ = limiter.reserve(urgent)
            if start is not None:
                with lock:
                    starts.append(start)

    threads = [threading.Thread(target=thread, args=(limiter, k % 2 == 0))
               for limiter in limiters for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    engines[1].dispose()
    starts.sort()
    assert len(starts) >= 60  # every urgent one at least
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert min(gaps) >= 1 / rate - 1e-6, f"two starts {min(gaps) * 1000:.2f} ms apart at {rate:g}/s"


def test_a_fresh_row_starts_at_the_databases_now(pg_url: str) -> None:
    engine = get_engine(pg_url)
    before = _db_now(engine)
    start, seen, db_now = SharedRateLimiter(engine, "twilio", "sms", 10).reserve(False)
    assert seen is None  # there was no row
    assert start is not None and before <= start <= db_now
    with session_scope(engine) as session:
        row = session.get(SendRate, ("twilio", "sms"))
        assert row is not None and row.next_start == pytest.approx(start + 0.1)


def test_a_stale_next_start_in_the_past_is_no_credit(pg_url: str) -> None:
    """A row last used an hour ago: the next sends start now, 1/rate apart, not back-to-back
    from the old time until they catch up (which would be an unlimited burst)."""
    engine = get_engine(pg_url)
    _set_next(engine, "sms", _db_now(engine) - 3600)
    limiter = SharedRateLimiter(engine, "twilio", "sms", 10)
    first, _, first_now = limiter.reserve(True)
    assert first is not None and first == pytest.approx(first_now, abs=0.05)
    later = [limiter.reserve(True)[0] for _ in range(4)]
    assert later == pytest.approx([first + 0.1 * k for k in range(1, 5)], abs=1e-6)


def test_a_next_start_far_ahead_is_a_clock_stepped_back(pg_url: str) -> None:
    """No queue reaches an hour ahead: such a row is a database clock that was set back, and
    sending must not stop for that hour."""
    engine = get_engine(pg_url)
    _set_next(engine, "sms", _db_now(engine) + 3600)
    start, _, db_now = SharedRateLimiter(engine, "twilio", "sms", 10).reserve(False)
    assert start is not None and start == pytest.approx(db_now, abs=0.05)


def test_urgent_is_not_held_behind_another_workers_routine_reservations(pg_url: str) -> None:
    """Worker A reserves routine sends as far as it may; worker B's HELP still starts within
    the horizon (plus one slot), and B's routine send must wait for room."""
    rate = 10.0
    engine_a, engine_b = get_engine(pg_url), make_engine(pg_url)
    a = SharedRateLimiter(engine_a, "twilio", "sms", rate)
    b = SharedRateLimiter(engine_b, "twilio", "sms", rate)
    taken = 0
    while a.reserve(False)[0] is not None:
        taken += 1
        assert taken < 100, "routine reservations never stop: no horizon"
    assert taken >= HORIZON * rate  # A filled the horizon
    start, _, db_now = b.reserve(True)
    assert start is not None and start - db_now <= HORIZON + 1 / rate + 0.05
    assert b.reserve(False)[0] is None
    engine_b.dispose()


def test_each_worker_claims_a_second_of_its_own_share(pg_url: str) -> None:
    """Two workers busy on one 10/s number get about 5/s each, so each claims about five at a
    time, not ten (ten would take each two seconds to send, and a HELP queued meanwhile could
    wait that long for either of them to claim again)."""
    engines = [get_engine(pg_url), make_engine(pg_url)]
    limiters = [SharedRateLimiter(engine, "twilio", "sms", 10) for engine in engines]
    until = time.monotonic() + 2.5

    def busy(limiter: SharedRateLimiter) -> None:
        while time.monotonic() < until:
            limiter.wait(3)

    threads = [threading.Thread(target=busy, args=(limiter,)) for limiter in limiters for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    engines[1].dispose()
    steps = [dispatcher._step({"sms": limiter}) for limiter in limiters]
    assert all(3 <= step <= 7 for step in steps), f"each worker claims {steps} at a time"
    # One worker alone (the other gone quiet) claims a whole second's worth again.
    assert dispatcher._step({"sms": SharedRateLimiter(engines[0], "twilio", "sms", 10)}) == 10


def test_a_frozen_app_clock_changes_no_reservation(pg_url: str) -> None:
    """The row holds the database's clock, not the app's: a test that freezes the app an hour
    ahead neither sleeps that hour nor sends faster than the rate."""
    engine = get_engine(pg_url)
    limiter = SharedRateLimiter(engine, "twilio", "sms", 20)
    done = threading.Event()
    real_monotonic = time.monotonic  # the real one, taken before freezing

    def three() -> None:
        for _ in range(3):
            limiter.wait(3)
        done.set()

    with freezegun.freeze_time(datetime.now(timezone.utc) + timedelta(hours=1)):
        began = real_monotonic()
        thread = threading.Thread(target=three)
        thread.start()
        thread.join(timeout=10)
        took = real_monotonic() - began
    assert done.is_set(), "wait() slept on the frozen clock"
    assert 0.09 <= took < 2.0  # the two gaps of 50 ms that 20/s requires, and no hour
    with session_scope(engine) as session:
        row = session.get(SendRate, ("twilio", "sms"))
        assert row is not None and row.next_start == pytest.approx(_db_now(engine), abs=1.0)


def test_sqlite_keeps_the_in_process_limiter(tmp_path: Path) -> None:
    """One process by design: no database round trip per send, and the table stays empty."""
    engine = get_engine(f"sqlite:///{tmp_path / 'phonetree.db'}")
    limiters = limiters_for(engine, "twilio", Settings(messages_per_second=10))
    assert not any(isinstance(limiter, SharedRateLimiter) for limiter in limiters.values())
    assert all(isinstance(limiter, RateLimiter) for limiter in limiters.values())
    limiters["sms"].wait(3)
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(SendRate)) == 0


# ---------------------------------------------------------------- two real workers


RATE = 5.0
ROUTINE = 30


def _seed(engine: Engine, now: datetime) -> None:
    with session_scope(engine) as session:
        for k in range(ROUTINE):
            session.add(Message(
                to_phone=f"+4479111{k:05d}", channel="sms", kind="checkin", template="checkin", priority=3,
                body=f"routine {k}", dedupe_key=f"routine:{k}", state="queued", created_at=now,
                not_before=now - timedelta(seconds=1), attempts=0))


def _help(engine: Engine) -> None:
    now = datetime.now(timezone.utc)
    with session_scope(engine) as session:
        session.add(Message(
            to_phone="+447911100001", channel="sms", kind="alert", template="checkin", priority=0,
            body="urgent", dedupe_key="urgent:1", state="queued", created_at=now, not_before=now,
            attempts=0))


def test_two_workers_send_at_the_numbers_rate_and_urgent_first(pg_url: str, tmp_path: Path) -> None:
    """Two `phonetree run` workers (each its own Runner, engine and twilio client) send one
    morning's queue to the stand-in at 5/s. From the stand-in's own receipt times: together they
    keep to 5/s (not 10), and a HELP queued mid-burst arrives within two seconds, ahead of the
    routine prompts queued before it."""
    with TwilioStandIn(public_url=PUBLIC, latency=0.05) as twilio:
        settings = Settings(
            database_url=pg_url, gateway="twilio", public_url=PUBLIC, twilio_account_sid=twilio.account_sid,
            twilio_auth_token=twilio.auth_token, twilio_from_number="+441522000000",
            twilio_api_base_url=twilio.base_url, messages_per_second=RATE, journal_dir=str(tmp_path))
        engines = [get_engine(pg_url), make_engine(pg_url)]
        _seed(engines[0], datetime.now(timezone.utc))
        runners = [Runner(engine, TwilioGateway.from_settings(settings), settings, port=0) for engine in engines]

        def work(runner: Runner) -> None:
            while True:
                runner.send()
                with session_scope(runner.engine) as session:
                    if not session.scalar(select(func.count()).select_from(Message)
                                          .where(Message.state.in_(("queued", "sending")))):
                        return
                time.sleep(0.05)

        workers = [threading.Thread(target=work, args=(runner,)) for runner in runners]
        for w in workers:
            w.start()
        time.sleep(2.0)  # about ten sent at 5/s, twenty to go
        asked = time.monotonic()
        _help(engines[0])
        for w in workers:
            w.join(timeout=60)
        for runner in runners:
            runner.server.close()
        engines[1].dispose()
        received = sorted((r.at, r.params["Body"]) for r in twilio.requests_to("Messages"))

    bodies = [body for _, body in received]
    assert sorted(bodies) == sorted([f"routine {k}" for k in range(ROUTINE)] + ["urgent"])
    times = [at for at, _ in received]
    overall = (len(times) - 1) / (times[-1] - times[0])
    busiest = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
    assert overall <= RATE * 1.15 and busiest <= RATE + 1, (
        f"two workers together sent {overall:.1f}/s overall, {busiest} in one second, at a limit of {RATE:g}/s")
    urgent_at = times[bodies.index("urgent")]
    assert urgent_at - asked <= 2.0, f"the HELP waited {urgent_at - asked:.2f} s"
    behind = sum(1 for at, body in received if body != "urgent" and at > urgent_at)
    sent_before_help = sum(1 for t in times if t < asked)
    assert behind >= (ROUTINE - sent_before_help) - 2 * RATE, (
        f"the HELP went out after {ROUTINE - sent_before_help - behind} of the routine prompts waiting with it")
