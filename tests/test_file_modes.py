"""The database and its -wal and -shm files are the owner's alone (0600), whatever the umask."""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Iterator

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from cli import cli
from phonetree.db import dispose_all, get_engine
from phonetree.files import create_private, open_private


@pytest.fixture(params=[0o022, 0o000], ids=["umask022", "umask000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)
        dispose_all()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_database_wal_and_shm_are_0600(tmp_path: Path, umask: int) -> None:
    db = tmp_path / "phonetree.db"
    result = CliRunner().invoke(cli, ["--db", f"sqlite:///{db}", "group", "add", "Oakfield",
                                      "--timezone", "Europe/London"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    engine = get_engine(f"sqlite:///{db}")
    with engine.begin() as conn:  # an open connection with a write: the -wal and -shm exist
        conn.execute(text("UPDATE groups SET name = name"))
        files = [db, Path(f"{db}-wal"), Path(f"{db}-shm")]
        assert all(f.exists() for f in files)
        assert {f.name: oct(mode(f)) for f in files} == {f.name: "0o600" for f in files}


def test_demo_database_is_0600(tmp_path: Path, umask: int) -> None:
    db = tmp_path / "demo.db"
    result = CliRunner().invoke(cli, ["demo", "--db", str(db)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    made = [p for p in tmp_path.iterdir() if p.name.startswith("demo.db")]
    assert db in made
    assert {p.name: oct(mode(p)) for p in made} == {p.name: "0o600" for p in made}


def test_create_private_helper(tmp_path: Path, umask: int) -> None:
    journal = tmp_path / "journal.jsonl"
    with open_private(journal) as f:
        f.write("{}\n")
    assert mode(journal) == 0o600
    assert create_private(journal) is False  # an existing file is left alone
    assert journal.read_text() == "{}\n"
