"""The organiser's tools: presets, imports from real exports, wording, privacy, audit, report."""
from __future__ import annotations

import csv
import io
import json
import re

import pytest
from freezegun import freeze_time
from sqlalchemy import func, select

import schedules.engine
from phonetree.db import session_scope
from phonetree.models import CheckIn, Inbound, Member, Message
from phonetree.privacy import purge_bodies
from tests.conftest import VERA, sent, snapshot, utc

DAY = (2026, 12, 1)


@pytest.mark.parametrize("kind, channel, window, quiet", [
    ("rural", "sms", "30m", "21:00-08:00"),
    ("family", "sms", "30m", "22:00-08:00"),
    ("grandparents", "voice", "1h", "20:00-09:00"),
])
def test_presets_are_shown_and_overridable(ok, kind, channel, window, quiet):
    ok("group", "add", "G", "--timezone", "Europe/London", "--kind", kind)
    shown = json.loads(ok("group", "show", "G", "--json").stdout)
    assert (shown["default_channel"], shown["window"], shown["quiet_hours"]) == (channel, window, quiet)
    ok("group", "set", "G", "--window", "45m", "--quiet", "22:30-07:30", "--channel", "sms")
    shown = json.loads(ok("group", "show", "G", "--json").stdout)
    assert (shown["default_channel"], shown["window"], shown["quiet_hours"]) == ("sms", "45m", "22:30-07:30")


GOOGLE = """Name,Given Name,Family Name,Phone 1 - Type,Phone 1 - Value
Vera Smith,Vera,Smith,Mobile,+44 7911 100001 ::: 01522 500009
Jo Bloggs,Jo,Bloggs,Mobile,07911100002
Sam,Sam,,Home,01522 500001
Nobody,,,Mobile,
"""
OUTLOOK = """First Name,Middle Name,Last Name,Mobile Phone,Home Phone,Role
Pat,,Jones,(07911) 100005,,organiser;peer
Dot,,Evans,,01522-500002,
"""


def test_google_contacts_export(ok, run_cli, tmp_path):
    ok("group", "add", "G", "--timezone", "Europe/London")
    path = tmp_path / "google.csv"
    path.write_text(GOOGLE, encoding="utf-8-sig")
    result = run_cli("member", "import", "G", str(path), "--skip-invalid")
    assert result.exit_code == 0 and "Added 3 member(s)" in result.stdout
    assert "rejected line 5: Nobody" in result.stderr
    members = json.loads(ok("member", "list", "G", "--json", "--show-numbers").stdout)
    assert [(m["name"], m["phone"], m["channel"]) for m in members] == [
        ("Vera", "+447911100001", "sms"), ("Jo", "+447911100002", "sms"), ("Sam", "+441522500001", "voice")]


def test_outlook_export(ok, tmp_path):
    ok("group", "add", "G", "--timezone", "Europe/London")
    path = tmp_path / "outlook.csv"
    path.write_text(OUTLOOK, encoding="utf-8")
    ok("member", "import", "G", str(path))
    members = json.loads(ok("member", "list", "G", "--json", "--show-numbers").stdout)
    assert [(m["name"], m["phone"], m["roles"]) for m in members] == [
        ("Pat", "+447911100005", ["organiser", "peer"]), ("Dot", "+441522500002", ["peer"])]


def test_a_long_import_shows_progress(ok, run_cli, tmp_path):
    ok("group", "add", "G", "--timezone", "Europe/London")
    rows = "\n".join(f"Person{i},07911 1{i:05d}" for i in range(60))
    path = tmp_path / "many.csv"
    path.write_text("name,phone\n" + rows + "\n", encoding="utf-8")
    result = run_cli("member", "import", "G", str(path))
    assert result.exit_code == 0 and "Added 60 member(s)" in result.stdout
    assert "Adding members" in result.stderr


