"""A verified reply is durable before phonetree answers 200 (issue 11 #4): while the database
can't be written, webhooks are journalled (phonetree.journal), answered 200, and applied in order
once it can, through the same handlers, with no second effect."""
from __future__ import annotations

import http.client
import os
import stat
import threading
from pathlib import Path
from typing import Iterator
from urllib.parse import urlencode

import pytest
from freezegun import freeze_time
from sqlalchemy import Engine, event, func, select
from twilio.request_validator import RequestValidator

from phonetree.config import Settings
from phonetree.db import session_scope
from phonetree.gateways.outbox import OutboxGateway
from phonetree.journal import Entry, Journal, decode, encode, location
from phonetree.models import CheckIn, Inbound
from phonetree.web import Params
from schedules.engine import tick
from schedules.runner import Runner
from tests.conftest import sent, snapshot, utc
from tests.test_web import ACCOUNT, INBOUND, PUBLIC, TOKEN

VERA, JO, SAM, MARGARET = "+447911100001", "+447911100002", "+447911100003", "+447911100004"


# ---------------------------------------------------------------- the file itself


def test_entries_round_trip_and_a_torn_or_damaged_line_is_skipped(tmp_path: Path):
    journal = Journal(tmp_path / "x.webhook-journal")
    entries = [Entry("/twilio/sms", "", f"Body=OK&n={n}", "2026-12-01T09:00:00+00:00") for n in range(3)]
    for entry in entries:
        journal.append(entry)
    assert stat.S_IMODE(os.stat(journal.path).st_mode) == 0o600
    with open(journal.path, "ab") as f:
        f.write(encode(Entry("/twilio/sms", "", "Body=HELP", "t"))[:-9])  # torn: no end, no checksum
    damaged = encode(entries[0]).replace(b"OK", b"NO")
    lines = journal.path.read_bytes().splitlines(keepends=True)
    journal.path.write_bytes(lines[0] + damaged + b"".join(lines[1:]))
    assert decode(damaged) is None and decode(encode(entries[0])[:-1]) is None
    applied: list[Entry] = []
    result = journal.replay(applied.append, stop_on=(RuntimeError,))
    assert applied == entries and (result.applied, result.skipped) == (3, 2)
    assert not journal.pending() and not journal.replaying.exists()


def test_a_replay_stopped_by_the_database_resumes_where_it_was_and_keeps_order(tmp_path: Path):
    journal = Journal(tmp_path / "x.webhook-journal")
    for n in range(4):
        journal.append(Entry("/twilio/sms", "", f"n={n}", "t"))
    seen: list[str] = []

    def fail_at_third(entry: Entry) -> None:
        if entry.body == "n=2":
            raise RuntimeError("database still down")
        seen.append(entry.body)

    assert journal.replay(fail_at_third, stop_on=(RuntimeError,)).stopped
    journal.append(Entry("/twilio/sms", "", "n=4", "t"))  # arrives while the replay waits
    seen.clear()
    journal.replay(lambda e: seen.append(e.body), stop_on=(RuntimeError,))
    assert seen == ["n=0", "n=1", "n=2", "n=3", "n=4"]  # the first two again: handlers dedupe them
    assert not journal.pending()


def test_where_the_journal_lives(tmp_path: Path):
    assert location(f"sqlite:///{tmp_path}/phonetree.db") == tmp_path / "phonetree.db.webhook-journal"
    assert location("sqlite:///phonetree.db") == Path("phonetree.db.webhook-journal")
    assert location("sqlite:///phonetree.db", "/var/spool/pt") == Path("/var/spool/pt/phonetree.db.webhook-journal")
    pg = location("postgresql+psycopg://u:secret@db.example.org/tree", str(tmp_path))
    assert pg.parent == tmp_path and "secret" not in str(pg) and pg.name.endswith(".webhook-journal")
    assert pg != location("postgresql+psycopg://u:secret@db.example.org/other", str(tmp_path))


# ---------------------------------------------------------------- a real server, a database that refuses writes


