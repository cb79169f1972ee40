"""Encryption at rest: with PHONETREE_DATABASE_KEY the SQLite file and its -wal are SQLCipher
ciphertext; a wrong or missing key is one Error line; `db rekey` changes the key."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest
from click.testing import CliRunner, Result
from freezegun import freeze_time

from cli import cli
from phonetree.db import dispose_all, get_engine
from tests.conftest import JO, MARGARET, VERA

ROOT = Path(__file__).parent.parent
KEY = "correct horse battery staple"
NEW_KEY = "a different long passphrase"
SECRETS = ["Zebediah", "Vera", "+447911100001", "447911100001", "07911 100001", "my budgie escaped",
           "just checking in", "Oakfield", "Europe/London", "SQLite format 3"]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    yield tmp_path / "phonetree.db"
    dispose_all()


def invoker(db: Path, key: str | None) -> Callable[..., Result]:
    def run(*args: str, **kwargs: Any) -> Result:
        env = {"PHONETREE_DATABASE_KEY": key, "PHONETREE_NEW_DATABASE_KEY": None} | kwargs.pop("env", {})
        return CliRunner().invoke(cli, ["--db", f"sqlite:///{db}", *args], env=env, **kwargs)
    return run


def must(result: Result) -> Result:
    assert result.exit_code == 0, result.output + result.stderr
    return result


def fill(run: Callable[..., Result]) -> None:
    must(run("group", "add", "Oakfield", "--timezone", "Europe/London"))
    for name, phone in (("Vera", VERA), ("Zebediah", JO), ("Margaret", MARGARET)):
        must(run("member", "add", "Oakfield", name, "--phone", phone, *(
            ["--role", "organiser"] if name == "Margaret" else [])))
    with freeze_time("2026-11-30 12:00:00"):
        must(run("checkin", "add", "Oakfield", "Vera", "--at", "09:00", "--escalate-to", "Zebediah"))
    with freeze_time("2026-12-01 09:00:00"):
        must(run("tick"))
    with freeze_time("2026-12-01 09:05:00"):
        must(run("receive", "--from", VERA, "my budgie escaped"))


def leaks(db: Path) -> dict[str, list[str]]:
    found = {}
    for path in db.parent.iterdir():
        if path.name.startswith(db.name):
            data = path.read_bytes()
            hits = [s for s in SECRETS if s.encode() in data]
            if hits:
                found[path.name] = hits
    return found


def test_the_encrypted_file_and_its_wal_reveal_nothing(db: Path) -> None:
    run = invoker(db, KEY)
    fill(run)
    engine = get_engine(f"sqlite:///{db}", KEY)
    with engine.connect() as conn:  # an open connection with the log in use: the -wal is there
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10000
        assert conn.exec_driver_sql("SELECT count(*) FROM members").scalar() == 3
        assert Path(f"{db}-wal").exists()
        assert leaks(db) == {}
    assert "just checking in" in must(run("outbox")).stdout  # and it reads back with the key
    dispose_all()
    assert leaks(db) == {}
    # The same steps without a key leave all of it readable: the test can see what it looks for.
    plain = db.with_name("plain.db")
    fill(invoker(plain, None))
    seen = set(sum(leaks(plain).values(), []))
    assert {"Zebediah", "Vera", "+447911100001", "my budgie escaped", "SQLite format 3"} <= seen


def test_prepared_statements_work_under_sqlcipher(db: Path) -> None:
    run = invoker(db, KEY)
    fill(run)
    with freeze_time("2026-12-02 09:00:00"):
        must(run("tick"))
    with freeze_time("2026-12-02 09:01:00"):
        out = must(run("receive", "--from", VERA, "OK")).stdout  # the prepared fast path for OK
    assert "ok" in out.lower()
    assert json.loads(must(run("status", "Oakfield", "--json")).stdout)["open"] == []


def one_error(db: Path, key: str | None, *args: str) -> str:
    """Run in a subprocess, so anything SQLCipher's C code writes to stderr is seen too."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHONETREE_")}
    if key:
        env["PHONETREE_DATABASE_KEY"] = key
    done = subprocess.run([sys.executable, "-m", "cli", "--db", f"sqlite:///{db}", *(args or ("group", "list"))],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), done.stderr
    assert KEY not in done.stderr and "wrong key wrong key" not in done.stderr
    return lines[0]


def test_wrong_key_or_no_key_is_one_error_line(db: Path) -> None:
    fill(invoker(db, KEY))
    dispose_all()
    before = db.read_bytes()
    assert "the key is wrong" in one_error(db, "wrong key wrong key")
    assert "set PHONETREE_DATABASE_KEY" in one_error(db, None)
    assert db.read_bytes() == before


def test_a_key_for_a_plain_file_or_postgresql_or_too_short_is_refused(db: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain.db"
    must(invoker(plain, None)("group", "add", "Oakfield", "--timezone", "Europe/London"))
    dispose_all()
    assert "not encrypted" in one_error(plain, KEY)
    result = CliRunner().invoke(cli, ["--db", "postgresql://u@127.0.0.1:1/x", "group", "list"],
                                env={"PHONETREE_DATABASE_KEY": KEY})
    assert result.exit_code == 1 and "SQLite database only" in result.stderr
    assert "too short" in invoker(db, "x7#q9z")("group", "list").stderr


def test_rekey_changes_the_key(db: Path) -> None:
    fill(invoker(db, KEY))
    dispose_all()
    result = invoker(db, KEY)("db", "rekey", env={"PHONETREE_NEW_DATABASE_KEY": NEW_KEY})
    must(result)
    assert NEW_KEY not in result.output + result.stderr
    dispose_all()
    assert "the key is wrong" in one_error(db, KEY)
    assert "Vera" in must(invoker(db, NEW_KEY)("member", "list", "Oakfield")).stdout
    dispose_all()
    assert leaks(db) == {}


def test_rekey_asks_for_the_new_key_hidden_and_twice(db: Path) -> None:
    fill(invoker(db, KEY))
    dispose_all()
    result = invoker(db, KEY)("db", "rekey", input=f"{NEW_KEY}\n{NEW_KEY}\n")
    must(result)
    assert NEW_KEY not in result.output  # typed, not echoed
    dispose_all()
    assert "Vera" in must(invoker(db, NEW_KEY)("member", "list", "Oakfield")).stdout


def test_rekey_encrypts_a_plain_database(db: Path) -> None:
    fill(invoker(db, None))
    dispose_all()
    assert leaks(db)
    must(invoker(db, None)("db", "rekey", env={"PHONETREE_NEW_DATABASE_KEY": NEW_KEY}))
    dispose_all()
    assert leaks(db) == {}
    assert "Zebediah" in must(invoker(db, NEW_KEY)("member", "list", "Oakfield")).stdout
    assert oct(db.stat().st_mode & 0o777) == "0o600"


def test_without_sqlcipher_installed_a_key_is_one_error_line(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sqlcipher3", None)  # import fails as if not installed
    result = invoker(db, KEY)("group", "list")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        'Error: PHONETREE_DATABASE_KEY is set, but SQLCipher is not installed here: pip install '
        '"phonetree[encrypt]" (or pip install ".[encrypt]" in the source tree).']
    assert not db.exists()