def test_template_preview_and_edit_with_segment_checks(oakfield, ok, run_cli, engine, ticker):
    out = ok("template", "show", "Oakfield", "checkin").stdout
    # A sample name, not a real member's (issue 12: previews never show real members).
    assert "Preview: Hi Sample A, just checking in." in out and "GSM-7" in out and "1 segment" in out
    result = run_cli("template", "set", "Oakfield", "checkin", "Morning {name} \u2014 reply \u201cOK\u201d if you\u2019re alright, or CALL for a chat.")
    assert result.exit_code == 0
    assert "Morning Sample A - reply \"OK\" if you're alright" in result.stdout
    assert "replaced typographic" in result.stderr
    with freeze_time("2026-11-30 12:00:00"):
        ok("checkin", "add", "Oakfield", "Vera", "--at", "09:00", "--escalate-to", "Jo")
    ticker(utc(*DAY, 9, 0))
    [prompt] = sent(engine, kind="checkin")
    assert prompt.body.startswith("Morning Vera - reply")
    long = run_cli("template", "set", "Oakfield", "reminder", "Hello {name}. " + "Just a gentle nudge. " * 8)
    assert long.exit_code == 0 and "segments" in long.stderr  # a warning, not a refusal
    ok("template", "reset", "Oakfield", "checkin")
    assert "default" in ok("template", "show", "Oakfield", "checkin").stdout


@pytest.mark.parametrize("args, message", [
    (["template", "set", "Oakfield", "checkin", "Hi {nmae}"], "unknown placeholder {nmae}"),
    (["template", "set", "Oakfield", "escalation", "Hi {contact}, please ring {member}"], "must keep {phone}"),
    (["template", "set", "Oakfield", "checkin", "Hi {name}, your recovery group check-in"], "discreet"),
    (["template", "set", "Oakfield", "chekin", "Hi {name}"], "Did you mean 'checkin'?"),
    (["template", "set", "Oakfield", "checkin", "Hi {name"], "unbalanced"),
    (["template", "reset", "Oakfield", "checkin"], "default"),
    (["member", "forget", "Oakfield", "Vera"], "--yes"),
])
def test_template_and_privacy_errors_change_nothing(oakfield, run_cli, engine, args, message):
    before = snapshot(engine)
    result = run_cli(*args)
    assert result.exit_code == 1 and result.stderr.startswith("Error: ") and message in result.stderr
    assert snapshot(engine) == before


def test_forget_erases_the_member_and_passes_on_what_they_held(oakfield, ok, engine, ticker):
    with freeze_time("2026-11-30 12:00:00"):
        ok("checkin", "add", "Oakfield", "Vera", "--at", "09:00", "--window", "30m", "--escalate-to", "Jo,Sam")
    ticker(utc(*DAY, 9, 0))
    with freeze_time("2026-12-01 09:05:00"):
        ok("receive", "--from", VERA, "my tooth hurts")  # forwarded to Margaret: carries Vera's words
    ticker(utc(2026, 12, 2, 9, 0))
    ticker(utc(2026, 12, 2, 9, 30))  # Jo is asked to ring Vera
    with freeze_time("2026-12-02 09:35:00"):
        out = ok("member", "forget", "Oakfield", "Jo", "--yes").stdout
    assert "1 task(s) they held were passed on" in out
    assert [m.to_phone for m in sent(engine, kind="escalation")][-1] == "+447911100003"  # Sam now
    with freeze_time("2026-12-02 09:40:00"):
        ok("member", "forget", "Oakfield", "Vera", "--yes")
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(Member).where(Member.name == "Vera")) == 0
        assert session.scalar(select(func.count()).select_from(CheckIn)) == 0
        assert session.scalar(select(func.count()).select_from(Inbound)) == 0
        bodies = [b for b in session.scalars(select(Message.body)) if b]
        assert not any("Vera" in b or "tooth" in b for b in bodies)
    with freeze_time("2026-12-02 09:45:00"):  # the audit looks back 30 days from now
        audit = ok("audit", "Oakfield", "--json").stdout
    assert "member_forgotten" in audit and "Vera" not in audit


