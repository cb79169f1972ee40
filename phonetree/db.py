"""The engine and sessions. SQLite gets WAL, a busy timeout and foreign keys; the schema is
created or upgraded by Alembic the first time a database is used."""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ContextManager, Iterator, cast

from sqlalchemy import URL, Connection, CursorResult, Engine, Result, create_engine, event, inspect, text
from sqlalchemy.exc import DatabaseError, DisconnectionError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

from phonetree.encryption import encrypted_url, explain_open_error

if TYPE_CHECKING:
    from alembic.config import Config
from phonetree.errors import PhonetreeError
from phonetree.files import prepare_sqlite_file

MIGRATIONS = Path(__file__).parent / "migrations"

_engines: dict[str, Engine] = {}
_sessionmakers: dict[Engine, sessionmaker[Session]] = {}
# SQLite has one writer at a time and every session here takes the write lock at BEGIN. Threads
# of one process (webhook threads, the ticker, the dispatcher) queue for it on this lock, in
# order, instead of in SQLite's busy handler, which polls with sleeps of up to 100 ms and gives
# long tails under load. Other processes still meet the busy timeout. Reentrant, so a nested
# session in the same thread behaves as it did without it.
_write_locks: dict[Engine, threading.RLock] = {}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    if type(dbapi_connection).__module__.startswith("sqlcipher3"):
        # SQLCipher writes its own lines to stderr on a wrong key; the organiser gets one Error line.
        cursor.execute("PRAGMA cipher_log_level=NONE")
    # WAL lets the webhook server read while the ticker writes; busy_timeout waits out a
    # writer instead of failing with "database is locked".
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Deleted and overwritten content is zeroed in the file, not left in free space: a forgotten
    # member's number must not be readable from a copy of the database.
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def normalise_url(url: str) -> str:
    """`postgresql://` and `postgres://` (as Heroku-style hosts hand them out) mean psycopg 3
    here, the driver phonetree installs, not SQLAlchemy's default psycopg2."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def make_engine(url: str, key: str | None = None) -> Engine:
    """`key`: open the SQLite file with SQLCipher under that key (see phonetree.encryption)."""
    url = normalise_url(url)
    if key:
        target: str | URL = encrypted_url(url, key)
        # The pysqlcipher dialect defaults to one connection per thread, at most five threads:
        # phonetree's webhook and sending threads need a real pool. Each new connection costs
        # SQLCipher's key derivation (PBKDF2, about 0.3-0.7 s measured here), so enough are kept
        # for every thread of `run` that QueuePool's default five would otherwise open and close.
        options: dict[str, Any] = {"poolclass": QueuePool, "pool_size": 16, "max_overflow": 16}
    elif url.startswith("sqlite"):
        target, options = url, {}
    if url.startswith("sqlite"):
        prepare_sqlite_file(url)
        engine = create_engine(target, connect_args={"check_same_thread": False, "timeout": 10},
                               hide_parameters=True, **options)
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling defers BEGIN; take the write lock at BEGIN
        # instead so two processes ticking at once serialise rather than deadlock.
        @event.listens_for(engine, "begin")
        def _begin_immediate(conn: Connection) -> None:
            # Unless the transaction is open already: a bare one (phonetree.work) that has
            # grown a Session over the same DBAPI connection.
            driver = conn.connection.driver_connection
            if driver is None or not driver.in_transaction:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        @event.listens_for(engine, "connect")
        def _no_autobegin(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None
    else:
        # hide_parameters: an error in a log must not carry the numbers and texts it was writing.
        engine = create_engine(url, hide_parameters=True)
        _ping_when_idle(engine)
    return engine


# A pooled PostgreSQL connection is pinged (one round trip) before use only when it has sat
# idle this long, as the server may have closed it meanwhile (a restart, an idle timeout).
# pool_pre_ping's ping on every checkout was one round trip in seven of a webhook's OK
# (issue 14). A connection that dies while in steady use fails its statement instead, as it
# could after a ping too, and every caller survives that: a webhook journals the request, a
# tick or a send pass tries again.
IDLE_PING_SECONDS = 10.0


def _ping_when_idle(engine: Engine) -> None:
    @event.listens_for(engine.pool, "checkin")
    def _returned(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine.pool, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get("returned_at")
        if returned is None or time.monotonic() - returned < IDLE_PING_SECONDS:
            return  # new, or in use moments ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            # The pool replaces this connection with a new one and checks that out instead.
            raise DisconnectionError("idle connection closed by the server") from error


def alembic_config(url: str) -> "Config":
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _head_revision(url: str) -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


def _current_revision(engine: Engine) -> str | None:
    if not inspect(engine).has_table("alembic_version"):
        return None
    with engine.connect() as conn:
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration (a no-op when it is already there)."""
    url = engine.url.render_as_string(hide_password=False)
    if _current_revision(engine) == _head_revision(url):
        return
    from alembic import command

    config = alembic_config(url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def get_engine(url: str, key: str | None = None) -> Engine:
    """One engine per URL (and key) per process, migrated on first use."""
    url = normalise_url(url)
    cache = url if not key else f"{url}#encrypted:{id(key)}:{hash(key)}"
    engine = _engines.get(cache)
    if engine is None:
        engine = make_engine(url, key)
        try:
            upgrade(engine)
        except DatabaseError as error:
            engine.dispose()
            explained = explain_open_error(error, key) if url.startswith("sqlite") else None
            if explained:
                raise PhonetreeError(f"can't open the database: {explained}") from None
            raise
        _engines[cache] = engine
    return engine


def checkpoint(engine: Engine) -> bool:
    """Copy SQLite's write-ahead log into the database and truncate it to nothing, so pages
    with erased data don't linger in the -wal file (after `member forget`, and when `run`
    stops). A no-op elsewhere. False when a reader in another process kept it from finishing
    (it is tried again at the next forget or shutdown)."""
    if engine.dialect.name != "sqlite":
        return True
    # On the driver's connection: SQLAlchemy's would BEGIN first, and a checkpoint can't run
    # inside a transaction.
    with writer_lock(engine):
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            busy, _, _ = cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            cursor.close()
        finally:
            raw.close()
    return not busy


def dispose_all() -> None:
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()
    _sessionmakers.clear()
    _write_locks.clear()


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A unit of work: commit on success, roll back on any error."""
    factory = _sessionmakers.get(engine)
    if factory is None:
        factory = _sessionmakers[engine] = sessionmaker(engine, expire_on_commit=False)
    with writer_lock(engine):
        session = factory()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()


@contextmanager
def connection_scope(engine: Engine) -> Iterator[Connection]:
    """A unit of work in SQLAlchemy Core, for the few hot paths where the ORM's bookkeeping
    costs more than the work itself: commit on success, roll back on any error."""
    with writer_lock(engine), engine.begin() as connection:
        yield connection


# Between the chunks of a long job on SQLite, the write lock is left free this long, so a writer
# waiting for it gets in instead of waiting for the whole job (issue 14). A webhook thread queued
# on the in-process lock needs a moment; another process's write waits in SQLite's busy handler,
# which tries again after sleeps of 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50 and then 100 ms each:
# a gap longer than its longest sleep always holds one of its tries. (At 0.05 s, half its tries
# missed the gap and it waited 13.6 s behind the 25k slot.)
WRITER_GAP = 0.12


def let_others_write(engine: Engine) -> None:
    """Called between chunks of a job that holds the write lock chunk after chunk."""
    if engine.dialect.name == "sqlite":
        time.sleep(WRITER_GAP)


def writer_lock(engine: Engine) -> ContextManager[object]:
    """The in-process queue for SQLite's one writer (a no-op elsewhere): see `_write_locks`."""
    if engine.dialect.name != "sqlite":
        return nullcontext()
    lock = _write_locks.get(engine)
    if lock is None:
        lock = _write_locks.setdefault(engine, threading.RLock())
    return lock


def rowcount(result: Result[Any]) -> int:
    """The rows an UPDATE or DELETE matched: `Session.execute` types its result as a plain
    `Result`, but a DML statement's is a `CursorResult`, which has the count."""
    return cast(CursorResult[Any], result).rowcount


def insert_for(dialect: str) -> Callable[..., Any]:
    """The dialect's own `insert`, which has `on_conflict_do_nothing`."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert
        return postgresql_insert
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert
        return sqlite_insert
    raise RuntimeError(f"unsupported database {dialect}")  # pragma: no cover - only the two we support


def insert_ignoring_duplicates(session: Session, model: type, rows: list[dict]) -> int:
    """INSERT rows, silently skipping any that collide with a unique key: how every promise is
    made idempotent (two ticks at the same instant insert each row once). Returns rows inserted."""
    if not rows:
        return 0
    table = model.__table__  # type: ignore[attr-defined]
    # A key that is not a column would be dropped without a word (a misspelt "stat" leaves the
    # column to its default): say so instead.
    unknown = set().union(*rows) - set(table.c.keys())
    if unknown:
        raise ValueError(f"not columns of {table.name}: {', '.join(sorted(unknown))}")
    connection = session.connection()
    dialect_insert = insert_for(connection.dialect.name)
    # RETURNING counts what was really inserted: executemany's rowcount is unreliable across
    # drivers once SQLAlchemy batches rows into multi-VALUES statements.
    statement = dialect_insert(table).on_conflict_do_nothing().returning(table.c.id)
    return len(connection.execute(statement, rows).all())
