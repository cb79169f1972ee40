"""Prepared statements for the hottest paths: a Core statement compiled once per dialect and run
straight on the DBAPI cursor of a SQLAlchemy connection, inside that connection's transaction.

Why: SQLAlchemy spends about 50 µs on every execution (cache key, parameter and result set-up)
where SQLite itself spends about 3. A webhook answering an OK runs five statements, and the
dispatcher marks every message that leaves with two; at a morning's volume that overhead was most
of the cost of both. Only those few statements use this; everything else goes through SQLAlchemy.

The SQL is SQLAlchemy's own compilation, parameters are converted by the column types' own bind
processors (so a datetime is stored exactly as the ORM stores it), and driver errors are raised as
SQLAlchemy's (so `except OperationalError` still works). Rows come back as the driver gives them,
without result processing: select only integers and strings.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence, cast

from sqlalchemy import ColumnElement, Connection, Engine, or_
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from phonetree.db import writer_lock


@dataclass(frozen=True)
class Transaction:
    """A transaction straight on a pooled DBAPI connection (see `transaction`). Prepared
    statements run on it just as on a SQLAlchemy `Connection`."""

    dialect: Dialect
    connection: PoolProxiedConnection


@contextmanager
def transaction(engine: Engine) -> Iterator[Transaction]:
    """A short write transaction for prepared statements only, without SQLAlchemy's
    `Connection` (whose begin, commit and pool round trip cost ~100 µs, more than the work on
    the dispatcher's hot path). Commits on success, rolls back on any error; takes the same
    writer lock and, on SQLite, the same BEGIN IMMEDIATE as `db.connection_scope`.
    (`phonetree.work.unit_of_work` is the same, for work that may also need the ORM.)"""
    with writer_lock(engine):
        dbapi = engine.raw_connection()
        try:
            bare = begin(engine, dbapi)
            yield bare
            finish(bare, commit=True)
        except BaseException:
            dbapi.rollback()
            raise
        finally:
            dbapi.close()  # back to the pool


def begin(engine: Engine, dbapi: PoolProxiedConnection) -> Transaction:
    """Start a transaction on a pooled DBAPI connection (on SQLite taking the write lock now,
    as db.py's BEGIN IMMEDIATE does for SQLAlchemy's own)."""
    driver = dbapi.driver_connection
    if engine.dialect.name == "sqlite" and driver is not None:
        _call(engine.dialect, "BEGIN IMMEDIATE", lambda: driver.execute("BEGIN IMMEDIATE"))
    return Transaction(engine.dialect, dbapi)


def finish(bare: Transaction, commit: bool) -> None:
    if commit:
        _call(bare.dialect, "COMMIT", bare.connection.commit)
    else:
        bare.connection.rollback()


@contextmanager
def read(engine: Engine) -> Iterator[Transaction]:
    """A read straight on a pooled DBAPI connection, for prepared SELECTs only: no writer lock
    and, on SQLite, no BEGIN IMMEDIATE (which a SQLAlchemy `Connection` would issue there,
    taking the database's one write lock to read). On SQLite (autocommit) each statement is
    its own snapshot; on PostgreSQL the pool rolls the implicit transaction back on return."""
    dbapi = engine.raw_connection()
    try:
        yield Transaction(engine.dialect, dbapi)
    finally:
        dbapi.close()  # back to the pool


def _call(dialect: Dialect, what: str, call: Callable[[], Any]) -> Any:
    """Run a driver call, raising its errors as SQLAlchemy's (`except OperationalError` works)."""
    try:
        return call()
    except dialect.loaded_dbapi.Error as error:
        raise DBAPIError.instance(what, None, error, dialect.loaded_dbapi.Error) from error


def one_of(column: ColumnElement[Any] | QueryableAttribute[Any], values: Sequence[Any]) -> ColumnElement[bool]:
    """`column IN (constants)` spelt as ORs, which compiles to fixed SQL (SQLite reads it as IN)."""
    return or_(*(column == value for value in values))


@dataclass(frozen=True)
class _Compiled:
    sql: str
    order: tuple[str, ...] | None  # parameter names in order, for a positional paramstyle
    defaults: dict[str, Any]  # values written into the statement (`.values(state="sent")`)
    processors: dict[str, Callable[[Any], Any]]


class Prepared:
    """`Prepared(statement)`, or `Prepared(lambda dialect_name: statement)` when the statement
    differs by dialect (an INSERT .. ON CONFLICT). `rows()` for what it returns, `rowcount()` for
    how many rows it changed."""

    def __init__(self, statement: ClauseElement | Callable[[str], ClauseElement],
                 columns: Sequence[str] | None = None) -> None:
        """`columns`: for a bare `insert(table)`, the columns given values (bind names = column
        names, as in `connection.execute(insert(table), {...})`)."""
        self._build = (lambda _name: statement) if isinstance(statement, ClauseElement) else statement
        self._columns = list(columns) if columns is not None else None
        self._by_dialect: dict[str, _Compiled] = {}

    def _compiled(self, dialect: Dialect) -> _Compiled:
        found = self._by_dialect.get(dialect.name)
        if found is None:
            # A DML statement compiles to a SQLCompiler, which has the attributes read below.
            compiled = cast(SQLCompiler, self._build(dialect.name).compile(dialect=dialect, column_keys=self._columns))
            if "POSTCOMPILE" in compiled.string:
                # An IN list is expanded per execution; spell it out as ORs of constants instead.
                raise ValueError(f"can't prepare a statement with an expanding IN: {compiled.string}")
            if compiled.insert_prefetch or compiled.update_prefetch:
                # Python-side column defaults are computed per execution by SQLAlchemy.
                raise ValueError(f"give every column a value to prepare: {compiled.string}")
            names = compiled.bind_names  # each bind parameter and the name it is rendered with
            found = _Compiled(
                sql=compiled.string,
                order=tuple(compiled.positiontup) if compiled.positional and compiled.positiontup else None,
                defaults={name: bind.value for bind, name in names.items() if not bind.required},
                processors={name: processor for bind, name in names.items()
                            if (processor := bind.type.dialect_impl(dialect).bind_processor(dialect))},
            )
            self._by_dialect[dialect.name] = found
        return found

    def rows(self, connection: Connection | Transaction, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        cursor = self._execute(connection, params)
        try:
            return cursor.fetchall()
        finally:
            cursor.close()

    def rowcount(self, connection: Connection | Transaction, params: dict[str, Any] | None = None) -> int:
        cursor = self._execute(connection, params)
        try:
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def _execute(self, connection: Connection | Transaction, params: dict[str, Any] | None) -> Any:
        compiled = self._compiled(connection.dialect)
        values = {**compiled.defaults, **(params or {})}
        for name, processor in compiled.processors.items():
            values[name] = processor(values[name])
        arguments: Sequence[Any] | dict[str, Any] = (
            tuple(values[name] for name in compiled.order) if compiled.order is not None else values)
        cursor = connection.connection.cursor()
        try:
            _call(connection.dialect, compiled.sql, lambda: cursor.execute(compiled.sql, arguments))
        except BaseException:
            cursor.close()
            raise
        return cursor