class ReadOnly:
    """Makes the database refuse writes at the database itself: SQLite's `PRAGMA query_only`
    ("attempt to write a readonly database", as for a read-only file) or PostgreSQL's read-only
    transactions, set on every connection as it is checked out of the pool."""

    def __init__(self, engine: Engine) -> None:
        self.engine, self.on = engine, False
        event.listen(engine, "checkout", self._checkout)

    def _checkout(self, dbapi_connection, _record, _proxy) -> None:  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        if self.engine.dialect.name == "sqlite":
            cursor.execute(f"PRAGMA query_only={'ON' if self.on else 'OFF'}")
        else:
            cursor.execute(f"SET SESSION CHARACTERISTICS AS TRANSACTION READ {'ONLY' if self.on else 'WRITE'}")
            dbapi_connection.commit()
        cursor.close()

    def remove(self) -> None:
        event.remove(self.engine, "checkout", self._checkout)


@pytest.fixture
def morning(engine, oakfield, ok, tmp_path) -> Iterator[tuple[Runner, str, int]]:
    """Vera (escalating to Jo, Sam), Sam and Jo each have a 09:00 check-in, prompted at 09:00;
    `phonetree run`'s own server and webhook app, journal in tmp_path, scheduler not started."""
    with freeze_time("2026-11-30 12:00:00"):
        ok("checkin", "add", "Oakfield", "Vera", "--at", "09:00", "--window", "30m", "--escalate-to", "Jo,Sam")
        ok("checkin", "add", "Oakfield", "Sam", "--at", "09:00", "--window", "30m", "--escalate-to", "Margaret")
        ok("checkin", "add", "Oakfield", "Jo", "--at", "09:00", "--window", "30m", "--escalate-to", "Margaret")
    tick(engine, OutboxGateway(), utc(2026, 12, 1, 9, 0))
    settings = Settings(public_url=PUBLIC, twilio_auth_token=TOKEN, twilio_account_sid=ACCOUNT,
                        journal_dir=str(tmp_path / "spool"))
    (tmp_path / "spool").mkdir()
    runner = Runner(engine, OutboxGateway(), settings, host="127.0.0.1", port=0)
    thread = threading.Thread(target=runner.server.run, daemon=True)
    thread.start()
    try:
        yield runner, "127.0.0.1", runner.server.effective_port
    finally:
        runner.server.close()
        thread.join(timeout=5)


# Eight replies, in this order: a HELP among them, and words after it.
REPLIES = [(SAM, "OK"), (VERA, "HELP"), (JO, "fine thanks"), (VERA, "please hurry"), (MARGARET, "hello"),
           (SAM, "OK again"), (JO, "OK"), (VERA, "still here")]


def signed(n: int, phone: str, text: str) -> tuple[bytes, str]:
    params = dict(INBOUND, MessageSid=f"SM{n:032x}", From=phone, Body=text)
    return urlencode(params).encode(), RequestValidator(TOKEN).compute_signature(PUBLIC + "/twilio/sms", params)


