"""Shared fixtures: a fresh SQLite database per test, the CLI, and a small group."""
from __future__ import annotations

import atexit
import itertools
import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import freezegun
import hypothesis
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine, MetaData, create_engine, select, text

from cli import cli
from phonetree.config import Settings
from phonetree.db import dispose_all, get_engine, session_scope
from phonetree.gateways.base import Gateway
from phonetree.gateways.outbox import OutboxGateway
from phonetree.gateways.twilio import TwilioGateway
from phonetree.models import Message
from schedules.engine import TickReport, tick
from tests.pg import PostgresServer
from tests.twilio_standin import TwilioStandIn

# freezegun's datetimes lose `fold`: an APScheduler trigger handed them (phonetree/recurrence.py)
# loops for ever over the hour the clocks go back (25 October 2026 in London), whenever a frozen
# test's window holds that hour. Our code hands the triggers the time explicitly, so they lose
# nothing by keeping the real clock: every test's freeze_time leaves APScheduler alone. Set at
# import, before any test module builds a freeze_time (each reads the list when it is made).
freezegun.configure(extend_ignore_list=["apscheduler"])

# Hypothesis: in CI the same examples every run (derandomized, no example database), so a red
# run is reproducible; HYPOTHESIS_PROFILE=explore draws fresh random examples, ten times as
# many, keeps failing ones in .hypothesis/ to replay, and prints how to reproduce one.
# Registered at import, before any test module builds its settings (they inherit the profile).
hypothesis.settings.register_profile("ci", derandomize=True, database=None)
hypothesis.settings.register_profile("explore", derandomize=False, print_blob=True)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
hypothesis.settings.load_profile(PROFILE)


def examples(ci: int) -> int:
    """How many examples a property gets: `ci` as written, ten times that when exploring."""
    return ci * 10 if PROFILE == "explore" else ci


# Test numbers: real-looking UK mobiles and a Lincoln landline (07700 900xxx is invalid).
VERA, JO, SAM, MARGARET, PAT = "07911 100001", "07911 100002", "07911 100003", "07911 100004", "07911 100005"
LANDLINE = "01522 500001"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


# What says how the tests run, not how phonetree does: kept when a test starts.
_TEST_SWITCHES = {"PHONETREE_TEST_POSTGRES_URL", "PHONETREE_REQUIRE_POSTGRES", "PHONETREE_REQUIRE_CHROMIUM",
                  "PHONETREE_REPORT_SCREENSHOT"}