def test_retention_blanks_old_text_but_keeps_counts(oakfield, ok, engine, ticker):
    with freeze_time("2026-11-30 12:00:00"):
        ok("checkin", "add", "Oakfield", "Vera", "--at", "09:00", "--escalate-to", "Jo")
    ticker(utc(*DAY, 9, 0))
    with freeze_time("2026-12-01 09:03:00"):
        ok("receive", "--from", VERA, "OK ta")
    with session_scope(engine) as session:
        assert purge_bodies(session, utc(2026, 12, 30)) == 0  # 29 days: kept
    with session_scope(engine) as session:
        assert purge_bodies(session, utc(2026, 12, 31, 9, 5)) == 2  # the check-in and Vera's reply
        assert [m.body for m in session.scalars(select(Message))] == [None]
        assert [i.body for i in session.scalars(select(Inbound))] == [None]
        assert session.scalar(select(CheckIn.state).where(CheckIn.state == "answered")) == "answered"


def test_the_tick_blanks_old_text_on_its_own(oakfield, ok, engine, ticker, monkeypatch):
    # The purge runs from the tick (at most hourly), not only when called: nobody has to remember.
    monkeypatch.setattr(schedules.engine, "_last_purge", None)  # no earlier test's tick counts
    with freeze_time("2026-11-30 12:00:00"):
        ok("checkin", "add", "Oakfield", "Vera", "--at", "09:00", "--escalate-to", "Jo")
        ok("member", "pause", "Oakfield", "Vera", "--until", "2027-01-31")  # after today's: no more
    ticker(utc(*DAY, 8, 0))  # the purge's first run: nothing old yet
    with freeze_time("2026-12-01 08:01:00"):
        ok("receive", "--from", VERA, "OK ta")
    ticker(utc(2026, 12, 30, 8, 2))  # 29 days on: kept
    with session_scope(engine) as session:
        assert [i.body for i in session.scalars(select(Inbound))] == ["OK ta"]
    with freeze_time("2026-12-31 08:02:00"):
        ok("receive", "--from", VERA, "thanks")  # new: kept
    ticker(utc(2026, 12, 31, 8, 3))  # 30 days and a minute on: blanked, by the tick alone
    with session_scope(engine) as session:
        assert [i.body for i in session.scalars(select(Inbound).order_by(Inbound.id))] == [None, "thanks"]


def test_audit_lists_organiser_changes(ok, request):
    # The group is made inside the frozen clock too: made at the real time (the `oakfield`
    # fixture), it came after 30 Nov 12:00 whenever the suite ran later, and the order broke.
    with freeze_time("2026-11-30 11:00:00"):
        request.getfixturevalue("oakfield")
    with freeze_time("2026-11-30 12:00:00"):
        ok("checkin", "add", "Oakfield", "Vera", "--at", "09:00", "--escalate-to", "Jo")
        ok("group", "set", "Oakfield", "--window", "45m")
        ok("member", "pause", "Oakfield", "Vera", "--until", "2026-12-03")
        rows = json.loads(ok("audit", "Oakfield", "--json").stdout)
    kinds = [r["kind"] for r in rows]
    assert kinds[:1] == ["group_added"] and "plan_added" in kinds and "group_changed" in kinds
    assert "paused" in kinds and kinds.count("member_added") == 4


