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
from typing import Callable
from urllib.parse import parse_qs, urlsplit

import pytest
from freezegun import freeze_time
from sqlalchemy import Engine, select, update

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


# A worker is `phonetree run` itself (cli.main), but started "warm": the interpreter and the
# imports load while the previous worker is still running, and the run begins when the test
# writes a line. That hides ~1 s of interpreter start-up per restart and keeps 50 restarts
# inside the time budget; everything after the import is the real command.
WARM_WORKER = """
import sys
import cli, schedules.runner, phonetree.gateways.twilio, alembic.command, alembic.runtime.migration
sys.stdin.readline()
sys.argv = ["phonetree", "run", "--port", "0"]
cli.main()
"""


class Workers:
    """One `phonetree run` at a time, with a warm spare ready to take over."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env, self.log_dir = env, log_dir
        self.count = 0
        self.spare = self._spawn()
        self.current: subprocess.Popen[bytes] | None = None

    def _spawn(self) -> subprocess.Popen[bytes]:
        self.count += 1
        log = open(self.log_dir / f"worker{self.count}.log", "wb")
        return subprocess.Popen([sys.executable, "-c", WARM_WORKER], env=self.env, cwd=ROOT,
                                stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT)

    def start(self) -> subprocess.Popen[bytes]:
        assert self.current is None
        self.current, self.spare = self.spare, self._spawn()
        assert self.current.stdin is not None
        self.current.stdin.write(b"go\n")
        self.current.stdin.flush()
        return self.current

    def kill(self) -> None:
        assert self.current is not None
        self.current.send_signal(signal.SIGKILL)
        self.current.wait(timeout=10)
        self.current = None

    def stop(self) -> int | None:
        code = None
        if self.current is not None:
            self.current.send_signal(signal.SIGTERM)
            try:
                code = self.current.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.current.kill()
                self.current.wait()
            self.current = None
        self.spare.kill()
        self.spare.wait()
        return code

    def log(self, number: int) -> str:
        return (self.log_dir / f"worker{number}.log").read_text(errors="replace")


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


def test_kill_9_mid_send_fifty_times_loses_nothing_and_duplicates_at_most_one_per_kill(tmp_path: Path):
    """`phonetree run` (twilio gateway, SQLite file) is killed with SIGKILL 50 times while it
    sends 200 due check-ins to a slow Twilio (50-100 ms per Messages POST), and restarted each
    time. In the end every check-in's prompt has left (the stand-in holds at least one SMS per
    check-in and the row is `sent`), and a message is sent twice only when a kill caught it
    between the POST and the mark: at most one duplicate per kill.

    The lease is set short with PHONETREE_LEASE_SECONDS=1, so a restarted worker re-queues the
    killed worker's `sending` rows after a second instead of after the default 120 s."""
    url = f"sqlite:///{tmp_path / 'kill.db'}"
    engine = get_engine(url)
    checkin_ids = seed_due_checkins(engine, CHECKINS, datetime.now(timezone.utc))
    dispose_all()
    rng = random.Random(20261201)
    with TwilioStandIn(public_url=PUBLIC) as standin:
        for _ in range(CHECKINS * 10):  # every POST is slow, so kills land mid-send
            standin.delay_next("Messages", rng.uniform(0.05, 0.1))
        env = twilio_env(standin, url, PHONETREE_TICK_SECONDS="0.2", PHONETREE_LEASE_SECONDS="1")
        workers = Workers(env, tmp_path)
        kills, started = 0, time.monotonic()
        try:
            while kills < KILLS:
                posted = len(standin.messages)
                workers.start()
                if sqlite_counts(tmp_path / "kill.db").get("sent", 0) == CHECKINS and posted:
                    break  # nothing left to interrupt
                # Wait for this worker's first POST, then kill it a moment later, mid-batch.
                t0 = time.monotonic()
                wait_until(lambda: len(standin.messages) > posted, "the restarted worker to send", 20)
                print("first post after", round(time.monotonic() - t0, 2))
                time.sleep(rng.uniform(0.05, 1.5))
                workers.kill()
                kills += 1
            workers.start()
            t0 = time.monotonic()
            wait_until(lambda: sqlite_counts(tmp_path / "kill.db").get("sent", 0) == CHECKINS,
                       "the last worker to finish", 60)
            print("drain", round(time.monotonic() - t0, 2), sqlite_counts(tmp_path / "kill.db"))
            code = workers.stop()
        except BaseException:
            workers.stop()
            raise
        elapsed = time.monotonic() - started
        assert code == 0, workers.log(workers.count - 1)
        posted_per_message = message_ids_posted(standin)

    engine = get_engine(url)
    with session_scope(engine) as session:
        rows = session.execute(select(Message.id, Message.checkin_id, Message.state, Message.kind)).all()
    dispose_all()
    prompt_of = {checkin_id: (mid, state) for mid, checkin_id, state, kind in rows if kind == "checkin"}
    lost = [c for c in checkin_ids
            if c not in prompt_of or prompt_of[c][1] != "sent" or posted_per_message[prompt_of[c][0]] < 1]
    duplicates = sum(n - 1 for n in posted_per_message.values() if n > 1)
    stats = (f"{kills} kills in {elapsed:.1f} s, {len(rows)} messages, {sum(posted_per_message.values())} "
             f"SMS POSTed, {duplicates} duplicate(s) over {sum(1 for n in posted_per_message.values() if n > 1)} "
             f"message(s), {len(lost)} lost")
    print(stats)
    assert kills == KILLS, stats
    assert not lost, f"check-ins never sent: {lost[:10]}; {stats}"
    assert duplicates <= kills, f"more duplicates than kills: {stats}"
