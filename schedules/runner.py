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
from phonetree.web import WebhookApp
from schedules.dispatcher import RateLimiter
from schedules.engine import step
from schedules import dispatcher

log = logging.getLogger(__name__)


class _Stopped(Exception):
    """Raised in the main thread by SIGINT/SIGTERM to leave the server's loop cleanly."""


def _interrupt(*_: Any) -> None:
    raise _Stopped()


class Runner:
    def __init__(self, engine: Engine, gateway: Gateway, settings: Settings,
                 host: str = "127.0.0.1", port: int = 8080) -> None:
        self.engine, self.gateway, self.settings = engine, gateway, settings
        self.limiters = {"sms": RateLimiter(settings.messages_per_second),
                         "voice": RateLimiter(settings.calls_per_second)}
        self.scheduler = BackgroundScheduler(timezone=timezone.utc)
        first = datetime.now(timezone.utc)
        self.job = self.scheduler.add_job(self.tick, "interval", seconds=settings.tick_seconds, max_instances=1,
                                          coalesce=True, id="tick", next_run_time=first)
        self.send_job = self.scheduler.add_job(self.send, "interval", seconds=settings.tick_seconds,
                                               max_instances=1, coalesce=True, id="send", next_run_time=first)
        self.app = WebhookApp(engine, settings.twilio_auth_token, settings.public_url, on_change=self.wake)
        self.server: Any = create_server(self.app, host=host, port=port, threads=8)
        self.stopped = threading.Event()

    @property
    def address(self) -> str:
        return f"http://{self.server.effective_host}:{self.server.effective_port}"

    def tick(self) -> None:
        try:
            report = step(self.engine, clock.now())
        except Exception:  # noqa: BLE001 - keep ticking; the rows keep every promise meanwhile
            log.exception("tick failed; will try again")
            return
        if report.summary() != "nothing due":
            log.info("tick: %s", report.summary())
            self.wake()

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
