"""The command line as the contract names it: help with examples everywhere, JSON where listed,
and every bad input a one-line `Error:` with a non-zero exit that changes nothing."""
from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner
from freezegun import freeze_time

from cli import cli
from tests.conftest import JO, LANDLINE, VERA, snapshot


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in group.commands.items():
        path = prefix + (name,)
        found.append(path)
        if isinstance(command, click.Group):
            found += all_commands(command, path)
    return found


@pytest.mark.parametrize("path", all_commands(cli), ids=" ".join)
def test_every_command_has_help_with_an_example(run_cli, path):
    result = run_cli(*path, "--help")
    assert result.exit_code == 0
    assert "Example:" in result.stdout
    assert f"phonetree {path[0]}" in result.stdout.split("Example:")[1]


def test_top_level_help_lists_the_contract_commands(run_cli):
    out = run_cli("--help").stdout
    for name in ("group", "member", "checkin", "receive", "tick", "run", "outbox", "status", "demo"):
        assert name in out


def test_member_add_normalises_uk_forms_to_e164(ok):
    ok("group", "add", "Oakfield", "--timezone", "Europe/London")
    for name, phone in (("A", "07911 123456"), ("B", "+44 (0)7911 123457"), ("C", "01522 123456")):
        ok("member", "add", "Oakfield", name, "--phone", phone)
    members = json.loads(ok("member", "list", "Oakfield", "--json", "--show-numbers").stdout)
    assert [m["phone"] for m in members] == ["+447911123456", "+447911123457", "+441522123456"]
    assert [m["channel"] for m in members] == ["sms", "sms", "voice"]  # a landline rings


def test_numbers_are_masked_unless_asked(ok):
    ok("group", "add", "Oakfield", "--timezone", "Europe/London")
    ok("member", "add", "Oakfield", "Vera", "--phone", VERA)
    listing = ok("member", "list", "Oakfield").stdout
    assert "+447911100001" not in listing and "07911 ***001" in listing


def test_landline_by_default_is_voice_with_a_note(ok):
    ok("group", "add", "Oakfield", "--timezone", "Europe/London")
    out = ok("member", "add", "Oakfield", "Vera", "--phone", LANDLINE).stdout
    assert "landline" in out and "voice" in out


def test_json_outputs(ok):
    group = json.loads(ok("group", "add", "Oakfield", "--timezone", "Europe/London", "--kind",
                          "grandparents", "--json").stdout)
    assert group["kind"] == "grandparents" and group["default_channel"] == "voice"
    member = json.loads(ok("member", "add", "Oakfield", "Jo", "--phone", JO, "--channel", "sms",
                           "--json").stdout)
    assert member["channel"] == "sms" and member["roles"] == ["peer"]
    ok("member", "add", "Oakfield", "Vera", "--phone", VERA, "--channel", "sms")
    with freeze_time("2026-11-30 12:00:00"):
        plan = json.loads(ok("checkin", "add", "Oakfield", "Vera", "--at", "10:00", "--escalate-to", "Jo",
                             "--json").stdout)
    assert plan["escalate_to"] == ["Jo"] and plan["window"] == "1h" and plan["reminder"] == "30m"
    with freeze_time("2026-12-01 10:00:00"):
        ok("tick")
        status = json.loads(ok("status", "Oakfield", "--json").stdout)
    assert status["open"][0]["member"] == "Vera" and status["open"][0]["state"] == "sent"
    [message] = json.loads(ok("outbox", "--json").stdout)
    assert set(message) >= {"to", "channel", "body", "kind", "created_at"}
    assert message["to"] == "+447911100001" and message["kind"] == "checkin"
    assert message["created_at"] == "2026-12-01T10:00:00+00:00"


def setup_group(ok) -> None:
    ok("group", "add", "Oakfield", "--timezone", "Europe/London")
    ok("member", "add", "Oakfield", "Vera", "--phone", VERA)
    ok("member", "add", "Oakfield", "Jo", "--phone", JO)


