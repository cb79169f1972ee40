"""`phonetree doctor`: what an organiser can't see for themselves. The database (reachable,
writable, schema current, file permissions), time zone data, the gateway's settings and, for
Twilio, that the credentials work, the sending number is on the account and a message that
comes in to it is posted to PHONETREE_PUBLIC_URL/twilio/sms.

Each check is a line: OK, or what to do. Nothing here prints a secret: settings are named,
never echoed, and the database URL is shown with its password hidden.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Engine, make_url, select, text

from phonetree.config import Settings
from phonetree.db import _current_revision, _head_revision, make_engine, normalise_url
from phonetree.errors import PhonetreeError
from phonetree.phones import mask

INBOUND_PATH = "/twilio/sms"


@dataclass(frozen=True)
class Check:
    ok: bool
    what: str
    detail: str  # when ok, what was found; otherwise, what to do


def _no_credentials(url: str | None) -> str:
    """A webhook URL may carry basic-auth credentials (https://user:pass@host/...): never show them."""
    if not url:
        return "nowhere"
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    return urlunsplit((parts.scheme, host + (f":{parts.port}" if parts.port else ""), parts.path, parts.query, ""))


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def run(settings: Settings) -> list[Check]:
    checks: list[Check] = []
    zones = _database(settings, checks)
    _time_zones(zones, checks)
    _gateway(settings, checks)
    return checks


# ---------------------------------------------------------------- the database


def _sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def _database(settings: Settings, checks: list[Check]) -> list[str]:
    """The database checks; returns the time zones its groups use (to check they load)."""
    url = normalise_url(settings.database_url)
    shown = make_url(url).render_as_string(hide_password=True)
    path = _sqlite_path(url)
    if path is not None and not path.exists():
        folder = path.parent if str(path.parent) else Path(".")
        if os.access(folder, os.W_OK):
            checks.append(Check(True, "database", f"{shown} doesn't exist yet; the first command creates it."))
        else:
            checks.append(Check(False, "database", f"{shown} doesn't exist and {folder} isn't writable: "
                                "choose another place with PHONETREE_DATABASE_URL."))
        return []
    # Looked at before connecting (closing the last connection removes -wal and -shm), shown
    # after the line that says the database is there.
    modes: list[Check] = []
    if path is not None:
        _file_modes(path, modes)
    engine: Engine | None = None
    try:
        engine = make_engine(url)
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as error:  # noqa: BLE001 - reported as one line
            checks.append(Check(False, "database", f"can't reach {shown}: {_first_line(error)}; "
                                "check PHONETREE_DATABASE_URL and that the server is running."))
            checks.extend(modes)
            return []
        checks.append(Check(True, "database", f"{shown} is reachable."))
        checks.extend(modes)
        current, head = _current_revision(engine), _head_revision(url)
        if current is None:
            checks.append(Check(False, "schema", "no phonetree tables yet: run any command (e.g. "
                                "phonetree group list) to create them."))
            return []
        if current != head:
            checks.append(Check(False, "schema", f"at migration {current}, this phonetree expects {head}: "
                                "back the database up, then run any command (e.g. phonetree group list) to "
                                "upgrade it; if it is newer, upgrade phonetree."))
        else:
            checks.append(Check(True, "schema", f"current (migration {head})."))
        _writable(engine, shown, checks)
        zones = _group_zones(engine)
    finally:
        if engine is not None:
            engine.dispose()
    return zones


def _writable(engine: Engine, shown: str, checks: list[Check]) -> None:
    """A real write, rolled back: SQLite's BEGIN IMMEDIATE and the UPDATE both need write access."""
    try:
        with engine.connect() as connection:
            transaction = connection.begin()
            try:
                connection.execute(text("UPDATE alembic_version SET version_num = version_num"))
            finally:
                transaction.rollback()
    except Exception as error:  # noqa: BLE001 - reported as one line
        checks.append(Check(False, "database writes", f"can't write to {shown}: {_first_line(error)}; "
                            "give the user that runs phonetree write access (file and folder, for SQLite)."))
        return
    checks.append(Check(True, "database writes", "allowed."))


def _group_zones(engine: Engine) -> list[str]:
    from phonetree.models import Group

    with engine.connect() as connection:
        return sorted(set(connection.execute(select(Group.timezone)).scalars()))


def _file_modes(path: Path, checks: list[Check]) -> None:
    """The database holds names, numbers and replies: only its owner should read it. SQLite's
    -wal and -shm files hold recent pages of it too."""
    loose = []
    for candidate in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if candidate.exists() and stat.S_IMODE(candidate.stat().st_mode) & 0o077:
            loose.append(f"{candidate.name} ({stat.S_IMODE(candidate.stat().st_mode):o})")
    if loose:
        checks.append(Check(False, "file permissions", f"others can read {', '.join(loose)}: run "
                            f"chmod 600 {path}*"))
    else:
        checks.append(Check(True, "file permissions", "only the owner can read the database files."))


# ---------------------------------------------------------------- time zones


def _time_zones(zones: list[str], checks: list[Check]) -> None:
    missing = []
    for name in ["Europe/London", *zones]:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            missing.append(name)
    if missing:
        checks.append(Check(False, "time zones", f"no time zone data for {', '.join(missing)}: "
                            "pip install tzdata (or install the system's tzdata package)."))
    else:
        checks.append(Check(True, "time zones", "data present" + (f" for {', '.join(zones)}." if zones else ".")))


# ---------------------------------------------------------------- the gateway


def _gateway(settings: Settings, checks: list[Check]) -> None:
    from phonetree.gateways import get_gateway
    from phonetree.gateways.base import GatewayError

    try:
        gateway = get_gateway(settings)
    except PhonetreeError as error:
        checks.append(Check(False, "gateway", f"{error}"))
        return
    if settings.gateway != "twilio":
        checks.append(Check(True, "gateway", f"{settings.gateway}: messages are recorded, nothing is sent "
                            "(PHONETREE_GATEWAY=twilio to send)."))
        return
    checks.append(Check(True, "gateway", "twilio: credentials and a sender are set."))
    public = (settings.public_url or "").rstrip("/")
    if not public:
        checks.append(Check(False, "public URL", "PHONETREE_PUBLIC_URL is not set: set it to the https "
                            "address where Twilio reaches phonetree run (e.g. https://tree.example.org)."))
    elif not public.startswith(("https://", "http://")):
        checks.append(Check(False, "public URL", "PHONETREE_PUBLIC_URL must start with https:// "
                            "(e.g. https://tree.example.org)."))
    else:
        checks.append(Check(True, "public URL", f"{public}"))
    sender = settings.twilio_from_number
    if not sender:
        checks.append(Check(True, "Twilio number", "sending through a Messaging Service: set its "
                            f"incoming-message URL to {public or 'PHONETREE_PUBLIC_URL'}{INBOUND_PATH} in the "
                            "Twilio console (not checked here)."))
        return
    try:
        found, sms_url, sms_method = gateway.incoming_sms_url()  # type: ignore[attr-defined]
    except GatewayError as error:
        checks.append(Check(False, "Twilio account", f"{error}"))
        return
    checks.append(Check(True, "Twilio account", "the credentials work."))
    if not found:
        checks.append(Check(False, "Twilio number", f"{mask(sender)} is not a number on this account: check "
                            "TWILIO_FROM_NUMBER against Phone Numbers in the Twilio console."))
        return
    checks.append(Check(True, "Twilio number", f"{mask(sender)} is on the account."))
    wanted = f"{public}{INBOUND_PATH}" if public else None
    if wanted is None:
        return
    if (sms_url or "").split("#")[0] != wanted or (sms_method or "POST").upper() != "POST":
        checks.append(Check(False, "incoming messages", f"Twilio posts texts to {mask(sender)} to "
                            f"{_no_credentials(sms_url)} ({sms_method or 'no method'}), so replies never reach "
                            f"phonetree: in the Twilio console set \"A message comes in\" to Webhook, {wanted}, "
                            "HTTP POST."))
    else:
        checks.append(Check(True, "incoming messages", f"texts to the number are posted to {wanted}."))
