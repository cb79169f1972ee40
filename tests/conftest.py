"""Shared fixtures: a fresh SQLite database per test, the CLI, and a small group."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine, MetaData, select

from cli import cli
from phonetree.db import dispose_all, get_engine, session_scope
from phonetree.gateways.outbox import OutboxGateway
from phonetree.models import Message
from schedules.engine import TickReport, tick

# Test numbers: real-looking UK mobiles and a Lincoln landline (07700 900xxx is invalid).
VERA, JO, SAM, MARGARET, PAT = "07911 100001", "07911 100002", "07911 100003", "07911 100004", "07911 100005"
LANDLINE = "01522 500001"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


@pytest.fixture
def db_url(tmp_path: Path) -> Iterator[str]:
    yield f"sqlite:///{tmp_path / 'phonetree.db'}"
    dispose_all()


@pytest.fixture
def engine(db_url: str) -> Engine:
    return get_engine(db_url)


@pytest.fixture
def run_cli(db_url: str) -> Callable[..., Result]:
    def invoke(*args: str, **kwargs: Any) -> Result:
        return CliRunner().invoke(cli, ["--db", db_url, *args], catch_exceptions=False, **kwargs)

    return invoke


@pytest.fixture
def ok(run_cli: Callable[..., Result]) -> Callable[..., Result]:
    """Run a CLI command that must succeed."""
    def invoke(*args: str) -> Result:
        result = run_cli(*args)
        assert result.exit_code == 0, result.output + result.stderr
        return result

    return invoke


@pytest.fixture
def ticker(engine: Engine) -> Callable[[datetime], TickReport]:
    gateway = OutboxGateway()
    return lambda now: tick(engine, gateway, now)


def sent(engine: Engine, **where: Any) -> list[Message]:
    """Messages recorded so far, oldest first, optionally filtered by column values."""
    with session_scope(engine) as session:
        query = select(Message).order_by(Message.id)
        for column, value in where.items():
            query = query.where(getattr(Message, column) == value)
        return list(session.scalars(query))


def snapshot(engine: Engine) -> dict[str, list[tuple]]:
    """Every row of every table: to prove a command changed nothing."""
    meta = MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        return {name: sorted(map(tuple, conn.execute(table.select()).all()), key=repr)
                for name, table in meta.tables.items()}


def outbox_json(ok: Callable[..., Result]) -> list[dict[str, Any]]:
    return json.loads(ok("outbox", "--json").stdout)


@pytest.fixture
def oakfield(ok: Callable[..., Result]) -> str:
    """A rural group: Vera checks in at 09:00 daily; Jo then Sam follow up; Margaret organises."""
    ok("group", "add", "Oakfield", "--timezone", "Europe/London")
    ok("member", "add", "Oakfield", "Vera", "--phone", VERA, "--role", "carer")
    ok("member", "add", "Oakfield", "Jo", "--phone", JO)
    ok("member", "add", "Oakfield", "Sam", "--phone", SAM)
    ok("member", "add", "Oakfield", "Margaret", "--phone", MARGARET, "--role", "organiser")
    return "Oakfield"
