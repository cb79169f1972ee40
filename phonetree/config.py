"""Settings from the environment; a matching command-line option wins over it."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field


DEFAULT_DATABASE_URL = "sqlite:///phonetree.db"
DEFAULT_GATEWAY = "outbox"


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    gateway: str = DEFAULT_GATEWAY
    public_url: str | None = None
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = field(default=None, repr=False)  # never printed
    twilio_from_number: str | None = None
    twilio_messaging_service_sid: str | None = None
    twilio_api_base_url: str | None = None
    # PHONETREE_DATABASE_KEY: the SQLite database is encrypted with it (SQLCipher).
    database_key: str | None = field(default=None, repr=False)  # never printed
    messages_per_second: float = 10.0
    calls_per_second: float = 1.0
    tick_seconds: float = 5.0
    # How long a claimed message is held by one worker before another may send it (the
    # duplicate window after a crash mid-send).
    lease_seconds: float = 120.0
    # Messages one worker sends at once; None: enough for messages_per_second (see below).
    send_threads: int | None = None
    # Where verified webhooks wait while the database can't be written (phonetree.journal);
    # None: beside a SQLite file, else the current directory.
    journal_dir: str | None = None
    # Fetched after a healthy tick, at most once a minute (phonetree.heartbeat); may hold a secret.
    heartbeat_url: str | None = field(default=None, repr=False)
    # /health answers 503 once an open provider outage is older than this.
    health_outage_seconds: float = 300.0

    @property
    def health_stale_seconds(self) -> float:
        """/health answers 503 when the last successful tick is older than this: a few tick
        intervals, and never under 15 s (a tick that plans may take a second or two)."""
        return max(4 * self.tick_seconds, 15.0)

    @property
    def sending_threads(self) -> int:
        """Twilio accepts a message 100-300 ms after the request starts, so one at a time is 3-10
        a second: short of even a long code's 10. By default, enough threads for the rate at
        400 ms a send (4 for 10/s, 40 for a short code's 100/s). A crash repeats at most this many."""
        if self.send_threads is not None:
            return self.send_threads
        return max(1, min(100, math.ceil(self.messages_per_second * 0.4)))

    @classmethod
    def from_env(cls, database_url: str | None = None, gateway: str | None = None) -> "Settings":
        try:
            settings = cls._from_env(database_url, gateway)
        except ValueError as error:
            from phonetree.errors import PhonetreeError

            raise PhonetreeError(f"a PHONETREE_ setting is not a valid number ({error}); fix the environment variable.")
        settings.register_secrets()
        return settings

    def register_secrets(self) -> None:
        """Whatever is secret in these settings is hidden from every message and log line."""
        from phonetree import redact

        redact.register_url(self.database_url)
        redact.register(self.twilio_auth_token, self.database_key,
                        os.environ.get("PHONETREE_NEW_DATABASE_KEY"))
        redact.register_url(os.environ.get("PHONETREE_HEARTBEAT_URL"), secret_path=True)

    @classmethod
    def _from_env(cls, database_url: str | None = None, gateway: str | None = None) -> "Settings":
        env = os.environ
        return cls(
            database_url=database_url or env.get("PHONETREE_DATABASE_URL") or DEFAULT_DATABASE_URL,
            gateway=gateway or env.get("PHONETREE_GATEWAY") or DEFAULT_GATEWAY,
            public_url=(env.get("PHONETREE_PUBLIC_URL") or None),
            twilio_account_sid=env.get("TWILIO_ACCOUNT_SID") or None,
            twilio_auth_token=env.get("TWILIO_AUTH_TOKEN") or None,
            twilio_from_number=env.get("TWILIO_FROM_NUMBER") or None,
            twilio_messaging_service_sid=env.get("TWILIO_MESSAGING_SERVICE_SID") or None,
            twilio_api_base_url=env.get("TWILIO_API_BASE_URL") or None,
            database_key=env.get("PHONETREE_DATABASE_KEY") or None,
            messages_per_second=float(env.get("PHONETREE_MESSAGES_PER_SECOND") or 10.0),
            calls_per_second=float(env.get("PHONETREE_CALLS_PER_SECOND") or 1.0),
            tick_seconds=float(env.get("PHONETREE_TICK_SECONDS") or 5.0),
            lease_seconds=float(env.get("PHONETREE_LEASE_SECONDS") or 120.0),
            send_threads=_threads(env.get("PHONETREE_SEND_THREADS") or "auto"),
            journal_dir=env.get("PHONETREE_JOURNAL_DIR") or None,
            heartbeat_url=env.get("PHONETREE_HEARTBEAT_URL") or None,
            health_outage_seconds=float(env.get("PHONETREE_HEALTH_OUTAGE_SECONDS") or 300.0),
        )


def _threads(text: str) -> int | None:
    if text.strip() == "auto":
        return None
    if not text.strip().isdigit() or not 1 <= int(text) <= 100:
        raise ValueError(f"PHONETREE_SEND_THREADS is {text!r}: give a whole number from 1 to 100, or auto")
    return int(text)
