"""`phonetree doctor` against a real SQLite file and the Twilio stand-in (the real twilio client
over real sockets): each line OK or what to do, exit 1 if anything is wrong, no secret shown."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text

from cli import cli
from phonetree.db import _head_revision, dispose_all, get_engine
from tests.twilio_standin import DEFAULT_NUMBER, DEFAULT_SID, DEFAULT_TOKEN, TwilioStandIn

PUBLIC = "https://tree.example.org"


@pytest.fixture
def database(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'tree.db'}"
    get_engine(url)
    dispose_all()
    os.chmod(tmp_path / "tree.db", 0o600)
    yield url
    dispose_all()


def doctor(url: str, **env: str | None) -> Result:
    base = {"PHONETREE_GATEWAY": None, "TWILIO_ACCOUNT_SID": None, "TWILIO_AUTH_TOKEN": None,
            "TWILIO_FROM_NUMBER": None, "TWILIO_API_BASE_URL": None, "PHONETREE_PUBLIC_URL": None,
            "TWILIO_MESSAGING_SERVICE_SID": None}
    return CliRunner().invoke(cli, ["--db", url, "doctor"], env=base | env, catch_exceptions=False)


def twilio_env(standin: TwilioStandIn, **changes: str) -> dict[str, str]:
    return {"PHONETREE_GATEWAY": "twilio", "TWILIO_ACCOUNT_SID": DEFAULT_SID, "TWILIO_AUTH_TOKEN": DEFAULT_TOKEN,
            "TWILIO_FROM_NUMBER": DEFAULT_NUMBER, "TWILIO_API_BASE_URL": standin.base_url,
            "PHONETREE_PUBLIC_URL": PUBLIC} | changes


def lines(result: Result) -> dict[str, str]:
    return {line[5:].split("  ")[0].strip(): line for line in result.stdout.splitlines()}


def test_all_well_with_the_outbox(database):
    result = doctor(database)
    assert result.exit_code == 0, result.output
    assert all(line.startswith("OK ") for line in result.stdout.splitlines())
    assert set(lines(result)) == {"database", "schema", "database writes", "file permissions", "time zones",
                                  "gateway"}


def test_all_well_with_twilio_and_no_secret_shown(database, standin):
    result = doctor(database, **twilio_env(standin))
    assert result.exit_code == 0, result.output
    found = lines(result)
    assert "texts to the number are posted to https://tree.example.org/twilio/sms" in found["incoming messages"]
    assert "the credentials work" in found["Twilio account"]
    assert DEFAULT_TOKEN not in result.output and DEFAULT_SID not in result.output
    assert DEFAULT_NUMBER not in result.output  # masked
    listed = [r for r in standin.requests if r.path.endswith("/IncomingPhoneNumbers.json")]
    assert listed and listed[0].method == "GET" and listed[0].params["PhoneNumber"] == DEFAULT_NUMBER


def test_a_wrong_webhook_url_is_named_with_what_to_do(database, standin):
    standin.set_incoming_number(DEFAULT_NUMBER, "https://old-host.example.org/sms")
    result = doctor(database, **twilio_env(standin))
    assert result.exit_code == 1
    line = lines(result)["incoming messages"]
    assert line.startswith("FIX")
    assert ("to https://old-host.example.org/sms (POST), so replies never reach phonetree: in the Twilio "
            "console set \"A message comes in\" to Webhook, https://tree.example.org/twilio/sms, HTTP POST.") in line
    assert result.stderr == "Error: 1 thing(s) to fix, marked FIX above.\n"


def test_credentials_in_a_webhook_url_are_not_shown(database, standin):
    standin.set_incoming_number(DEFAULT_NUMBER, "https://bob:hunter2@old-host.example.org/sms")
    result = doctor(database, **twilio_env(standin))
    assert result.exit_code == 1 and "hunter2" not in result.output and "bob" not in result.output


def test_wrong_credentials_and_a_number_not_on_the_account(database, standin):
    result = doctor(database, **twilio_env(standin, TWILIO_AUTH_TOKEN="not-the-token"))
    assert result.exit_code == 1
    assert lines(result)["Twilio account"].startswith("FIX") and "not-the-token" not in result.output
    assert "TWILIO_AUTH_TOKEN" in lines(result)["Twilio account"]
    result = doctor(database, **twilio_env(standin, TWILIO_FROM_NUMBER="+447911100009"))
    assert result.exit_code == 1
    assert "07911 ***009 is not a number on this account" in lines(result)["Twilio number"]


def test_missing_twilio_settings_are_named_not_shown(database):
    result = doctor(database, PHONETREE_GATEWAY="twilio", TWILIO_ACCOUNT_SID=DEFAULT_SID)
    assert result.exit_code == 1
    assert "TWILIO_AUTH_TOKEN" in lines(result)["gateway"] and DEFAULT_SID not in result.output


def test_a_missing_public_url_is_named(database, standin):
    result = doctor(database, **twilio_env(standin, PHONETREE_PUBLIC_URL=""))
    assert result.exit_code == 1 and lines(result)["public URL"].startswith("FIX  public URL")


def test_database_files_others_can_read_are_flagged(database, tmp_path):
    os.chmod(tmp_path / "tree.db", 0o644)
    (tmp_path / "tree.db-wal").write_bytes(b"")
    os.chmod(tmp_path / "tree.db-wal", 0o640)
    result = doctor(database)
    assert result.exit_code == 1
    assert f"others can read tree.db (644), tree.db-wal (640): run chmod 600 {tmp_path / 'tree.db'}*" in \
        lines(result)["file permissions"]


def test_an_old_schema_is_named(database):
    engine = get_engine(database)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0007'"))
    dispose_all()
    result = doctor(database)
    assert result.exit_code == 1
    head = _head_revision(database)  # the newest migration this code ships
    assert head is not None and head > "0007"
    assert f"at migration 0007, this phonetree expects {head}" in lines(result)["schema"]


def test_an_unreachable_database_is_one_line_with_what_to_do():
    result = doctor("postgresql+psycopg://phonetree:secretpw@127.0.0.1:1/nothing")
    assert result.exit_code == 1
    line = lines(result)["database"]
    assert line.startswith("FIX") and "can't reach postgresql+psycopg://phonetree:***@127.0.0.1:1/nothing" in line
    assert line.endswith("check PHONETREE_DATABASE_URL and that the server is running.")
    assert "secretpw" not in result.output


def test_a_database_not_yet_made_is_fine(tmp_path):
    result = doctor(f"sqlite:///{tmp_path / 'new.db'}")
    assert result.exit_code == 0 and "doesn't exist yet; the first command creates it" in result.stdout
    assert not (tmp_path / "new.db").exists()