BAD = {
    "unknown group": (["member", "add", "Nowhere", "Ann", "--phone", VERA], "no group called 'Nowhere'"),
    "group typo": (["status", "Oakfeld"], "Did you mean 'Oakfield'?"),
    "unknown member": (["checkin", "add", "Oakfield", "Ann", "--at", "09:00", "--escalate-to", "Jo"],
                       "no member called 'Ann'"),
    "unknown contact": (["checkin", "add", "Oakfield", "Vera", "--at", "09:00", "--escalate-to", "Jo,Zed"],
                        "no member called 'Zed'"),
    "not a number": (["member", "add", "Oakfield", "Ann", "--phone", "not-a-number"], "not a phone number"),
    "invalid number": (["member", "add", "Oakfield", "Ann", "--phone", "07700 900123"], "not a real phone number"),
    "landline by sms": (["member", "add", "Oakfield", "Ann", "--phone", LANDLINE, "--channel", "sms"],
                        "use --channel voice"),
    "bad zone": (["group", "add", "Elsewhere", "--timezone", "Mars/Base"], "unknown time zone"),
    "duplicate group": (["group", "add", "Oakfield", "--timezone", "Europe/London"], "already a group"),
    "duplicate member": (["member", "add", "Oakfield", "vera", "--phone", VERA], "already has a member"),
    "bad time": (["checkin", "add", "Oakfield", "Vera", "--at", "25:00", "--escalate-to", "Jo"], "not a time"),
    "bad duration": (["checkin", "add", "Oakfield", "Vera", "--at", "09:00", "--window", "soon",
                      "--escalate-to", "Jo"], "soon"),
    "bad days": (["checkin", "add", "Oakfield", "Vera", "--at", "09:00", "--days", "someday",
                  "--escalate-to", "Jo"], "someday"),
    "quiet hours": (["checkin", "add", "Oakfield", "Vera", "--at", "23:00", "--escalate-to", "Jo"],
                    "quiet hours"),
    "self contact": (["checkin", "add", "Oakfield", "Vera", "--at", "09:00", "--escalate-to", "Vera"],
                     "own escalation contact"),
    "bad pause date": (["member", "pause", "Oakfield", "Vera", "--until", "next week"], "not a date"),
    "missing option": (["checkin", "add", "Oakfield", "Vera", "--at", "09:00"], "--escalate-to"),
    "bad kind": (["group", "add", "Elsewhere", "--timezone", "Europe/London", "--kind", "club"], "club"),
    "bad quiet": (["group", "set", "Oakfield", "--quiet", "late"], "span of hours"),
    "resolve nothing": (["resolve", "Oakfield", "Vera"], "no open check-in"),
    "import missing": (["member", "import", "Oakfield", "/nonexistent/contacts.csv"], "can't read"),
    "bad gateway": (["--gateway", "carrier-pigeon", "tick"], 'no gateway by the name "carrier-pigeon"'),
}


@pytest.mark.parametrize("args, message", BAD.values(), ids=BAD.keys())
def test_bad_input_is_one_error_line_and_changes_nothing(ok, run_cli, engine, args, message):
    setup_group(ok)
    before = snapshot(engine)
    with freeze_time("2026-11-30 12:00:00"):
        result = run_cli(*args)
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert message in lines[0]
    assert result.stdout == ""
    assert snapshot(engine) == before


def test_receive_from_unknown_number_is_not_an_error_and_changes_nothing(ok, run_cli, engine):
    setup_group(ok)
    before = snapshot(engine)
    result = run_cli("receive", "--from", "07911 100099", "OK")  # a real number, nobody's
    assert result.exit_code == 0 and "belongs to no member" in result.stdout
    assert snapshot(engine) == before


def test_import_is_all_or_nothing_with_a_dry_run(ok, run_cli, engine, tmp_path):
    ok("group", "add", "Oakfield", "--timezone", "Europe/London")
    sheet = tmp_path / "contacts.csv"
    sheet.write_text("name,phone\nVera Smith,07911 100001\nJo,+44 (0)7911 100002\nBad,12345\n"
                     "Lil,01522 500001\n", encoding="utf-8")
    dry = run_cli("member", "import", "Oakfield", str(sheet), "--dry-run")
    assert dry.exit_code == 0 and "3 would be added, 1 rejected" in dry.stdout
    assert "rejected line 4: Bad" in dry.stderr
    before = snapshot(engine)
    refused = run_cli("member", "import", "Oakfield", str(sheet))
    assert refused.exit_code == 1 and "nothing was added" in refused.stderr
    assert snapshot(engine) == before
    ok("member", "import", "Oakfield", str(sheet), "--skip-invalid")
    members = json.loads(ok("member", "list", "Oakfield", "--json").stdout)
    assert [(m["name"], m["channel"]) for m in members] == [("Vera", "sms"), ("Jo", "sms"), ("Lil", "voice")]


def test_a_plain_postgresql_url_uses_the_installed_driver(postgres_server):
    """`postgresql://…` (what hosting providers hand out) means psycopg 3, not psycopg2."""
    if postgres_server is None:
        pytest.skip("PostgreSQL is not installed here (.ci/run installs it)")
    from tests.conftest import fresh_postgres_database

    url = fresh_postgres_database(postgres_server)
    assert url.startswith("postgresql+psycopg://")
    for plain in ("postgresql://" + url.split("://", 1)[1], "postgres://" + url.split("://", 1)[1]):
        name = "Oakfield" if plain.startswith("postgresql:") else "Ashby"
        result = CliRunner().invoke(cli, ["--db", plain, "group", "add", name, "--timezone", "Europe/London"])
        assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["--db", url, "group", "list"])
    assert "Oakfield" in result.output and "Ashby" in result.output
