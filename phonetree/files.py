"""Files that hold members' data (the SQLite database, a journal) are readable by their owner
only, whatever the umask: 0600 from the moment they exist, never briefly wider."""
from __future__ import annotations

import os
from typing import IO, Any
from pathlib import Path

PRIVATE_MODE = 0o600


def create_private(path: str | os.PathLike[str]) -> bool:
    """Create `path` empty with mode 0600 if it does not exist yet (an existing file is left as
    it is). Returns True when it was created here. O_EXCL: a file someone else made in the
    meantime is not taken over."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    except FileExistsError:
        return False
    try:
        # The umask can only take bits away from 0600, but a umask like 0o277 would leave the
        # owner unable to write: set exactly 0600.
        os.fchmod(fd, PRIVATE_MODE)
    finally:
        os.close(fd)
    return True


def open_private(path: str | os.PathLike[str], mode: str = "a", encoding: str | None = "utf-8") -> IO[Any]:
    """`open(path, mode)` for a file of members' data: created 0600 first if it is new."""
    create_private(path)
    return open(path, mode, encoding=encoding if "b" not in mode else None)


def sqlite_path(url: str) -> Path | None:
    """The file an SQLite URL names, or None (in memory, or a `file:` URI left to SQLite)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:") or parsed.query.get("uri"):
        return None
    return Path(database)


def prepare_sqlite_file(url: str) -> None:
    """Before SQLite opens a new database, create its file 0600: SQLite then gives the -wal and
    -shm files it makes beside it the same mode as the database file (and fchmods them to it,
    so the umask doesn't widen or narrow them)."""
    path = sqlite_path(url)
    if path is not None and path.parent.is_dir():
        create_private(path)
