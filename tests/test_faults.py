"""Fault injection: workers killed mid-send, Twilio failing or hanging, a locked SQLite file and
clock jumps. Each test says which promise it checks; the numbers it measures (kills, messages,
duplicates) are in its assertion messages. The whole file is bounded to about a minute.
"""
from __future__ import annotations

import collections
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

import pytest
from freezegun import freeze_time
from sqlalchemy import Engine, select

from phonetree.config import Settings
from phonetree.db import dispose_all, get_engine, make_engine, session_scope, upgrade
from phonetree.gateways.base import Gateway, Outgoing
from phonetree.gateways.twilio import TwilioGateway
from phonetree.models import CheckIn, Group, Member, Message, Task
from schedules import dispatcher
from schedules.engine import step, tick
from tests.conftest import JO, MARGARET, SAM, VERA, sent, utc
from tests.twilio_standin import TwilioStandIn

ROOT = Path(__file__).parent.parent
PUBLIC = "https://tree.example.org"
E164 = {VERA: "+447911100001", JO: "+447911100002", SAM: "+447911100003", MARGARET: "+447911100004"}


# ------------------------------------------------------------------------------------ helpers


def seed_due_checkins(engine: Engine, count: int, now: datetime) -> list[int]:
    """`count` members in a UTC group without quiet hours, each with a check-in due a second
    ago (rows written directly: 200 CLI calls would take longer than the test)."""
    with session_scope(engine) as session:
        group = Group(name="Faults", timezone="UTC", quiet_start="00:00", quiet_end="00:00",
                      created_at=now)
        session.add(group)
        session.flush()
        members = [Member(group_id=group.id, name=f"M{i:03d}", phone=f"+4479112{i:05d}",
                          channel="sms", roles="peer", created_at=now) for i in range(count)]
        session.add_all(members)
        session.flush()
        checkins = [CheckIn(plan_id=None, group_id=group.id, member_id=m.id,
                            occurrence=now.date().isoformat(), due_at=now - timedelta(seconds=1),
                            state="scheduled", window_s=3600, reminder_s=None,
                            escalation_wait_s=1200, escalation_step=-1) for m in members]
        session.add_all(checkins)
        session.flush()
        return [c.id for c in checkins]


def message_ids_posted(standin: TwilioStandIn) -> collections.Counter[int]:
    """How many SMS the stand-in created per phonetree message id (from `?m=` in the
    StatusCallback). A resource exists as soon as the POST arrived, even if the worker that
    made it was killed before the answer came back: Twilio had acted on it."""
    counts: collections.Counter[int] = collections.Counter()
    for resource in standin.messages:
        query = urlsplit(resource.params.get("StatusCallback", "")).query
        counts[int(parse_qs(query)["m"][0])] += 1
    return counts


