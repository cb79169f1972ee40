"""The webhook journal: where a verified Twilio request goes when the database can't take it.

Twilio does not retry an inbound SMS by default, so a reply answered 500 while the database is
read-only, full or locked is lost. Instead the request (path, raw query, raw body, when it came)
is appended here, fsynced, and answered 200; it is applied later, in order, through the same
handler a live request takes (deduplicated on its checked sid, so applying one twice is
harmless). Only when this file can't be written either does the webhook answer 500.

One JSON object a line, each with a SHA-256 of its own content: a torn last line (a crash in
mid-write) or a damaged one fails its check and is skipped with a warning. Files are 0600.

Appenders hold a shared lock on `<journal>.lock`; replaying takes it exclusively only to rename
the journal to `<journal>.replaying`, so nothing is appended to a file being replayed. Replays
are one at a time (`<journal>.replay-lock`, across processes too). A replay that stops (the
database failed again) leaves `.replaying` in place; the next starts there, then the journal.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

ENV_DIR = "PHONETREE_JOURNAL_DIR"


@dataclass(frozen=True)
class Entry:
    path: str
    query: str
    body: str
    received_at: str  # ISO 8601, UTC


@dataclass
class Replay:
    applied: int = 0
    skipped: int = 0  # damaged lines, or entries whose handler failed for a reason of their own
    stopped: bool = False  # the database failed again: the rest waits for the next replay
    busy: bool = False  # another thread or process is replaying


def _checksum(fields: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def encode(entry: Entry) -> bytes:
    fields = {"path": entry.path, "query": entry.query, "body": entry.body, "at": entry.received_at}
    return (json.dumps({**fields, "sum": _checksum(fields)}, separators=(",", ":")) + "\n").encode()


def decode(line: bytes) -> Entry | None:
    """The entry on a line, or None if the line is torn or damaged."""
    if not line.endswith(b"\n"):
        return None
    try:
        record = json.loads(line)
        fields = {name: record[name] for name in ("path", "query", "body", "at")}
        if not all(isinstance(value, str) for value in fields.values()) or record.get("sum") != _checksum(fields):
            return None
    except (ValueError, KeyError, TypeError):
        return None
    return Entry(fields["path"], fields["query"], fields["body"], fields["at"])


def location(database_url: str, directory: str | None = None) -> Path:
    """Beside a SQLite file (`phonetree.db` → `phonetree.db.webhook-journal`); for PostgreSQL or an
    in-memory database, in PHONETREE_JOURNAL_DIR or else the current directory, named for the
    database (its URL without the password, hashed) so two databases never share one."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:" \
            and not url.database.startswith("file::memory:"):
        db = Path(url.database)
        return Path(directory or db.parent or ".") / f"{db.name}.webhook-journal"
    name = hashlib.sha256(url.render_as_string(hide_password=True).encode()).hexdigest()[:12]
    return Path(directory or ".") / f"phonetree-{name}.webhook-journal"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _open_private(path: Path, flags: int) -> int:
    fd = os.open(path, flags | os.O_CREAT, 0o600)
    os.fchmod(fd, 0o600)  # whatever the umask, or an older file's mode
    return fd


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.replaying = self.path.with_name(self.path.name + ".replaying")
        self._lock_path = self.path.with_name(self.path.name + ".lock")
        self._replay_lock_path = self.path.with_name(self.path.name + ".replay-lock")

    @contextmanager
    def _locked(self, path: Path, mode: int) -> Iterator[bool]:
        fd = _open_private(path, os.O_RDWR)
        try:
            try:
                fcntl.flock(fd, mode)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)  # releases the lock

    def append(self, entry: Entry) -> None:
        """Make `entry` durable (written and fsynced) or raise OSError."""
        data = encode(entry)
        with self._locked(self._lock_path, fcntl.LOCK_SH):
            created = not self.path.exists()
            fd = _open_private(self.path, os.O_WRONLY | os.O_APPEND)
            try:
                written = os.write(fd, data)
                if written != len(data):
                    raise OSError(f"short write to the webhook journal ({written} of {len(data)} bytes)")
                os.fsync(fd)
            finally:
                os.close(fd)
            if created:
                _fsync_dir(self.path)

    def pending(self) -> bool:
        return self.replaying.is_file() or self.path.is_file()

    def replay(self, apply: Callable[[Entry], None], stop_on: tuple[type[BaseException], ...]) -> Replay:
        """Apply every journalled entry in order. An exception in `stop_on` (the database failed
        again) stops the replay, to be resumed later; any other is logged and that entry skipped
        (one bad entry must not hold up every reply behind it)."""
        result = Replay()
        if not self.pending():
            return result
        with self._locked(self._replay_lock_path, fcntl.LOCK_EX | fcntl.LOCK_NB) as mine:
            if not mine:
                result.busy = True
                return result
            while True:
                if not self.replaying.exists():
                    with self._locked(self._lock_path, fcntl.LOCK_EX):
                        if not self.path.exists():
                            return result
                        os.replace(self.path, self.replaying)
                        _fsync_dir(self.path)
                for line in self.replaying.read_bytes().splitlines(keepends=True):
                    entry = decode(line)
                    if entry is None:
                        log.warning("skipped a damaged or torn line in the webhook journal %s", self.path.name)
                        result.skipped += 1
                        continue
                    try:
                        apply(entry)
                    except stop_on:
                        result.stopped = True
                        return result
                    except Exception:  # noqa: BLE001 - see above; the traceback holds no values
                        log.exception("a journalled webhook to %s could not be applied; skipped", entry.path)
                        result.skipped += 1
                        continue
                    result.applied += 1
                self.replaying.unlink()
                _fsync_dir(self.path)