@pytest.fixture(autouse=True)
def _no_settings_from_the_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts from phonetree's defaults: a developer's own PHONETREE_DATABASE_URL or
    PHONETREE_DATABASE_KEY (or Twilio credentials) in the shell would otherwise point tests at
    their database, or encrypt the tests' ones, and fail them for no fault of the code."""
    for name in list(os.environ):
        if name.startswith(("PHONETREE_", "TWILIO_")) and name not in _TEST_SWITCHES:
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str | None]:
    """The base URL of a PostgreSQL server for this test run, or None if there is none."""
    given = os.environ.get("PHONETREE_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    server = PostgresServer()
    if not server.available:
        if os.environ.get("PHONETREE_REQUIRE_POSTGRES"):
            raise RuntimeError("PostgreSQL is required (PHONETREE_REQUIRE_POSTGRES) but pg_ctl is not installed")
        yield None
        return
    try:
        yield server.start()
    finally:
        server.stop()


_databases = itertools.count(1)


_templates: dict[str, str] = {}


def fresh_postgres_database(base_url: str) -> str:
    """A new database on the test server for each test, copied from one migrated once
    (CREATE DATABASE ... TEMPLATE is far quicker than running the migrations every time)."""
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        if base_url not in _templates:
            template = f"phonetree_template_{os.getpid()}"
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{template}"'))
            url = base_url.rsplit("/", 1)[0] + f"/{template}"
            get_engine(url)  # migrates
            dispose_all()
            _templates[base_url] = template
        name = f"t{os.getpid()}_{next(_databases)}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{_templates[base_url]}"'))
    finally:
        admin.dispose()
    return base_url.rsplit("/", 1)[0] + f"/{name}"


_sqlite_template: list[Path] = []


def fresh_sqlite_database(path: Path) -> str:
    """A new SQLite database at `path`, copied from one migrated once per process: running
    the migrations took a quarter of a second per test, a fifth of the suite's time (and of
    every mutant's). The copy is private (0600) like a database phonetree makes itself."""
    if not _sqlite_template:
        import tempfile

        directory = tempfile.mkdtemp(prefix="phonetree-template-")
        atexit.register(shutil.rmtree, directory, True)
        template = Path(directory) / "template.db"
        get_engine(f"sqlite:///{template}")  # migrates
        dispose_all()  # closes it, so the write-ahead log is folded into the file copied
        _sqlite_template.append(template)
    shutil.copyfile(_sqlite_template[0], path)
    path.chmod(0o600)
    return f"sqlite:///{path}"


def drop_postgres_database(base_url: str, url: str) -> None:
    """Drop a test's database once it is done: a thousand of them left for the end cost
    gigabytes and minutes of deleting files. Best effort: a failure here is no test's failure."""
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    except Exception:  # noqa: BLE001 - cleanup only; the server goes at the end anyway
        pass
    finally:
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each test that touches the database runs on SQLite and on a real PostgreSQL."""
    if request.param == "sqlite":
        yield fresh_sqlite_database(tmp_path / "phonetree.db")
        dispose_all()
        return
    base = request.getfixturevalue("postgres_server")
    if base is None:
        pytest.skip("PostgreSQL is not installed here (.ci/run installs it)")
    url = fresh_postgres_database(base)
    yield url
    dispose_all()
    drop_postgres_database(base, url)


@pytest.fixture
def engine(db_url: str) -> Engine:
    return get_engine(db_url)


@pytest.fixture
def run_cli(db_url: str) -> Callable[..., Result]:
    def invoke(*args: str, **kwargs: Any) -> Result:
        return CliRunner().invoke(cli, ["--db", db_url, *args], catch_exceptions=False, **kwargs)

    return invoke


@pytest.fixture
def ok_at() -> Iterator[Callable[[str], Callable[..., str]]]:
    """`ok_at(url)("group", "list")`: a CLI command that must succeed, on a database of the
    test's own choosing (a file a worker process shares), returning its stdout."""
    def bind(url: str) -> Callable[..., str]:
        def run(*args: str) -> str:
            result = CliRunner().invoke(cli, ["--db", url, *args], catch_exceptions=False)
            assert result.exit_code == 0, result.output
            return result.stdout
        return run

    yield bind
    dispose_all()


@pytest.fixture
def ok(run_cli: Callable[..., Result]) -> Callable[..., Result]:
    """Run a CLI command that must succeed."""
    def invoke(*args: str) -> Result:
        result = run_cli(*args)
        assert result.exit_code == 0, result.output + result.stderr
        return result

    return invoke


@pytest.fixture
def standin(request: pytest.FixtureRequest) -> Iterator[TwilioStandIn]:
    """The local Twilio stand-in (tests/twilio_standin.py), for the real twilio client. It signs
    its callbacks for the test module's `PUBLIC` URL when the module has one."""
    public = getattr(request.module, "PUBLIC", STANDIN_PUBLIC)
    with TwilioStandIn(public_url=public) as twilio:
        yield twilio


STANDIN_PUBLIC = "https://tree.example.org"


@pytest.fixture
def gateway() -> Gateway:
    """What `ticker` sends through: the outbox, unless a module asks for `either_gateway`."""
    return OutboxGateway()


@pytest.fixture(params=["outbox", "standin"])
def either_gateway(request: pytest.FixtureRequest) -> Gateway:
    """The outbox gateway, then the real twilio client against the stand-in: a module whose
    flows must hold over both overrides `gateway` with this (contract tests over backends)."""
    if request.param == "outbox":
        return OutboxGateway()
    twilio: TwilioStandIn = request.getfixturevalue("standin")
    return TwilioGateway.from_settings(Settings(
        gateway="twilio", public_url=twilio.public_url, twilio_account_sid=twilio.account_sid,
        twilio_auth_token=twilio.auth_token, twilio_from_number="+441522000000",
        twilio_api_base_url=twilio.base_url))


@pytest.fixture
def ticker(engine: Engine, gateway: Gateway) -> Callable[[datetime], TickReport]:
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


# When the shared groups are made: before every frozen moment of the tests that use them (the
# day before, 2026-11-30 12:00, is when their check-ins are added). Made at the real time, the
# group would be younger than its own plans once the wall clock passed that day.
MADE = "2026-11-30 09:00:00"


@pytest.fixture
def oakfield(ok: Callable[..., Result]) -> str:
    """A rural group: Vera checks in at 09:00 daily; Jo then Sam follow up; Margaret organises."""
    with freezegun.freeze_time(MADE):
        ok("group", "add", "Oakfield", "--timezone", "Europe/London")
        ok("member", "add", "Oakfield", "Vera", "--phone", VERA, "--role", "carer")
        ok("member", "add", "Oakfield", "Jo", "--phone", JO)
        ok("member", "add", "Oakfield", "Sam", "--phone", SAM)
        ok("member", "add", "Oakfield", "Margaret", "--phone", MARGARET, "--role", "organiser")
    return "Oakfield"