def twilio_env(standin: TwilioStandIn, url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PHONETREE_", "TWILIO_"))}
    return {**env, "PHONETREE_DATABASE_URL": url, "PHONETREE_GATEWAY": "twilio",
            "TWILIO_ACCOUNT_SID": standin.account_sid, "TWILIO_AUTH_TOKEN": standin.auth_token,
            "TWILIO_FROM_NUMBER": "+441522000000", "TWILIO_API_BASE_URL": standin.base_url,
            "PHONETREE_PUBLIC_URL": PUBLIC, **extra}


# Each worker is `phonetree run` itself (cli.main in a process of its own, killed with SIGKILL).
# Fifty cold starts of the interpreter would take longer than this whole file may, so workers
# are forked from a parent that has already imported everything, set up the ORM mappers and
# checked the schema once (its engine is disposed before any fork: no connection crosses it).
# Everything from cli.main() on is the real command, in a fresh process with its own pid.
FORK_SERVER = r"""
import os, sys
import cli, schedules.runner, phonetree.gateways.twilio
import sqlalchemy.orm
from phonetree.db import get_engine
sqlalchemy.orm.configure_mappers()
get_engine(os.environ["PHONETREE_DATABASE_URL"]).dispose()
for line in sys.stdin:
    command, _, arg = line.strip().partition(" ")
    if command == "fork":
        path, *settings = arg.split(" ")
        pid = os.fork()
        if pid == 0:
            os.environ.update(item.split("=", 1) for item in settings)
            log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(log, 1)
            os.dup2(log, 2)
            sys.argv = ["phonetree", "run", "--port", "0"]
            code = 0
            try:
                cli.main()
            except SystemExit as stop:
                code = stop.code if isinstance(stop.code, int) else 1
            except BaseException:
                import traceback; traceback.print_exc(); code = 1
            sys.stdout.flush(); sys.stderr.flush()
            os._exit(code)
        print(pid, flush=True)
    elif command == "wait":
        _, status = os.waitpid(int(arg), 0)
        print(os.waitstatus_to_exitcode(status), flush=True)
"""


class Workers:
    """One `phonetree run` at a time, forked from a warm parent (see FORK_SERVER)."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.log_dir = log_dir
        self.count = 0
        self.current: int | None = None
        self.server = subprocess.Popen([sys.executable, "-c", FORK_SERVER], env=env, cwd=ROOT, text=True,
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=open(log_dir / "fork-server.log", "w"))

    def _ask(self, line: str) -> int:
        assert self.server.stdin is not None and self.server.stdout is not None
        self.server.stdin.write(line + "\n")
        self.server.stdin.flush()
        answer = self.server.stdout.readline()
        assert answer, (self.log_dir / "fork-server.log").read_text()
        return int(answer)

    def start(self, **settings: str) -> int:
        """Start a worker; `settings` are environment variables for this one only."""
        assert self.current is None
        self.count += 1
        extra = "".join(f" {name}={value}" for name, value in settings.items())
        self.current = self._ask(f"fork {self.log_dir / f'worker{self.count}.log'}{extra}")
        return self.current

    def kill(self) -> int:
        assert self.current is not None
        os.kill(self.current, signal.SIGKILL)
        code = self._ask(f"wait {self.current}")
        self.current = None
        return code

    def stop(self) -> int | None:
        """SIGTERM the current worker (a clean shutdown) and end the parent."""
        code = None
        try:
            if self.current is not None:
                os.kill(self.current, signal.SIGTERM)
                code = self._ask(f"wait {self.current}")
                self.current = None
        finally:
            self.server.stdin.close()  # type: ignore[union-attr]
            self.server.wait(timeout=10)
        return code

    def log(self, number: int | None = None) -> str:
        return (self.log_dir / f"worker{number or self.count}.log").read_text(errors="replace")


class SlowTwilio(TwilioStandIn):
    """The stand-in, answering each Messages POST only after a random delay in `slow` (seconds,
    low and high) while it is set. The SMS exists from the moment the POST arrives, as at Twilio:
    a worker killed while waiting for the answer has still sent it."""

    slow: tuple[float, float] | None = None

    def _answer(self, method, path, endpoint, auth, params, multi):  # type: ignore[no-untyped-def]
        status, body, content_type, delay = super()._answer(method, path, endpoint, auth, params, multi)
        if self.slow and endpoint == "Messages":
            delay += random.uniform(*self.slow)
        return status, body, content_type, delay


def wait_until(condition: Callable[[], object], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.01)


def sqlite_counts(path: Path) -> dict[str, int]:
    """Message states, read with a plain read-only connection: the product's engine begins
    every transaction with BEGIN IMMEDIATE, which would compete with the worker for the lock."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return dict(conn.execute("SELECT state, count(*) FROM messages GROUP BY state").fetchall())
    finally:
        conn.close()


# ------------------------------------------------------------------- 1. kill -9 mid-dispatch

KILLS = 50
CHECKINS = 200


@pytest.mark.parametrize("threads", [1, 4])
def test_kill_9_mid_send_fifty_times_loses_nothing_and_duplicates_at_most_one_per_thread_per_kill(
        tmp_path: Path, threads: int):
    """`phonetree run` (twilio gateway, SQLite file) is killed with SIGKILL 50 times while it
    sends 200 due check-ins to a slow Twilio (50-100 ms per Messages POST), and restarted each
    time. In the end every check-in's prompt has left (the stand-in holds at least one SMS per
    check-in and the row is `sent`), and a message is sent twice only when a kill caught it
    between the POST and the mark: at most one duplicate per sending thread per kill
    (PHONETREE_SEND_THREADS: 1, and the default 4).

    The lease is set short with PHONETREE_LEASE_SECONDS=1, so a restarted worker re-queues the
    killed worker's `sending` rows after a second instead of after the default 120 s."""
    url = f"sqlite:///{tmp_path / 'kill.db'}"
    engine = get_engine(url)
    checkin_ids = seed_due_checkins(engine, CHECKINS, datetime.now(timezone.utc))
    dispose_all()
    rng = random.Random(20261201)
    with SlowTwilio(public_url=PUBLIC) as standin:
        standin.slow = (0.05, 0.1)  # every POST is slow, so kills land mid-send
        env = twilio_env(standin, url, PHONETREE_TICK_SECONDS="0.2", PHONETREE_LEASE_SECONDS="1",
                         PHONETREE_SEND_THREADS=str(threads))
        workers = Workers(env, tmp_path)
        kills, started = 0, time.monotonic()
        try:
            while kills < KILLS:
                if sqlite_counts(tmp_path / "kill.db").get("sent", 0) == CHECKINS:
                    break  # nothing left to interrupt
                posted = len(standin.messages)
                workers.start()
                # Wait for this worker's first POST, then kill it a moment later, mid-batch.
                wait_until(lambda: len(standin.messages) > posted, "the restarted worker to send", 20)
                time.sleep(rng.uniform(0.0, 0.5))
                workers.kill()
                kills += 1
            during_kills = sqlite_counts(tmp_path / "kill.db").get("sent", 0)
            # The last worker runs undisturbed; only now Twilio is quick and the rate unlimited,
            # so the remainder doesn't take minutes.
            standin.slow = None
            workers.start(PHONETREE_MESSAGES_PER_SECOND="1000")
            wait_until(lambda: sqlite_counts(tmp_path / "kill.db").get("sent", 0) == CHECKINS,
                       "the last worker to finish", 60)
            code = workers.stop()
        except BaseException:
            if workers.current is not None:
                workers.kill()
            workers.stop()
            raise
        elapsed = time.monotonic() - started
        assert code == 0, workers.log()
        posted_per_message = message_ids_posted(standin)

    engine = get_engine(url)
    with session_scope(engine) as session:
        rows = session.execute(select(Message.id, Message.checkin_id, Message.state, Message.kind)).all()
    dispose_all()
    prompt_of = {checkin_id: (mid, state) for mid, checkin_id, state, kind in rows if kind == "checkin"}
    lost = [c for c in checkin_ids
            if c not in prompt_of or prompt_of[c][1] != "sent" or posted_per_message[prompt_of[c][0]] < 1]
    duplicates = sum(n - 1 for n in posted_per_message.values() if n > 1)
    stats = (f"{kills} kills in {elapsed:.1f} s ({during_kills} of {CHECKINS} prompts marked sent before "
             f"the last worker), {len(rows)} messages, {sum(posted_per_message.values())} "
             f"SMS POSTed, {duplicates} duplicate(s) over {sum(1 for n in posted_per_message.values() if n > 1)} "
             f"message(s), {len(lost)} lost")
    print(stats)
    assert kills == KILLS, stats
    assert not lost, f"check-ins never sent: {lost[:10]}; {stats}"
    assert duplicates <= kills * threads, f"more duplicates than {threads} per kill: {stats}"


# ---------------------------------------------------- 2. Twilio answers 500, 429, or too late

TIMEOUT = 0.5  # the client's HTTP timeout in these tests (HTTP_TIMEOUT is 10 s in production)
T0 = utc(2026, 12, 1, 9, 0)


@pytest.fixture
def twilio_gateway(standin: TwilioStandIn) -> TwilioGateway:
    settings = Settings(gateway="twilio", public_url=PUBLIC, twilio_account_sid=standin.account_sid,
                        twilio_auth_token=standin.auth_token, twilio_from_number="+441522000000",
                        twilio_api_base_url=standin.base_url)
    return TwilioGateway.from_settings(settings, timeout=TIMEOUT)


def prompts(engine: Engine) -> dict[int, Message]:
    """The check-in prompt of each check-in, by message id."""
    return {m.id: m for m in sent(engine, kind="checkin")}


def test_twilio_500_429_and_timeout_lose_nothing_and_back_off(engine, standin, twilio_gateway):
    """Five prompts; Twilio answers the first three with a 500, a 429 and nothing in time (it
    acts on that one but the client gives up). All three are retried after a jittered back-off
    of 1-3 s (attempt 1), not before; the other two go at once. In the end each check-in's prompt
    is sent; the only duplicate is the timed-out one, as documented (a timeout may have been
    acted on; a resend is the accepted risk), and a 500 or 429 is never doubled."""
    seed_due_checkins(engine, 5, T0)
    step(engine, T0)
    standin.fail_next("Messages", status=500)
    standin.fail_next("Messages", status=429, code=20429, message="Too Many Requests")
    standin.delay_next("Messages", TIMEOUT + 0.5)

    # limit=5: one pass over the five. The dispatcher's `now` moves on with the time it has
    # taken, so on a loaded machine a pass over 3 s long would otherwise claim the retries too.
    first = dispatcher.dispatch(engine, twilio_gateway, T0, limit=5)
    assert (first.sent, first.retried, first.failed) == (2, 3, 0)
    waiting = {m.id: m for m in prompts(engine).values() if m.state == "queued"}
    assert len(waiting) == 3
    errors = sorted(m.error or "" for m in waiting.values())
    assert any("HTTP 500" in e for e in errors) and any("rate limiting" in e for e in errors) \
        and any("in time" in e for e in errors), errors
    for message in waiting.values():
        assert message.attempts == 1
        assert T0 + timedelta(seconds=1) <= message.not_before <= T0 + timedelta(seconds=3), message.not_before
    timed_out = next(m.id for m in waiting.values() if "in time" in (m.error or ""))

    # Not before the back-off: a dispatch at the same instant, or at +0.9 s, sends nothing.
    posts = len(standin.requests_to("Messages"))
    assert dispatcher.dispatch(engine, twilio_gateway, T0).sent == 0
    assert dispatcher.dispatch(engine, twilio_gateway, T0 + timedelta(seconds=0.9)).sent == 0
    assert len(standin.requests_to("Messages")) == posts

    assert dispatcher.dispatch(engine, twilio_gateway, T0 + timedelta(seconds=3)).sent == 3
    assert {m.state for m in prompts(engine).values()} == {"sent"}
    wait_until(lambda: len(standin.requests_to("Messages")) == 8, "the slow answer to be recorded", 5)
    per_message = message_ids_posted(standin)
    assert set(per_message) == set(prompts(engine)), "a check-in prompt never reached Twilio"
    doubled = {mid: n for mid, n in per_message.items() if n > 1}
    assert doubled == {timed_out: 2}, f"sent twice beyond the timeout rule: {doubled}"
    with session_scope(engine) as session:
        assert set(session.scalars(select(CheckIn.state))) == {"sent"}


def test_twilio_failing_for_minutes_backs_off_to_a_minute_and_nobody_is_asked(
        oakfield, ok, engine, standin, twilio_gateway):
    """Twilio answers 500 to ten tries in a row: the back-off doubles (2, 4, 8, 16, 32 s, +/-50%)
    up to a minute and stays there; the prompt is never given up on, nobody is asked to ring
    Vera (a provider's failure is nobody's answer), and it leaves when Twilio is back, its
    window starting then. (Issue 11 defect 3: this test used to expect the prompt marked failed
    after six tries and Jo asked.)"""
    with freeze_time("2026-11-30 12:00:00"):
        ok("checkin", "add", "Oakfield", "Vera", "--at", "09:00", "--escalate-to", "Jo,Sam")
    step(engine, T0)
    tries = 10
    standin.fail_next("Messages", status=500, times=tries)
    now, delays = T0, []
    for attempt in range(1, tries + 1):
        result = dispatcher.dispatch(engine, twilio_gateway, now)
        [prompt] = sent(engine, kind="checkin")
        assert prompt.attempts == attempt
        assert result.retried == 1 and prompt.state == "queued"
        delays.append((prompt.not_before - now).total_seconds())
        now = prompt.not_before
        step(engine, now)
        assert not sent(engine, kind="escalation")
    for attempt, delay in enumerate(delays, start=1):
        assert 0.5 * min(2 ** attempt, 60) <= delay <= min(1.5 * 2 ** attempt, 60), (attempt, delays)
    assert max(delays) == pytest.approx(60, abs=30)
    dispatcher.dispatch(engine, twilio_gateway, now)  # Twilio is back
    statuses = [r.status for r in standin.requests_to("Messages")]
    assert statuses == [500] * tries + [201], statuses
    [prompt] = sent(engine, kind="checkin")
    assert prompt.state == "sent" and prompt.sent_at == now
    with session_scope(engine) as session:
        checkin = session.scalar(select(CheckIn).where(CheckIn.occurrence == "2026-12-01"))
        assert checkin.state == "sent" and checkin.window_ends_at > now
    assert not sent(engine, kind="escalation")


# --------------------------------------------------- 2b. a dispatch longer than the lease

class RecordingGateway(Gateway):
    """Sends nothing; remembers every message id it was asked to send, taking `delay` each."""

    name = "recording"

    def __init__(self, log: list[int], delay: float = 0.0) -> None:
        self.log, self.delay = log, delay
        self._lock = threading.Lock()

    def send_sms(self, out: Outgoing) -> str:
        time.sleep(self.delay)
        with self._lock:
            self.log.append(out.message_id)
        return f"RG{out.message_id}-{len(self.log)}"


def test_two_workers_never_send_twice_when_a_dispatch_outlasts_the_lease(engine):
    """Two live workers share the database (ARCHITECTURE.md: "several workers can share one
    PostgreSQL database"); nobody crashes. Worker A's tick has a backlog that takes longer
    than the lease to send (at 10 SMS/s, 1200+ messages against the default 120 s; here 40
    against a 2.5 s lease, in batches of 10 that take a second each: a batch may run 1.5 s
    slow on a loaded machine and still be inside its lease). Each batch A claims must be A's
    for a whole lease from the moment it claims it, so worker B, ticking meanwhile, must not
    take any of them over and send them again. B's whole tick runs inside A's first send of its
    fourth and last batch (claimed about 3 s into A's tick), so the overlap is certain."""
    now = datetime.now(timezone.utc)
    seed_due_checkins(engine, 40, now)
    step(engine, now)
    a_log: list[int] = []
    b_log: list[int] = []
    lease = timedelta(seconds=2.5)
    overlap: dict[str, Any] = {}

    class WorkerA(RecordingGateway):
        def send_sms(self, out: Outgoing) -> str:
            if len(self.log) == 30:  # the fourth batch's first: B ticks now, in the middle of it
                def worker_b() -> None:
                    overlap["b_at"] = time.monotonic() - overlap["a_at"]
                    overlap["b"] = dispatcher.dispatch(
                        engine, RecordingGateway(b_log, 0.05), datetime.now(timezone.utc),
                        limiters={"sms": dispatcher.RateLimiter(10)}, lease=lease)
                b = threading.Thread(target=worker_b)
                b.start()
                b.join(timeout=30)
            return super().send_sms(out)

    overlap["a_at"] = time.monotonic()
    a = dispatcher.dispatch(engine, WorkerA(a_log, 0.05), now,
                            limiters={"sms": dispatcher.RateLimiter(10)}, lease=lease)
    # The overlap happened: B ticked while A still had ten to send, more than a lease into A's tick.
    assert "b" in overlap and overlap["b_at"] > lease.total_seconds()
    log = a_log + b_log
    twice = sorted(mid for mid, n in collections.Counter(log).items() if n > 1)
    assert len(set(log)) == 40
    assert not twice, (f"{len(twice)} of 40 messages sent twice by two live workers: a batch claimed "
                       f"more than a lease into a tick is claimed already expired "
                       f"(lease_until = tick start + lease); ids {twice}")
    assert (a.sent, overlap["b"].sent, b_log) == (40, 0, [])  # all of them A's, under lease


# ---------------------------------------------------------------- 3. the SQLite file is locked


class CountingGateway(RecordingGateway):
    """Records sends; `during_send` runs inside the first send (to take a lock meanwhile)."""

    def __init__(self, during_send: Callable[[], None] | None = None) -> None:
        super().__init__([])
        self.during_send = during_send

    def send_sms(self, out: Outgoing) -> str:
        if self.during_send is not None:
            action, self.during_send = self.during_send, None
            action()
        return super().send_sms(out)


def hold_write_lock(path: Path, seconds: float) -> tuple[threading.Thread, threading.Event]:
    """Another connection takes the write lock (BEGIN IMMEDIATE) and keeps it `seconds`."""
    taken = threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        taken.set()
        time.sleep(seconds)
        conn.execute("ROLLBACK")
        conn.close()

    thread = threading.Thread(target=hold)
    thread.start()
    assert taken.wait(5)
    return thread, taken


@pytest.fixture
def sqlite_file(tmp_path: Path, ok_at) -> Path:  # type: ignore[no-untyped-def]
    """Oakfield on a SQLite file: Vera at 09:00, then Jo, then Sam."""
    path = tmp_path / "locked.db"
    run = ok_at(f"sqlite:///{path}")
    run("group", "add", "Oakfield", "--timezone", "Europe/London")
    run("member", "add", "Oakfield", "Vera", "--phone", VERA)
    run("member", "add", "Oakfield", "Jo", "--phone", JO)
    run("member", "add", "Oakfield", "Sam", "--phone", SAM)
    run("member", "add", "Oakfield", "Margaret", "--phone", MARGARET, "--role", "organiser")
    with freeze_time("2026-11-30 12:00:00"):
        run("checkin", "add", "Oakfield", "Vera", "--at", "09:00", "--escalate-to", "Jo,Sam")
    dispose_all()
    return path


def impatient_engine(path: Path, busy_ms: int) -> Engine:
    """The product's engine (WAL, BEGIN IMMEDIATE, its pragmas), waiting only `busy_ms` for a
    lock instead of 10 s: a lock held longer than that stands for one held past the real
    busy_timeout, without the test sitting through it."""
    from sqlalchemy import event

    engine = make_engine(f"sqlite:///{path}")

    @event.listens_for(engine, "connect")
    def _short_wait(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.execute(f"PRAGMA busy_timeout={busy_ms}")

    upgrade(engine)
    return engine


def test_a_tick_waits_out_a_write_lock_shorter_than_busy_timeout(sqlite_file: Path):
    """Another connection holds the write lock for 2 s as the 09:00 tick starts: the tick
    waits (busy_timeout, 10 s) instead of failing, then sends the prompt once."""
    engine = get_engine(f"sqlite:///{sqlite_file}")
    gateway = CountingGateway()
    holder, _ = hold_write_lock(sqlite_file, 2.0)
    started = time.monotonic()
    report = tick(engine, gateway, T0)
    waited = time.monotonic() - started
    holder.join()
    assert waited >= 1.5, f"the tick didn't wait for the lock ({waited:.2f} s)"
    assert report.prompted == 1 and report.sent == 1
    tick(engine, gateway, T0 + timedelta(seconds=5))
    assert len(gateway.log) == 1 and len(sent(engine, kind="checkin")) == 1


def test_a_lock_held_past_busy_timeout_fails_the_tick_cleanly_and_the_next_catches_up(sqlite_file: Path):
    """A lock held longer than busy_timeout as the tick starts: the tick fails with "database is
    locked" having written nothing; the next tick sends the prompt, once."""
    from sqlalchemy.exc import OperationalError

    from tests.conftest import snapshot

    engine = impatient_engine(sqlite_file, busy_ms=200)
    before = snapshot(engine)
    gateway = CountingGateway()
    holder, _ = hold_write_lock(sqlite_file, 1.0)
    with pytest.raises(OperationalError, match="locked"):
        tick(engine, gateway, T0)
    holder.join()
    assert snapshot(engine) == before and gateway.log == []
    report = tick(engine, gateway, T0 + timedelta(seconds=5))
    assert report.prompted == 1 and report.sent == 1
    tick(engine, gateway, T0 + timedelta(seconds=10))
    assert len(gateway.log) == 1 and len(sent(engine, kind="checkin")) == 1
    engine.dispose()


def test_a_lock_between_send_and_mark_does_not_send_the_prompt_twice(sqlite_file: Path):
    """The lock arrives while the prompt is with the gateway and is held past busy_timeout, so
    the dispatcher can't mark the message sent. The worker is alive and knows the SMS left;
    later ticks must not send it again (nothing doubled), and the check-in must still move on
    (its window starts, and without a reply Jo is asked)."""
    engine = impatient_engine(sqlite_file, busy_ms=200)
    holders: list[threading.Thread] = []
    gateway = CountingGateway(during_send=lambda: holders.append(hold_write_lock(sqlite_file, 1.0)[0]))
    try:
        tick(engine, gateway, T0)
    except Exception as error:  # noqa: BLE001 - the Runner logs this and ticks again
        failure = repr(error)
    else:
        failure = "none"
    for holder in holders:
        holder.join()
    for minutes in (1, 3, 5, 10, 31, 60):
        tick(engine, gateway, T0 + timedelta(minutes=minutes))
    prompts_sent = collections.Counter(gateway.log)
    [prompt] = sent(engine, kind="checkin")
    assert prompts_sent[prompt.id] == 1, (
        f"the prompt was sent {prompts_sent[prompt.id]} times (first tick failed with {failure}); "
        f"the unmarked message stayed 'sending' until its lease ran out and was sent again")
    assert sent(engine, kind="escalation"), "the check-in never moved on"
    engine.dispose()


# ---------------------------------------------------------------- 4. the clock jumps forward


def add_vera_checkin(ok: Callable[..., object]) -> None:
    with freeze_time("2026-11-30 12:00:00"):
        ok("checkin", "add", "Oakfield", "Vera", "--at", "09:00", "--window", "30m",
           "--escalate-to", "Jo,Sam", "--escalation-wait", "20m")


def at(hour: int, minute: int = 0, day: int = 1) -> datetime:
    return utc(2026, 12, day, hour, minute)


def test_prompt_queued_at_nine_but_sent_at_three_counts_its_window_from_three(oakfield, ok, engine, ticker):
    """The 09:00 tick queued the prompt and the worker died before sending it; it is back at
    15:00. The prompt goes out at 15:00 (the same local day) and the window counts from then:
    no false alarm at 15:00 (Vera was never asked), Jo asked at 15:30 if no reply."""
    add_vera_checkin(ok)
    step(engine, at(9))  # planned and queued; the dispatch never ran
    ticker(at(15))
    [prompt] = sent(engine, kind="checkin")
    assert prompt.state == "sent" and prompt.sent_at == at(15), (prompt.state, prompt.error)
    assert not sent(engine, kind="escalation"), \
        f"a false alarm: {[m.body for m in sent(engine, kind='escalation')]}"
    ticker(at(15, 29))
    assert not sent(engine, kind="escalation")
    ticker(at(15, 30))
    assert [m.to_phone for m in sent(engine, kind="escalation")] == [E164[JO]]


def test_jump_mid_escalation_moves_one_contact_per_tick(oakfield, ok, engine, ticker):
    """Jo was asked at 09:30; the service then stops until 15:00. Jo's wait is long over, but
    the jump must not run the whole chain in one tick (Sam skipped, organisers alerted at once):
    Sam is asked at 15:00 with a full 20 minutes, and only then the organisers."""
    add_vera_checkin(ok)
    ticker(at(9))
    ticker(at(9, 30))
    assert [m.to_phone for m in sent(engine, kind="escalation")] == [E164[JO]]
    ticker(at(15))
    assert [m.to_phone for m in sent(engine, kind="escalation")] == [E164[JO], E164[SAM]]
    assert not sent(engine, kind="alert")
    ticker(at(15, 19))
    assert not sent(engine, kind="alert")
    ticker(at(15, 20))
    [alert] = sent(engine, kind="alert")
    assert alert.to_phone == E164[MARGARET]


def test_jump_before_the_ask_left_gives_the_contact_her_full_wait(oakfield, ok, engine, ticker):
    """At 09:30 the window closed and Jo's ask was queued, but the worker died before sending it;
    it is back at 15:00. Jo's ask leaves at 15:00, so her 20 minutes count from 15:00 (as the
    check-in window counts from the actual send): she alone is asked at 15:00, and her DONE at
    15:10 resolves the check-in."""
    add_vera_checkin(ok)
    ticker(at(9))
    step(engine, at(9, 30))  # Jo's ask queued; the dispatch never ran
    ticker(at(15))
    asked = [m.to_phone for m in sent(engine, kind="escalation")]
    with freeze_time("2026-12-01 15:10:00"):
        reply = ok("receive", "--from", JO, "done, she's fine").stdout
    with session_scope(engine) as session:
        state = session.scalars(select(CheckIn.state).order_by(CheckIn.due_at)).first()
        tasks = [(t.assignee.name, t.state) for t in session.scalars(select(Task).order_by(Task.id))]
    assert asked == [E164[JO]], (f"asked at 15:00: {asked}; Jo's task expired at 09:50, 20 min "
                                 f"after it was queued, before her ask had left; tasks {tasks}")
    assert state == "resolved", f"Jo's DONE didn't resolve it ({reply.strip()!r}); tasks {tasks}"


def test_two_day_jump_mid_escalation_still_asks_a_person_and_reports_the_missed_day(oakfield, ok, engine, ticker):
    """Jo was asked on Tuesday at 09:30; the service is down until Thursday 10:00. Wednesday's
    check-in is reported as missed (never raised as an alarm), Thursday's is sent late, and
    Tuesday's unanswered escalation still reaches a person (Sam) rather than vanishing, one
    step at a time."""
    add_vera_checkin(ok)
    ticker(at(9))
    ticker(at(9, 30))
    ticker(at(10, 0, day=3))
    missed = [m for m in sent(engine, kind="alert") if "wasn't sent" in (m.body or "")]
    assert len(missed) == 1 and "Wed 02 Dec" in missed[0].body
    assert len(sent(engine, kind="checkin")) == 2  # Tuesday's, and Thursday's late
    assert [m.to_phone for m in sent(engine, kind="escalation")] == [E164[JO], E164[SAM]]
    assert not [m for m in sent(engine, kind="alert") if "wasn't sent" not in (m.body or "")]


# ------------------------------------------------------------ a clean shutdown mid-burst


@pytest.mark.parametrize("threads", [1, 4])
def test_a_shutdown_mid_burst_hands_back_what_it_claimed_at_once(engine: Engine, threads: int):
    """SIGTERM during a long rate-limited burst: the dispatch stops after the messages in hand
    (the one, or with several sending threads each thread's one) and its claimed-but-unsent
    messages go straight back to the queue (not after their lease), so the next worker sends
    them at once, each exactly once."""
    now = utc(2026, 12, 1, 9, 0)
    seed_due_checkins(engine, 12, now)
    step(engine, now)
    stop = threading.Event()

    class StopsAfterThree(Gateway):
        name = "recording"

        def __init__(self) -> None:
            self.log: list[int] = []

        def send_sms(self, out: Outgoing) -> str:
            self.log.append(out.message_id)
            if len(self.log) == 3:
                stop.set()  # SIGTERM arrives while the third is being sent
            return f"SM{out.message_id:032d}"

    gateway = StopsAfterThree()
    with freeze_time(now):
        first = dispatcher.dispatch(engine, gateway, now, stop=stop, threads=threads)
    # The third send sets the stop; sends that had already begun on other threads finish.
    assert 3 <= first.sent <= 3 + threads - 1
    states = collections.Counter(m.state for m in sent(engine, kind="checkin"))
    assert states == {"sent": first.sent, "queued": 12 - first.sent}, states  # none left 'sending'
    assert all(m.attempts == 0 for m in sent(engine, kind="checkin") if m.state == "queued")
    with freeze_time(now + timedelta(seconds=1)):
        second = dispatcher.dispatch(engine, gateway, now + timedelta(seconds=1), threads=threads)
    assert second.sent == 12 - first.sent
    assert sorted(collections.Counter(gateway.log).values()) == [1] * 12


def test_several_sending_threads_send_at_once_each_message_once_most_urgent_first(engine: Engine, monkeypatch):
    """`phonetree run` sends PHONETREE_SEND_THREADS messages at once (Twilio is 100-300 ms away;
    one at a time can't keep up with a sender's 10 a second). The first four sends are in
    flight together (a barrier holds each until all four have begun), the urgent message is
    among them though it was queued last, and every message leaves once and is marked, with
    its check-in's window started, across the seams of batches claimed while the previous one
    was still in flight."""
    monkeypatch.setattr(dispatcher, "BATCH", 7)
    now = utc(2026, 12, 1, 9, 0)
    seed_due_checkins(engine, 40, now)
    step(engine, now)
    with session_scope(engine) as session:
        urgent = max(m.id for m in session.scalars(select(Message)))
        session.get(Message, urgent).priority = 0  # type: ignore[union-attr]
    together = threading.Barrier(4, timeout=10)

    class Concurrent(Gateway):
        name = "recording"

        def __init__(self) -> None:
            self.log: list[int] = []
            self.lock = threading.Lock()

        def send_sms(self, out: Outgoing) -> str:
            with self.lock:
                self.log.append(out.message_id)
                first_four = len(self.log) <= 4
            if first_four:
                together.wait()  # BrokenBarrierError (and a failed send) unless 4 run at once
            return f"SM{out.message_id:032d}"

    gateway = Concurrent()
    with freeze_time(now):
        result = dispatcher.dispatch(engine, gateway, now, threads=4)
    assert result.sent == 40 and result.retried == 0
    assert urgent in gateway.log[:4]
    assert sorted(collections.Counter(gateway.log).values()) == [1] * 40
    assert collections.Counter(m.state for m in sent(engine, kind="checkin")) == {"sent": 40}
    with session_scope(engine) as session:
        assert {c.state for c in session.scalars(select(CheckIn))} == {"sent"}
