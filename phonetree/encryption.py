"""Encryption at rest for the embedded SQLite database, with SQLCipher (`pip install ".[encrypt]"`,
the `sqlcipher3` driver, SQLAlchemy's `sqlite+pysqlcipher` dialect). With PHONETREE_DATABASE_KEY
set, every page of the file and of its -wal is AES-256 encrypted; without the key a copy of the
file is noise. PostgreSQL's side (disk encryption, TLS to the server) is the operator's: see
SECURITY.md."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url

from phonetree.errors import PhonetreeError

KEY_VARIABLE = "PHONETREE_DATABASE_KEY"
NEW_KEY_VARIABLE = "PHONETREE_NEW_DATABASE_KEY"
INSTALL_HINT = 'pip install "phonetree[encrypt]" (or pip install ".[encrypt]" in the source tree)'
# A key shorter than this is guessable offline from a stolen file, however slow SQLCipher's
# key derivation (PBKDF2, 256,000 rounds) makes each guess.
MIN_KEY_LENGTH = 12


def driver() -> Any:
    """The sqlcipher3 module, or a clear error saying how to install it."""
    try:
        import sqlcipher3
    except ImportError:
        raise PhonetreeError(f"{KEY_VARIABLE} is set, but SQLCipher is not installed here: {INSTALL_HINT}.")
    return sqlcipher3


def check_key(key: str, variable: str = KEY_VARIABLE) -> str:
    if len(key) < MIN_KEY_LENGTH:
        raise PhonetreeError(f"{variable} is too short to protect the database; use at least "
                             f"{MIN_KEY_LENGTH} characters (a long random passphrase is best).")
    return key


def encrypted_url(url: str, key: str) -> URL:
    """The SQLCipher URL for an SQLite URL: the same file, opened with `key`."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        raise PhonetreeError(f"{KEY_VARIABLE} encrypts the embedded SQLite database only; for PostgreSQL "
                             "unset it and encrypt the server's disk and use TLS to it (see SECURITY.md).")
    driver()
    return parsed.set(drivername="sqlite+pysqlcipher", password=check_key(key))


def explain_open_error(error: BaseException, key: str | None) -> str | None:
    """What to tell the organiser when SQLite says a file is not a database: a wrong key, a
    missing one, or a key given for a file that isn't encrypted. None for any other error."""
    if "file is not a database" not in str(error) and "encrypted" not in str(error):
        return None
    if key:
        return (f"{KEY_VARIABLE} does not open this database: the key is wrong, or the file is not "
                "encrypted (to encrypt an existing database see SECURITY.md).")
    return (f"this database is encrypted (or is not a phonetree database): set {KEY_VARIABLE} "
            "to its key.")


def _quote(key: str) -> str:
    return "'" + key.replace("'", "''") + "'"


def rekey(url: str, old_key: str | None, new_key: str) -> None:
    """Re-encrypt the database under `new_key`; with no `old_key`, encrypt a plain database.
    Every other connection must be closed (stop `phonetree run` first): SQLite refuses the
    journal-mode change below while one is open, which is what makes this safe."""
    path = _path(url)
    check_key(new_key, NEW_KEY_VARIABLE)
    if new_key == old_key:
        raise PhonetreeError(f"{NEW_KEY_VARIABLE} is the same as the current key; give a new one.")
    sqlcipher = driver()
    connection = sqlcipher.connect(str(path), isolation_level=None)
    try:
        connection.execute("PRAGMA cipher_log_level=NONE")
        if old_key:
            connection.execute(f"PRAGMA key={_quote(old_key)}")
        try:
            connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlcipher.DatabaseError as error:
            raise PhonetreeError(explain_open_error(error, old_key) or f"can't open the database: {error}")
        connection.execute("PRAGMA busy_timeout=10000")
        # Rekeying rewrites every page, which SQLCipher does outside WAL mode: the log is
        # folded in and switched off for the change, then back on.
        mode = connection.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
        if mode.lower() != "delete":
            raise PhonetreeError("the database is in use (is phonetree run still running?); stop it and try again.")
        if old_key:
            connection.execute(f"PRAGMA rekey={_quote(new_key)}")
            connection.execute("PRAGMA journal_mode=WAL")
        else:
            _encrypt_copy(connection, path, new_key)
    except sqlcipher.OperationalError as error:
        raise PhonetreeError(f"could not change the key ({error}); stop phonetree run and try again.")
    finally:
        connection.close()
    check = sqlcipher.connect(str(path))  # a fresh connection: the new key opens it
    try:
        check.execute("PRAGMA cipher_log_level=NONE")
        check.execute(f"PRAGMA key={_quote(new_key)}")
        check.execute("SELECT count(*) FROM sqlite_master").fetchone()
    finally:
        check.close()


def _encrypt_copy(connection: Any, path: Path, key: str) -> None:
    """A plain database, copied page by page into an encrypted file beside it (SQLCipher's
    sqlcipher_export), which then takes its place."""
    from phonetree.files import create_private

    target = path.with_name(path.name + ".encrypting")
    target.unlink(missing_ok=True)
    create_private(target)
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    connection.execute(f"ATTACH DATABASE {_quote(str(target))} AS encrypted KEY {_quote(key)}")
    connection.execute("SELECT sqlcipher_export('encrypted')")
    connection.execute(f"PRAGMA encrypted.user_version={int(version)}")
    connection.execute("DETACH DATABASE encrypted")
    os.replace(target, path)


def _path(url: str) -> Path:
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        raise PhonetreeError("db rekey works on an encrypted SQLite database file; "
                             f"{parsed.drivername} is not one.")
    path = Path(parsed.database)
    if not path.exists():
        raise PhonetreeError(f"there is no database at {path}.")
    return path


def key_from_env() -> str | None:
    return os.environ.get(KEY_VARIABLE) or None
