"""`phonetree run`: APScheduler runs two interval jobs, `tick` (plan and move items on) and
`send` (dispatch what is due); waitress serves the webhooks. Two jobs in memory, not one job per
check-in: the rows are the schedule. They are separate so a long rate-limited burst of sends
never holds up windows closing and escalations, and so a reply that queues a message (a HELP)
wakes only the sender, not a whole planning pass."""
from __future__ import annotations

import logging
import signal
import threading
from datetime import datetime, timedelta, timezone
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine
from waitress.server import create_server

from phonetree import clock
from phonetree.config import Settings
from phonetree.db import checkpoint
from phonetree.gateways.base import Gateway
from phonetree.heartbeat import Heartbeat, health, open_outage_since
from phonetree.journal import Journal, location
from phonetree.web import MAX_BODY, WebhookApp
from schedules.engine import step
from schedules.shared_rate import limiters_for
from schedules import dispatcher

log = logging.getLogger(__name__)

# waitress's defaults let 100 idle TCP connections shut every webhook out for the 120 s of
# channel_timeout, and read (and sign over) a body of up to 1 GiB. Twilio waits 15 s at most
# for an answer, so an idle connection is dropped after 30 s (checked every 5 s), a thousand may
# be open at once (poll(), not select(), so past 1024 descriptors too), and a body over 64 KiB
# is refused with 413 before it is read (waitress refuses a Content-Length >= the limit).
SERVER_LIMITS: dict[str, Any] = {
    "connection_limit": 1000, "channel_timeout": 30, "cleanup_interval": 5, "backlog": 1024,
    "max_request_body_size": MAX_BODY + 1, "max_request_header_size": 32 * 1024,
    "asyncore_use_poll": True, "ident": "phonetree",
}


class _Stopped(Exception):
    """Raised in the main thread by SIGINT/SIGTERM to leave the server's loop cleanly."""


def _interrupt(*_: Any) -> None:
    raise _Stopped()


class Runner:
    def __init__(self, engine: Engine, gateway: Gateway, settings: Settings,
                 host: str = "127.0.0.1", port: int = 8080) -> None:
        self.engine, self.gateway, self.settings = engine, gateway, settings
        # Shared by every worker of a PostgreSQL database; this process's own on SQLite.
        self.limiters = limiters_for(engine, gateway.name, settings)
        self.scheduler = BackgroundScheduler(timezone=timezone.utc)
        first = datetime.now(timezone.utc)
        self.job = self.scheduler.add_job(self.tick, "interval", seconds=settings.tick_seconds, max_instances=1,
                                          coalesce=True, id="tick", next_run_time=first)
        self.send_job = self.scheduler.add_job(self.send, "interval", seconds=settings.tick_seconds,
                                               max_instances=1, coalesce=True, id="send", next_run_time=first)
        self.journal = Journal(location(engine.url.render_as_string(hide_password=False), settings.journal_dir))
        self.app = WebhookApp(engine, settings.twilio_auth_token, settings.public_url, on_change=self.wake,
                              account_sid=settings.twilio_account_sid, journal=self.journal,
                              health=self.health)
        self.heartbeat = Heartbeat(settings.heartbeat_url)
        self.last_tick: datetime | None = None  # the last tick that completed
        self.outage_since: datetime | None = None  # as read at that tick
        self.server: Any = create_server(self.app, host=host, port=port, threads=8, **SERVER_LIMITS)
        self.stopped = threading.Event()

    @property
    def address(self) -> str:
        return f"http://{self.server.effective_host}:{self.server.effective_port}"

    def tick(self) -> None:
        # Replies journalled while the database couldn't be written go first (the first tick
        # runs at start, so a restart applies them too); a failure here is logged inside.
        self.app.replay_journal()
        try:
            now = clock.now()
            # The sender starts on the morning slot's first prompts while the rest are written.
            report = step(self.engine, now, queued=self.wake)
            self.outage_since = open_outage_since(self.engine)
        except Exception:  # noqa: BLE001 - keep ticking; the rows keep every promise meanwhile
            log.exception("tick failed; will try again")
            return
        self.last_tick = now
        if report.summary() != "nothing due":
            log.info("tick: %s", report.summary())
            self.wake()
        if self.health() is None:
            self.heartbeat.beat(now)  # in the background; a failure is logged there

    def health(self) -> str | None:
        """Why this worker is not healthy (for /health and the heartbeat), or None."""
        return health(clock.now(), self.last_tick, timedelta(seconds=self.settings.health_stale_seconds),
                      self.outage_since, timedelta(seconds=self.settings.health_outage_seconds))

    def send(self) -> None:
        try:
            result = dispatcher.dispatch(self.engine, self.gateway, clock.now(), limiters=self.limiters,
                                         lease=timedelta(seconds=self.settings.lease_seconds),
                                         stop=self.stopped, threads=self.settings.sending_threads)
        except Exception:  # noqa: BLE001 - the messages stay queued (or leased) and are sent next time
            log.exception("sending failed; will try again")
            return
        if result.sent or result.failed or result.retried:
            log.info("sent %d, failed %d, to retry %d", result.sent, result.failed, result.retried)

    def wake(self) -> None:
        """Send now (something was queued), instead of at the next interval. If a send pass is
        already running it picks new messages up itself: it claims about a second's worth at a time."""
        try:
            self.send_job.modify(next_run_time=datetime.now(timezone.utc))
        except Exception:  # noqa: BLE001 - the scheduler may be shutting down
            pass

    def start(self) -> None:
        self.scheduler.start()

    def serve_forever(self) -> None:
        self.start()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, _interrupt)
        try:
            self.server.run()
        except _Stopped:
            log.info("stopping")
        finally:
            self.stop()

    def stop(self) -> None:
        if self.stopped.is_set():
            return
        self.stopped.set()
        try:
            self.scheduler.shutdown(wait=True)
        except Exception:  # noqa: BLE001 - already stopped
            pass
        self.server.close()
        try:
            checkpoint(self.engine)  # leave no erased data behind in the -wal file
        except Exception:  # noqa: BLE001 - stopping regardless; the next start checkpoints too
            log.warning("could not checkpoint the database on the way out", exc_info=True)
