"""Provider outages: stretches of time in which the gateway answers only with transient errors
(5xx, 429, timeouts, a refused connection).

A transient failure is never a person's answer: the message waits and is tried again, and the
outage is a row so that `status`, `/health` and the heartbeat in any process can say "the
provider has been failing since 09:02". The first failure opens the row (and is logged at ERROR,
once); the first message that leaves closes it.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import Engine, bindparam, exists, select, update
from sqlalchemy.orm import Session

from phonetree.db import session_scope
from phonetree.models import ProviderOutage
from phonetree.prepared import Prepared, read

log = logging.getLogger(__name__)


def current(session: Session, gateway: str | None = None) -> ProviderOutage | None:
    """The open outage (of `gateway`, or of any), the earliest if workers opened two at once."""
    query = select(ProviderOutage).where(ProviderOutage.ended_at.is_(None))
    if gateway is not None:
        query = query.where(ProviderOutage.gateway == gateway)
    return session.scalar(query.order_by(ProviderOutage.started_at, ProviderOutage.id).limit(1))


# Every send pass asks this first: one prepared read, not a session (and, on SQLite, a
# BEGIN IMMEDIATE taking the write lock) around the ORM.
_FAILING = Prepared(select(exists().where(ProviderOutage.ended_at.is_(None),
                                          ProviderOutage.gateway == bindparam("gateway"))))


def is_failing(engine: Engine, gateway: str) -> bool:
    with read(engine) as connection:
        return bool(_FAILING.rows(connection, {"gateway": gateway})[0][0])


def failed(session: Session, gateway: str, now: datetime, error: str) -> None:
    """A transient failure: extend the open outage, or open one (logged at ERROR once)."""
    outage = current(session, gateway)
    if outage is not None:
        outage.last_failure_at, outage.failures, outage.last_error = now, outage.failures + 1, error[:200]
        return
    session.add(ProviderOutage(gateway=gateway, started_at=now, last_failure_at=now, failures=1,
                               last_error=error[:200]))
    log.error("the %s provider is failing (%s): messages are held and tried again about every "
              "minute until it is back; `phonetree status` shows it", gateway, error[:120])


def recovered(engine: Engine, gateway: str, now: datetime) -> None:
    """A message left: every open outage of this gateway is over."""
    with session_scope(engine) as session:
        outage = current(session, gateway)
        if outage is None:
            return
        session.execute(update(ProviderOutage).where(ProviderOutage.gateway == gateway,
                                                     ProviderOutage.ended_at.is_(None))
                        .values(ended_at=now))
        log.warning("the %s provider is sending again after %s (%d failed tries)", gateway,
                    _duration(now - outage.started_at), outage.failures)


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"
