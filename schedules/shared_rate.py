"""One send rate shared by every worker of a PostgreSQL database.

Each `phonetree run` used to pace itself alone, so two workers on one Twilio number sent twice
the number's rate, and Twilio's own queue then held an urgent HELP behind hundreds of routine
prompts. Here every worker reserves each send's start time from one row per gateway and channel
(`send_rates`): one statement, `next_start = GREATEST(next_start, now) + 1/rate`, so any two
reservations, whoever made them, are at least 1/rate apart.

The row holds seconds on the database server's clock: the one clock every worker reads alike.
Not the app's clock (tests freeze it with freezegun, and it schedules rather than paces) and not
a worker's monotonic clock (it means nothing in another process). A worker sleeps for
`start - database now`, both read in the same statement, so a frozen test sleeps only as long
as the rate really requires, and a worker's own clock being off changes nothing.

Urgent first across workers: a routine send may reserve only while the next free start is
within HORIZON of now, so the slots already handed out to every worker's routine sends reach at
most HORIZON ahead; an urgent send (priority 0, a HELP's alert) reserves regardless, and so
starts within about HORIZON of asking, whatever the other workers hold. A routine send that
finds the horizon full sleeps until it has room (plus jitter, so threads don't retry in step).

Reservations are throughput, not a record: each commits with synchronous_commit off (a lost
one after a crash costs nothing), and if the database can't be reached for one, the worker
paces itself alone at the whole rate instead of stopping sending.

SQLite runs one process by design and keeps the in-process `RateLimiter`.
"""
from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from phonetree.config import Settings
from phonetree.messages import URGENT_PRIORITY
from schedules.dispatcher import RateLimiter

log = logging.getLogger(__name__)

# How far ahead routine reservations may reach: an urgent send waits at most about this long
# for its slot (the dispatcher claims about a second's worth at a time; this keeps the total
# for a HELP near a second rather than a second per worker).
HORIZON = 0.5
# A next start further ahead than this is not a queue (the longest is HORIZON plus the urgent
# sends) but a database clock that was stepped back: start again from now.
FAR_AHEAD = 60.0
# The window over which this worker's share of the rate is measured (see `share`).
SHARE_WINDOW = 2.0

_NOW = "extract(epoch FROM clock_timestamp())::float8"
# One round trip, in autocommit: reserve a start (NULL when routine and the horizon is full),
# and say what the next free start was and what time the database makes it.
_RESERVE = text(f"""
WITH quick AS (SELECT set_config('synchronous_commit', 'off', true) AS off),
seen AS (SELECT next_start FROM send_rates WHERE gateway = :gateway AND channel = :channel),
took AS (
    INSERT INTO send_rates AS r (gateway, channel, next_start)
    VALUES (:gateway, :channel, {_NOW} + :interval)
    ON CONFLICT (gateway, channel) DO UPDATE
    SET next_start = CASE WHEN r.next_start > {_NOW} + :far THEN {_NOW}
                          ELSE GREATEST(r.next_start, {_NOW}) END + :interval
    WHERE :urgent OR r.next_start <= {_NOW} + :horizon OR r.next_start > {_NOW} + :far
    RETURNING r.next_start - :interval AS start
)
SELECT (SELECT start FROM took) AS start, (SELECT next_start FROM seen) AS next_start,
       {_NOW} AS db_now, (SELECT off FROM quick) AS off
""")


class SharedRateLimiter(RateLimiter):
    """`rate` starts a second for one gateway's channel, across every worker of the database.
    The same `wait()` as RateLimiter, so the dispatcher sends through either alike."""

    def __init__(self, engine: Engine, gateway: str, channel: str, rate: float,
                 horizon: float = HORIZON) -> None:
        super().__init__(rate)  # its own bucket is the fallback when the database can't answer
        self.engine, self.gateway, self.channel, self.horizon = engine, gateway, channel, horizon
        self._recent: deque[float] = deque()
        self._recent_lock = threading.Lock()
        self._failing = False

    def reserve(self, urgent: bool) -> tuple[float | None, float | None, float]:
        """One attempt: (the reserved start or None, the next free start seen, the database's now),
        all in seconds on the database's clock."""
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            row = conn.execute(_RESERVE, {
                "gateway": self.gateway, "channel": self.channel, "interval": self.interval,
                "horizon": self.horizon, "far": FAR_AHEAD, "urgent": urgent}).one()
        return row.start, row.next_start, row.db_now

    def wait(self, priority: int | None = None) -> None:
        if not self.interval:
            return
        urgent = priority is not None and priority <= URGENT_PRIORITY
        while True:
            try:
                start, next_start, db_now = self.reserve(urgent)
            except DBAPIError:
                self._fallback()
                return
            if self._failing:
                self._failing = False
                log.info("the shared %s rate is reachable again", self.channel)
            if start is not None:
                self._note()
                if start > db_now:
                    time.sleep(start - db_now)
                return
            # Routine, and every slot within the horizon is taken: come back when the next one
            # is, jittered so that the threads of every worker waiting here don't all retry at once.
            room = max(0.0, (next_start if next_start is not None else db_now) - self.horizon - db_now)
            time.sleep(room + random.uniform(0.0, self.horizon / 2))

    def _fallback(self) -> None:
        if not self._failing:
            self._failing = True
            log.warning("could not reserve a send on the shared %s rate; pacing this worker alone "
                        "until the database answers", self.channel, exc_info=True)
        self._note()
        super().wait()

    def _note(self) -> None:
        moment = time.monotonic()
        with self._recent_lock:
            self._recent.append(moment)
            while self._recent and self._recent[0] < moment - SHARE_WINDOW:
                self._recent.popleft()

    @property
    def share(self) -> float:
        """The starts a second this worker has been getting lately: the dispatcher claims about a
        second's worth of these at a time, so with N workers busy each claims 1/N of the rate's
        second and a HELP queued meanwhile is claimed by one of them within about a second.
        The whole rate when this worker has sent little lately (nobody may be sharing it)."""
        moment = time.monotonic()
        with self._recent_lock:
            while self._recent and self._recent[0] < moment - SHARE_WINDOW:
                self._recent.popleft()
            count = len(self._recent)
        if count < 2:
            return self.rate
        return max(1.0, min(self.rate, count / SHARE_WINDOW))


def limiters_for(engine: Engine, gateway: str, settings: Settings) -> dict[str, RateLimiter]:
    """The rate limits of one worker: shared through the database on PostgreSQL, this process's
    own on SQLite (one process by design)."""
    rates = {"sms": settings.messages_per_second, "voice": settings.calls_per_second}
    if engine.dialect.name == "postgresql":
        return {channel: SharedRateLimiter(engine, gateway, channel, rate) for channel, rate in rates.items()}
    return {channel: RateLimiter(rate) for channel, rate in rates.items()}