def post(host: str, port: int, body: bytes, signature: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(host, port, timeout=20)
    try:
        connection.request("POST", "/twilio/sms", body=body, headers={
            "X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def inbound_sids(engine: Engine) -> list[str]:
    with session_scope(engine) as session:
        return list(session.scalars(select(Inbound.provider_sid).order_by(Inbound.id)))


def test_replies_while_the_database_refuses_writes_are_answered_200_kept_and_applied_in_order(engine, morning):
    runner, host, port = morning
    before = snapshot(engine)
    fault = ReadOnly(engine)
    engine.dispose()  # every connection from now on is checked out read-only
    fault.on = True
    with freeze_time("2026-12-01 09:05:00"):
        answers = [post(host, port, *signed(n, phone, text)) for n, (phone, text) in enumerate(REPLIES)]
    assert [status for status, _ in answers] == [200] * 8
    assert all(body.endswith(b"<Response />") for _, body in answers)
    fault.on = False
    assert snapshot(engine) == before  # the database really took nothing
    # Each reply after the first tried the journal first (it goes before them), which moved
    # what was there to `.replaying`: eight entries in all, in order, and both files private.
    files = [runner.journal.replaying, runner.journal.path]
    kept = [decode(line) for f in files if f.exists() for line in f.read_bytes().splitlines(keepends=True)]
    assert [Params(e.body)["MessageSid"] for e in kept] == [f"SM{n:032x}" for n in range(8)]
    assert all(stat.S_IMODE(os.stat(f).st_mode) == 0o600 for f in files if f.exists())
    # The database is back: the next tick applies the journal first, in order.
    with freeze_time("2026-12-01 09:06:00"):
        runner.tick()
    assert inbound_sids(engine) == [f"SM{n:032x}" for n in range(8)]
    assert not runner.journal.pending()
    asked = sent(engine, to_phone=JO)
    assert any(m.kind == "escalation" for m in asked), [m.kind for m in asked]  # Vera's HELP reached Jo
    with session_scope(engine) as session:
        states = dict(session.execute(select(CheckIn.member_id, CheckIn.state)).all())
    assert len(states) == 3
    # The same eight delivered again (Twilio's retry, a replay): no second effect.
    after = snapshot(engine)
    with freeze_time("2026-12-01 09:07:00"):
        assert [post(host, port, *signed(n, p, t))[0] for n, (p, t) in enumerate(REPLIES)] == [200] * 8
    assert snapshot(engine) == after
    fault.remove()


def test_a_journalled_reply_goes_before_a_later_live_one(engine, morning):
    """Vera's HELP is journalled; the database comes back; her OK arrives live. The HELP is
    applied first (from the journal), then the OK: never the OK and then an old HELP."""
    runner, host, port = morning
    fault = ReadOnly(engine)
    engine.dispose()
    fault.on = True
    with freeze_time("2026-12-01 09:05:00"):
        assert post(host, port, *signed(100, VERA, "HELP"))[0] == 200
    fault.on = False
    with freeze_time("2026-12-01 09:06:00"):
        assert post(host, port, *signed(101, VERA, "OK"))[0] == 200
    assert inbound_sids(engine) == [f"SM{100:032x}", f"SM{101:032x}"]
    assert not runner.journal.pending()
    fault.remove()


def test_only_when_neither_can_be_written_the_answer_is_500(engine, morning):
    runner, host, port = morning
    before = snapshot(engine)
    fault = ReadOnly(engine)
    engine.dispose()
    fault.on = True
    runner.journal.path.mkdir()  # the journal can't be opened for writing either
    with freeze_time("2026-12-01 09:05:00"):
        assert post(host, port, *signed(200, VERA, "HELP"))[0] == 500
    fault.on = False
    runner.journal.path.rmdir()
    assert snapshot(engine) == before
    with freeze_time("2026-12-01 09:05:30"):  # Twilio (with connection overrides) tries again
        assert post(host, port, *signed(200, VERA, "HELP"))[0] == 200
    assert inbound_sids(engine) == [f"SM{200:032x}"]
    fault.remove()


# ---------------------------------------------------------------- a database file really made read-only


def without_root_override() -> None:
    """In the child, before exec: drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the
    bounding set, so even root (as tests here run) meets a file's mode like anyone else."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_a_live_run_on_a_read_only_database_file_loses_no_reply(tmp_path: Path):
    """The database file is chmod 0444 under a live `phonetree run`: 8 signed replies, a HELP
    among them, are answered 200 and journalled; once the file is writable again the ticks apply
    them in order, the HELP reaches a person, and delivering them all again changes nothing."""
    from tests.test_webhook_attacks import ACCOUNT as LIVE_ACCOUNT, TOKEN as LIVE_TOKEN, Live, captured, settled
    from tests.test_webhook_attacks import seed_oakfield, sign as live_sign

    url = seed_oakfield(tmp_path)
    files = [tmp_path / name for name in ("phonetree.db", "phonetree.db-wal", "phonetree.db-shm")]
    assert LIVE_ACCOUNT and LIVE_TOKEN
    from sqlalchemy import create_engine

    reader = create_engine(url)
    before = snapshot(reader)
    reader.dispose()
    for f in files:
        if f.exists():
            f.chmod(0o444)
    server = Live(url, tmp_path, preexec_fn=without_root_override)
    try:
        replies = [("1", SAM, "OK"), ("2", VERA, "HELP"), ("3", JO, "fine"), ("4", VERA, "please hurry"),
                   ("5", MARGARET, "hello"), ("6", SAM, "OK again"), ("7", JO, "OK"), ("8", VERA, "still here")]
        requests = [captured(digit, phone, text) for digit, phone, text in replies]
        statuses = [server.post("/twilio/sms", pairs, live_sign("/twilio/sms", pairs)) for pairs in requests]
        assert statuses == [200] * 8
        journal = location(url, str(tmp_path))
        kept = [decode(line) for f in (journal.with_name(journal.name + ".replaying"), journal) if f.exists()
                for line in f.read_bytes().splitlines(keepends=True)]
        assert [Params(e.body)["MessageSid"] for e in kept] == [f"SM{d * 32}" for d, _, _ in replies]
        reader = create_engine(url)
        assert snapshot(reader) == before  # the file took nothing
        for f in files:
            if f.exists():
                f.chmod(0o600)
        engine = reader

        def applied() -> bool:
            with session_scope(engine) as session:
                return session.scalar(select(func.count()).select_from(Inbound)) == 8 and not journal.exists()

        from tests.test_twilio_e2e import wait_for

        wait_for(applied, "the journal to be applied", timeout=30.0)
        assert inbound_sids(engine) == [f"SM{d * 32}" for d, _, _ in replies]
        after = settled(engine)
        assert len(after["messages"]) > len(before["messages"])  # Vera's HELP: someone asked, her ack
        for pairs in requests:
            assert server.post("/twilio/sms", pairs, live_sign("/twilio/sms", pairs)) == 200
        assert settled(engine) == after
        engine.dispose()
    finally:
        log = server.stop()
        for f in files:
            if f.exists():
                f.chmod(0o600)
    assert "journalled" in log and "Traceback" not in log.split("webhook journal:")[-1], log


def test_a_delivery_receipt_and_a_keypress_are_journalled_too(engine, morning):
    """Status callbacks and <Gather> keypresses take the same way: journalled, 200, applied later.
    (Vera's prompt left as SM…9; Sam's was rung, as CA…9, and he pressed 1.)"""
    from phonetree.models import Member, Message
    from tests.test_web import call, sign

    runner, _, _ = morning
    [vera] = [m for m in sent(engine, to_phone=VERA) if m.kind == "checkin"]
    [sam] = [m for m in sent(engine, to_phone=SAM) if m.kind == "checkin"]
    with session_scope(engine) as session:
        session.get(Message, vera.id).provider_sid = "SM" + "9" * 32
        session.get(Message, sam.id).provider_sid = "CA" + "9" * 32
        session.get(Message, sam.id).channel = "voice"
        sam_id = session.scalar(select(Member.id).where(Member.phone == SAM))
    receipt = {"MessageSid": "SM" + "9" * 32, "AccountSid": ACCOUNT, "MessageStatus": "delivered",
               "To": VERA, "From": "+441522000000"}
    keypress = {"CallSid": "CA" + "9" * 32, "AccountSid": ACCOUNT, "Digits": "1", "To": SAM}
    fault = ReadOnly(engine)
    engine.dispose()
    fault.on = True
    with freeze_time("2026-12-01 09:02:00"):
        status, body, _ = call(runner.app, "/twilio/status/message", receipt, query=f"m={vera.id}",
                               signature=sign(f"{PUBLIC}/twilio/status/message?m={vera.id}", receipt))
        assert status.startswith("200") and body.endswith("<Response />")
        status, body, _ = call(runner.app, "/twilio/voice/gather", keypress, query=f"m={sam.id}",
                               signature=sign(f"{PUBLIC}/twilio/voice/gather?m={sam.id}", keypress))
        assert status.startswith("200") and "Thank you" in body
    fault.on = False
    assert runner.journal.pending()
    with freeze_time("2026-12-01 09:03:00"):
        runner.tick()
    assert not runner.journal.pending()
    with session_scope(engine) as session:
        assert session.get(Message, vera.id).provider_status == "delivered"
        assert session.get(CheckIn, sam.checkin_id).state == "answered"
        assert session.get(CheckIn, sam.checkin_id).member_id == sam_id
    fault.remove()
