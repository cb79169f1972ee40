"""Telling the outside world phonetree is alive, and answering `GET /health`.

If the process dies or the machine is off, check-ins silently stop: only something outside can
notice. PHONETREE_HEARTBEAT_URL (e.g. a Healthchecks.io check) is fetched after a healthy tick,
at most once a minute, in a thread of its own so a slow endpoint never delays a tick; when the
fetches stop, that service tells a person. `/health` is for a load balancer or monitor that asks.
"""
from __future__ import annotations

import logging
import threading
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import Engine

from phonetree import outages
from phonetree.db import session_scope

log = logging.getLogger(__name__)

EVERY = timedelta(minutes=1)
TIMEOUT_SECONDS = 5.0


def shown(url: str) -> str:
    """A URL as safe to log: scheme and host only (a check's secret is in its path or query)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}/…"


def _why(error: BaseException) -> str:
    """Why a fetch failed, without echoing the URL (some exceptions' text contains it)."""
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code}"
    if isinstance(error, urllib.error.URLError) and isinstance(error.reason, OSError):
        return error.reason.strerror or type(error.reason).__name__
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return type(error).__name__


class Heartbeat:
    def __init__(self, url: str | None, every: timedelta = EVERY, timeout: float = TIMEOUT_SECONDS) -> None:
        self.url, self.every, self.timeout = url, every, timeout
        self.last_started: datetime | None = None
        self._lock = threading.Lock()
        self._in_flight: threading.Thread | None = None

    def beat(self, now: datetime) -> bool:
        """Fetch the URL in the background if a minute has passed since the last fetch began
        (or the clock went back) and none is still running. True if a fetch was started."""
        if not self.url:
            return False
        with self._lock:
            last = self.last_started
            if last is not None and last <= now < last + self.every:
                return False
            if self._in_flight is not None and self._in_flight.is_alive():
                return False  # a slow endpoint: never pile fetches up
            self.last_started = now
            self._in_flight = threading.Thread(target=self._fetch, name="heartbeat", daemon=True)
            self._in_flight.start()
            return True

    def _fetch(self) -> None:
        assert self.url
        try:
            with urllib.request.urlopen(urllib.request.Request(self.url, method="GET"), timeout=self.timeout) as r:
                r.read(1024)
        except Exception as error:  # noqa: BLE001 - a heartbeat's failure must never break anything
            log.warning("heartbeat to %s failed: %s", shown(self.url), _why(error))


def open_outage_since(engine: Engine) -> datetime | None:
    """When the oldest provider outage still open began (the dispatcher opens and closes them)."""
    with session_scope(engine) as session:
        outage = outages.current(session)
        return outage.started_at if outage is not None else None


def health(now: datetime, last_tick: datetime | None, stale_after: timedelta, outage_since: datetime | None,
           outage_after: timedelta) -> str | None:
    """Why phonetree is not healthy, in one line, or None if it is."""
    if last_tick is None:
        return "no successful tick yet"
    if now - last_tick > stale_after:
        return f"last successful tick {int((now - last_tick).total_seconds())} s ago"
    if outage_since is not None and now - outage_since > outage_after:
        return f"provider failing since {outage_since.strftime('%Y-%m-%dT%H:%M:%SZ')}"
    return None
