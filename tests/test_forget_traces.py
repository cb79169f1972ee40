"""`member forget` leaves no trace: not in other rows (events, messages, replies, notes), not in
the SQLite file's bytes, its -wal or -shm, after the command and after `run` stops."""
from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from freezegun import freeze_time
from sqlalchemy import MetaData, select
from sqlalchemy.orm import Session

from cli import cli
from phonetree.config import Settings
from phonetree.db import dispose_all, get_engine
from phonetree import delivery
from phonetree.gateways.base import BAD_NUMBER
from phonetree.gateways.outbox import OutboxGateway
from phonetree.models import Message
from schedules.engine import tick
from schedules.runner import Runner
from tests.conftest import JO, MARGARET, VERA, utc

ZEB = "07911 100006"
REPLY = "my budgie escaped through the skylight"
TRACES = ["Zebediah", "+447911100006", "447911100006", "07911 100006", "07911100006", "7911100006",
          "07911 ***006", "budgie", "skylight"]


def history(run: "callable", url: str) -> None:  # type: ignore[valid-type]
    run("group", "add", "Oakfield", "--timezone", "Europe/London")
    run("member", "add", "Oakfield", "Vera", "--phone", VERA, "--role", "carer")
    run("member", "add", "Oakfield", "Zebediah", "--phone", ZEB)
    run("member", "add", "Oakfield", "Jo", "--phone", JO)
    run("member", "add", "Oakfield", "Margaret", "--phone", MARGARET, "--role", "organiser")
    with freeze_time("2026-11-30 12:00:00"):
        run("checkin", "add", "Oakfield", "Vera", "--at", "09:00", "--window", "30m", "--escalate-to", "Zebediah,Jo")
        run("rota", "add", "Oakfield", "calls", "--kind", "ring", "--on", "tue", "--at", "18:00",
            "--members", "Vera,Zebediah,Jo")
    engine, gateway = get_engine(url), OutboxGateway()
    tick(engine, gateway, utc(2026, 12, 1, 9, 0))
    tick(engine, gateway, utc(2026, 12, 1, 9, 31))  # Zebediah is asked to ring Vera: "asked Zebediah"
    with freeze_time("2026-12-01 09:35:00"):
        run("receive", "--from", ZEB, REPLY)  # forwarded to Margaret with his number
    with freeze_time("2026-12-01 09:40:00"):
        run("receive", "--from", VERA, "OK")  # Zebediah is stood down, by name
    with freeze_time("2026-12-01 09:45:00"):
        run("receive", "--from", VERA, "tell Zebediah thanks, 07911 100006 is his")
    tick(engine, gateway, utc(2026, 12, 1, 18, 0))  # the rota round: calls naming him
    with freeze_time("2026-12-01 18:05:00"):
        run("receive", "--from", ZEB, "DONE")


def all_text(url: str) -> str:
    engine = get_engine(url)
    meta = MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        return "\n".join(repr(tuple(row)) for table in meta.tables.values() for row in conn.execute(table.select()))


def test_forget_scrubs_every_row_that_mentions_them(db_url, ok):
    history(ok, db_url)
    before = all_text(db_url)
    assert "Zebediah" in before and "budgie" in before and "+447911100006" in before
    with freeze_time("2026-12-01 19:00:00"):
        ok("member", "forget", "Oakfield", "Zebediah", "--yes")
    after = all_text(db_url)
    assert [t for t in TRACES if t in after] == []
    # Other people's history stays: Vera's reply is still there to read, without him in it.
    assert "tell [forgotten] thanks, [forgotten] is his" in after
    assert "Vera" in after and "Jo" in after


def file_bytes(db: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in db.parent.iterdir() if p.name.startswith(db.name)}


def traces_in(files: dict[str, bytes]) -> dict[str, list[str]]:
    found = {name: [t for t in TRACES if t.encode() in data] for name, data in files.items()}
    return {name: hits for name, hits in found.items() if hits}


def test_forget_leaves_nothing_in_the_files(tmp_path: Path, ok_at) -> None:
    db = tmp_path / "phonetree.db"
    url = f"sqlite:///{db}"
    run = ok_at(url)
    history(run, url)
    assert traces_in(file_bytes(db))  # the test can see them before
    with freeze_time("2026-12-01 19:00:00"):
        run("member", "forget", "Oakfield", "Zebediah", "--yes")
    # Straight after the command, with the engine still open (as a running service would have it).
    assert traces_in(file_bytes(db)) == {}
    dispose_all()
    assert traces_in(file_bytes(db)) == {}


def test_group_remove_leaves_nothing_in_the_files(tmp_path: Path, ok_at) -> None:
    db = tmp_path / "phonetree.db"
    url = f"sqlite:///{db}"
    run = ok_at(url)
    history(run, url)
    with freeze_time("2026-12-01 19:00:00"):
        run("group", "remove", "Oakfield", "--yes")
    assert traces_in(file_bytes(db)) == {}


def test_run_checkpoints_the_wal_when_it_stops(tmp_path: Path) -> None:
    db = tmp_path / "phonetree.db"
    url = f"sqlite:///{db}"
    result = CliRunner().invoke(cli, ["--db", url, "group", "add", "Oakfield", "--timezone", "Europe/London"])
    assert result.exit_code == 0
    engine = get_engine(url)
    runner = Runner(engine, OutboxGateway(), Settings(database_url=url, tick_seconds=3600), port=0)
    runner.start()
    try:
        CliRunner().invoke(cli, ["--db", url, "member", "add", "Oakfield", "Vera", "--phone", VERA])
        assert Path(f"{db}-wal").stat().st_size > 0
    finally:
        runner.stop()
    assert Path(f"{db}-wal").stat().st_size == 0
    dispose_all()


def test_sqlite_connections_use_secure_delete(tmp_path: Path) -> None:
    engine = get_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA secure_delete").scalar() == 1
    dispose_all()


def test_forget_drops_the_organisers_notice_about_their_failed_number(db_url, ok):
    """A notice to the organisers that Zebediah's number failed is about him, like a forwarded
    reply of his: forgetting him takes it away whole, check-in or not (a rota call has none),
    rather than sending Margaret a text about "[forgotten]" on "[forgotten]"."""
    history(ok, db_url)
    engine = get_engine(db_url)
    with Session(engine) as session, session.begin():
        call = session.scalars(select(Message).where(
            Message.to_phone == "+447911100006", Message.kind == "call_prompt")).first()
        assert call is not None and call.checkin_id is None
        delivery.undeliverable(session, utc(2026, 12, 1, 18, 10), call, BAD_NUMBER)
    with Session(engine) as session:
        notices = select(Message).where(Message.template == "undeliverable")
        assert [m.to_phone for m in session.scalars(notices)] == ["+447911100004"]  # Margaret
    with freeze_time("2026-12-01 19:00:00"):
        ok("member", "forget", "Oakfield", "Zebediah", "--yes")
    with Session(engine) as session:
        assert session.scalars(notices).all() == []