def test_report_command_in_all_formats(oakfield, ok, ticker):
    with freeze_time("2026-11-30 12:00:00"):
        ok("checkin", "add", "Oakfield", "Vera", "--at", "09:00", "--escalate-to", "Jo")
    ticker(utc(*DAY, 9, 0))
    with freeze_time("2026-12-01 09:03:00"):
        ok("receive", "--from", VERA, "OK")
    with freeze_time("2026-12-02 12:00:00"):
        text = ok("report", "Oakfield", "--weeks", "2").stdout
        csv_text = ok("report", "Oakfield", "--format", "csv").stdout
        html = ok("report", "Oakfield", "--format", "html").stdout
    assert "Oakfield" in text and "Vera" not in text
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    assert [r["week_start"] for r in rows] == [f"2026-{d}" for d in (
        "10-12", "10-19", "10-26", "11-02", "11-09", "11-16", "11-23", "11-30")] + ["total"]
    assert {k: rows[-2][k] for k in ("checkins_sent", "answered", "followed_up", "median_reply_minutes")} == {
        "checkins_sent": "1", "answered": "1", "followed_up": "0", "median_reply_minutes": "3.0"}
    assert rows[-1] == {**rows[-2], "week_start": "total"}
    assert html.lstrip().lower().startswith("<!doctype html") and "<svg" in html and "Vera" not in html


def test_members_get_the_groups_wording_in_their_language(oakfield, ok, engine, ticker, run_cli):
    ok("member", "add", "Oakfield", "Dafydd", "--phone", "07911 100006", "--language", "cy")
    ok("member", "add", "Oakfield", "Gwen", "--phone", "07911 100007", "--language", "cy")
    ok("template", "set", "Oakfield", "checkin", "Helo {name}, sut wyt ti? Atebwch OK neu CALL.", "--language", "cy")
    ok("template", "set", "Oakfield", "checkin", "Morning {name}, reply OK or CALL.")
    with freeze_time("2026-11-30 12:00:00"):
        for name in ("Dafydd", "Vera"):
            ok("checkin", "add", "Oakfield", name, "--at", "09:00", "--escalate-to", "Jo")
    ticker(utc(*DAY, 9, 0))
    bodies = {m.to_phone: m.body for m in sent(engine, kind="checkin")}
    assert bodies["+447911100006"] == "Helo Dafydd, sut wyt ti? Atebwch OK neu CALL."
    assert bodies["+447911100001"] == "Morning Vera, reply OK or CALL."
    # Welsh wording only for what the organiser has written; the rest stays English.
    ok("template", "reset", "Oakfield", "checkin", "--language", "cy")
    assert "Morning Sample A" in ok("template", "show", "Oakfield", "checkin", "--language", "cy").stdout
    bad = run_cli("member", "add", "Oakfield", "Zed", "--phone", "07911 100008", "--language", "welsh!")
    assert bad.exit_code == 1 and "not a language code" in bad.stderr
    for command in (("list", "Oakfield"), ("show", "Oakfield", "checkin"), ("reset", "Oakfield", "checkin")):
        bad = run_cli("template", *command, "--language", "welsh!")
        assert bad.exit_code == 1 and bad.stderr.startswith("Error:") and "not a language code" in bad.stderr


def test_previews_use_sample_names_and_a_sample_number_never_a_member(oakfield, ok):
    out = ok("template", "show", "Oakfield", "call_prompt", "--channel", "voice").stdout
    preview = next(line for line in out.splitlines() if line.startswith("Preview: "))
    assert preview == ("Preview: Hello Sample A. This week please ring Sample C on 07700 900123. "
                       "Press 1 if you will ring them. Press 2 if you can't.")
    listing = ok("template", "list", "Oakfield").stdout
    assert not re.search(r"\b(Vera|Jo|Sam|Margaret)\b|07911", listing)


def test_segment_counts_use_the_groups_real_names(oakfield, ok):
    before = ok("template", "show", "Oakfield", "checkin")
    assert "with the longest names: 1 segment(s)" in before.stdout and "GSM-7" not in before.stderr
    ok("member", "add", "Oakfield", "Zoë", "--phone", "07911 100006")
    after = ok("template", "show", "Oakfield", "checkin")
    assert "Warning: contains characters outside GSM-7 (ë), so each text costs two or three times as much " \
           "(they are in members' names)." in after.stderr
    assert "with the longest names: 2 segment(s)" in after.stdout  # 85 chars of UCS-2 is two segments
