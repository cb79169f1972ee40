"""Organisers correct their mistakes: member set, checkin list/set/remove, rota list/remove,
group remove. Each change applies from what is not yet sent, is in the audit log, and each
refusal is one `Error:` line that leaves the database as it was."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import func, select

from phonetree.db import session_scope
from phonetree.models import CheckIn, Group, Member, Message
from tests.conftest import JO, SAM, VERA, sent, snapshot, utc

NEW_VERA = "07911 100009"


@pytest.fixture
def vera_at_nine(oakfield, ok):
    with freeze_time("2026-11-30 12:00:00"):
        ok("checkin", "add", "Oakfield", "Vera", "--at", "09:00", "--window", "30m", "--escalate-to", "Jo,Sam")
    return "Oakfield"


def prompts_to(engine, phone: str) -> list:
    return [m.sent_at for m in sent(engine, kind="checkin", to_phone=phone)]


def audit_kinds(ok) -> list[str]:
    with freeze_time("2026-12-03 12:00:00"):
        return [row["kind"] for row in json.loads(ok("audit", "Oakfield", "--json").stdout)]


# ---------------------------------------------------------------- member set


def test_a_new_number_readdresses_what_is_queued_and_leaves_history(vera_at_nine, ok, engine, ticker):
    ticker(utc(2026, 12, 1, 9, 0))  # Vera's prompt leaves for the old number
    ticker(utc(2026, 12, 1, 9, 30))  # no reply: Jo is asked to ring Vera on her (old) number
    with session_scope(engine) as session:
        # Hold Jo's ask in the outbox, as if the provider were slow: it must carry the new number.
        ask = session.scalars(select(Message).where(Message.kind == "escalation")).one()
        ask.state = "queued"
    with freeze_time("2026-12-01 09:31:00"):
        out = ok("member", "set", "Oakfield", "Vera", "--phone", NEW_VERA).stdout
    assert out == "Vera: phone now 07911 ***009.\n"
    [first] = sent(engine, kind="checkin")
    assert first.to_phone == "+447911100001"  # what was sent stays as it was
    [ask] = sent(engine, kind="escalation")
    assert "07911 100009" in ask.body and "07911 100001" not in ask.body
    ticker(utc(2026, 12, 2, 9, 0))
    assert prompts_to(engine, "+447911100009") == [utc(2026, 12, 2, 9, 0)]
    assert "member_changed" in audit_kinds(ok)


def test_a_new_name_is_in_every_text_still_waiting_but_not_in_a_members_own_words(vera_at_nine, ok, engine, ticker):
    ticker(utc(2026, 12, 1, 9, 0))
    ticker(utc(2026, 12, 1, 9, 30))  # no reply: Jo is asked to ring Vera
    with freeze_time("2026-12-01 09:32:00"):
        ok("receive", "--from", JO, "Vera said Vera's fine but Veranda door stuck")  # forwarded
    with session_scope(engine) as session:
        for message in session.scalars(select(Message).where(Message.kind != "checkin")):
            message.state = "queued"  # held in the outbox, as if the provider were slow
        waiting = {m.id: m.body for m in session.scalars(select(Message).where(Message.state == "queued"))}
    assert any("Vera" in body for body in waiting.values())
    with freeze_time("2026-12-01 09:33:00"):
        assert ok("member", "set", "Oakfield", "Vera", "--name", "Verity").stdout == "Verity: name Vera -> Verity.\n"
    with session_scope(engine) as session:
        after = {m.id: (m.template, m.body) for m in session.scalars(select(Message).where(Message.id.in_(waiting)))}
        [first] = session.scalars(select(Message).where(Message.kind == "checkin")).all()
        assert "Vera" in first.body  # what was sent stays as it was
    [ask] = [body for template, body in after.values() if template == "escalation"]
    assert "Verity" in ask and "Vera" not in ask
    forwards = [body for template, body in after.values() if template == "forward"]
    assert forwards and all(body.endswith("Vera said Vera's fine but Veranda door stuck") for body in forwards)


def test_a_prompt_held_by_quiet_hours_goes_to_the_new_number(vera_at_nine, ok, engine, ticker):
    with freeze_time("2026-12-01 08:00:00"):
        ok("group", "set", "Oakfield", "--quiet", "21:00-09:30")
    ticker(utc(2026, 12, 1, 9, 0))  # Vera's prompt is queued, held until 09:30
    [held] = sent(engine, kind="checkin")
    assert (held.state, held.to_phone) == ("queued", "+447911100001")
    with freeze_time("2026-12-01 09:10:00"):
        ok("member", "set", "Oakfield", "Vera", "--phone", NEW_VERA)
    ticker(utc(2026, 12, 1, 9, 30))
    [prompt] = sent(engine, kind="checkin")
    assert (prompt.state, prompt.to_phone) == ("sent", "+447911100009")


def test_member_set_changes_name_roles_channel_and_language(oakfield, ok):
    with freeze_time("2026-12-01 08:00:00"):
        out = ok("member", "set", "Oakfield", "Jo", "--name", "Joanne", "--role", "peer", "--role", "organiser",
                 "--channel", "voice", "--language", "cy").stdout
    assert out == ("Joanne: name Jo -> Joanne; channel sms -> voice; roles peer -> peer, organiser; "
                   "language en -> cy.\n")
    [jo] = [m for m in json.loads(ok("member", "list", "Oakfield", "--json").stdout) if m["name"] == "Joanne"]
    assert (jo["roles"], jo["channel"], jo["language"]) == (["peer", "organiser"], "voice", "cy")


def test_a_shared_phone_needs_shared(oakfield, ok, run_cli, engine):
    before = snapshot(engine)
    refused = run_cli("member", "add", "Oakfield", "Bill", "--phone", VERA)
    assert refused.exit_code == 1
    assert refused.stderr == "Error: Vera in Oakfield already has that number; if they share a phone, add --shared.\n"
    assert snapshot(engine) == before
    ok("member", "add", "Oakfield", "Bill", "--phone", VERA, "--shared")
    refused = run_cli("member", "set", "Oakfield", "Jo", "--phone", SAM)
    assert refused.exit_code == 1 and "Sam in Oakfield already has that number" in refused.stderr
    ok("member", "set", "Oakfield", "Jo", "--phone", SAM, "--shared")


def test_a_number_in_another_group_is_allowed_with_a_warning_naming_no_group(oakfield, ok):
    ok("group", "add", "Secret Circle", "--timezone", "Europe/London")
    result = ok("member", "add", "Secret Circle", "Vee", "--phone", VERA)
    assert result.stderr.startswith("Warning: that number is also a member's in another group")
    assert "Oakfield" not in result.stderr and "Oakfield" not in result.stdout
    assert "Vera" not in result.stderr


def test_the_grandparents_preset_says_a_mobile_gets_calls(ok):
    ok("group", "add", "Gran", "--timezone", "Europe/London", "--kind", "grandparents")
    out = ok("member", "add", "Gran", "Vera", "--phone", VERA).stdout
    assert "Note: Gran is a grandparents group, so members get voice calls, mobiles too; use --channel sms" in out
    out = ok("member", "add", "Gran", "Jo", "--phone", JO, "--channel", "sms").stdout
    assert "Note" not in out


# ---------------------------------------------------------------- check-ins


def test_the_same_checkin_twice_is_refused_pointing_at_checkin_set(vera_at_nine, run_cli, engine):
    before = snapshot(engine)
    result = run_cli("checkin", "add", "Oakfield", "Vera", "--at", "9:00", "--escalate-to", "Sam")
    assert result.exit_code == 1
    assert result.stderr == ("Error: Vera already has a check-in at 09:00 (daily); to change it use: "
                             "phonetree checkin set Oakfield Vera --at 09:00 ...\n")
    assert snapshot(engine) == before


def test_todays_nine_moved_to_eleven_at_eight_is_sent_at_eleven_once(vera_at_nine, ok, engine, ticker):
    ticker(utc(2026, 12, 1, 7, 0))  # today's and tomorrow's 09:00 are planned
    with freeze_time("2026-12-01 08:00:00"):
        out = ok("checkin", "set", "Oakfield", "Vera", "--at", "11:00").stdout
    assert out == "Vera's check-in: time 09:00 -> 11:00. Next: Tue 01 Dec 11:00 GMT.\n"
    for hour in range(8, 24):
        ticker(utc(2026, 12, 1, hour, 0))
    for hour in range(0, 24):
        ticker(utc(2026, 12, 2, hour, 0))
    assert prompts_to(engine, "+447911100001") == [utc(2026, 12, 1, 11), utc(2026, 12, 2, 11)]
    assert "plan_changed" in audit_kinds(ok)


def test_a_move_after_todays_was_sent_does_not_send_it_twice(vera_at_nine, ok, engine, ticker):
    ticker(utc(2026, 12, 1, 9, 0))
    with freeze_time("2026-12-01 09:05:00"):
        ok("receive", "--from", VERA, "OK")
        ok("checkin", "set", "Oakfield", "Vera", "--at", "11:00")
    for hour in range(9, 24):
        ticker(utc(2026, 12, 1, hour, 10))
    ticker(utc(2026, 12, 2, 11, 0))
    assert prompts_to(engine, "+447911100001") == [utc(2026, 12, 1, 9), utc(2026, 12, 2, 11)]


def test_days_window_contacts_and_wait_apply_to_the_next_checkin(vera_at_nine, ok, engine, ticker):
    ticker(utc(2026, 12, 1, 7, 0))
    with freeze_time("2026-12-01 08:00:00"):
        out = ok("checkin", "set", "Oakfield", "Vera", "--days", "mon,wed", "--window", "1h",
                 "--escalate-to", "Margaret", "--escalation-wait", "10m").stdout
    assert "days daily -> mon,wed; window 30m -> 1h; escalation wait 20m -> 10m; contacts Jo, Sam -> Margaret" in out
    assert "Next: Wed 02 Dec 09:00 GMT" in out
    # Tuesday's 09:00 (already planned) is gone; Wednesday's has the new window and contact.
    for minute in range(0, 26 * 60, 30):
        ticker(utc(2026, 12, 1, 0, 0) + timedelta(minutes=minute + 8 * 60))
    prompts = prompts_to(engine, "+447911100001")
    assert prompts == [utc(2026, 12, 2, 9)]
    with session_scope(engine) as session:
        wed = session.scalars(select(CheckIn).where(CheckIn.occurrence == "2026-12-02")).one()
        assert (wed.window_s, wed.escalation_wait_s) == (3600, 600)
    ticker(utc(2026, 12, 2, 10, 0))  # the hour's window closes: Margaret, not Jo, is asked
    assert [m.to_phone for m in sent(engine, kind="escalation")] == ["+447911100004"]


def test_a_member_with_two_checkins_picks_one_with_at(vera_at_nine, ok, run_cli, engine):
    with freeze_time("2026-11-30 12:00:00"):
        ok("checkin", "add", "Oakfield", "Vera", "--at", "18:00", "--escalate-to", "Jo")
    before = snapshot(engine)
    result = run_cli("checkin", "set", "Oakfield", "Vera", "--window", "45m")
    assert result.stderr == "Error: Vera has check-ins at 09:00, 18:00; say which with --at HH:MM.\n"
    result = run_cli("checkin", "set", "Oakfield", "Vera", "--at", "10:00", "--window", "45m")
    assert result.stderr == "Error: Vera has no check-in at 10:00; theirs are at 09:00, 18:00.\n"
    result = run_cli("checkin", "set", "Oakfield", "Vera", "--at", "09:00", "--to", "18:00")
    assert "Vera already has a check-in at 18:00" in result.stderr
    assert snapshot(engine) == before
    with freeze_time("2026-11-30 13:00:00"):
        ok("checkin", "set", "Oakfield", "Vera", "--at", "18:00", "--to", "17:30")
    listed = json.loads(ok("checkin", "list", "Oakfield", "--json").stdout)
    assert [(p["member"], p["at"]) for p in listed] == [("Vera", "09:00"), ("Vera", "17:30")]


def test_checkin_list_shows_time_days_window_contacts_and_next_due_local(vera_at_nine, ok):
    with freeze_time("2026-12-01 09:30:00"):
        out = ok("checkin", "list", "Oakfield").stdout
        data = json.loads(ok("checkin", "list", "Oakfield", "--json").stdout)
    assert out.splitlines() == [
        "Times are Europe/London local time.",
        "Vera                 09:00  daily        window 30m    then Jo, Sam; next Wed 02 Dec 09:00 GMT"]
    assert data[0]["next_due"] == "2026-12-02T09:00:00+00:00" and data[0]["escalate_to"] == ["Jo", "Sam"]


def test_a_ten_oclock_checkin_in_british_summer_time_is_listed_at_ten(ok):
    with freeze_time("2026-07-01 08:00:00"):
        ok("group", "add", "Summer", "--timezone", "Europe/London")
        ok("member", "add", "Summer", "Vera", "--phone", VERA)
        ok("member", "add", "Summer", "Jo", "--phone", JO)
        ok("checkin", "add", "Summer", "Vera", "--at", "10:00", "--escalate-to", "Jo")
        out = ok("checkin", "list", "Summer").stdout
        data = json.loads(ok("checkin", "list", "Summer", "--json").stdout)
    assert "next Wed 01 Jul 10:00 BST" in out
    assert data[0]["next_due"] == "2026-07-01T09:00:00+00:00"  # JSON stays UTC


def test_a_removed_checkin_sends_nothing_more(vera_at_nine, ok, engine, ticker):
    ticker(utc(2026, 12, 1, 7, 0))
    with freeze_time("2026-12-01 08:00:00"):
        out = ok("checkin", "remove", "Oakfield", "Vera").stdout
    assert out == "Removed Vera's check-in (daily at 09:00).\n"
    for hour in range(8, 48):
        ticker(utc(2026, 12, 1, 0) + timedelta(hours=hour))
    assert sent(engine, kind="checkin") == []
    assert json.loads(ok("checkin", "list", "Oakfield", "--json").stdout) == []
    assert "plan_removed" in audit_kinds(ok)


def test_a_checkin_removed_in_flight_finishes_its_life(vera_at_nine, ok, engine, ticker):
    ticker(utc(2026, 12, 1, 9, 0))
    with freeze_time("2026-12-01 09:10:00"):
        out = ok("checkin", "remove", "Oakfield", "Vera").stdout
    assert "The one under way now carries on until it is answered or resolved." in out
    ticker(utc(2026, 12, 1, 9, 30))  # its window closes: Jo is still asked
    ticker(utc(2026, 12, 1, 9, 50))  # ... and when Jo doesn't reply, Sam
    assert [m.to_phone for m in sent(engine, kind="escalation")] == ["+447911100002", "+447911100003"]
    with freeze_time("2026-12-01 09:55:00"):
        ok("receive", "--from", SAM, "DONE")
    ticker(utc(2026, 12, 2, 9, 0))
    assert len(sent(engine, kind="checkin")) == 1


# ---------------------------------------------------------------- rotas


def test_rota_list_and_remove(oakfield, ok, engine, ticker):
    with freeze_time("2026-11-30 12:00:00"):  # a Monday
        ok("rota", "add", "Oakfield", "tuesday-calls", "--kind", "pairs", "--on", "tue", "--at", "18:00",
           "--members", "Jo,Sam,Vera,Margaret")
        out = ok("rota", "list", "Oakfield").stdout
        data = json.loads(ok("rota", "list", "Oakfield", "--json").stdout)
    assert out == ("tuesday-calls        pairs  weekly       18:00  next Tue 01 Dec 18:00 GMT; "
                   "Jo, Sam, Vera, Margaret\n")
    assert data[0]["next_round"] == "2026-12-01T18:00:00+00:00"
    ticker(utc(2026, 12, 1, 18, 0))  # round 0: two call prompts
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(Message).where(Message.kind == "call_prompt")) == 2
    with freeze_time("2026-12-01 19:00:00"):
        out = ok("rota", "remove", "Oakfield", "tuesday-calls").stdout
        assert ok("rota", "list", "Oakfield").stdout.startswith("No rotas in Oakfield yet.")
    assert out == "Removed the rota tuesday-calls. 2 call(s) not yet confirmed were closed.\n"
    ticker(utc(2026, 12, 8, 18, 0))
    assert sent(engine, kind="call_prompt") == []
    assert "rota_removed" in audit_kinds(ok)


def test_rota_remove_tells_whoever_already_has_a_prompt_and_nobody_else(oakfield, ok, engine, ticker):
    with freeze_time("2026-11-30 12:00:00"):  # a Monday
        ok("rota", "add", "Oakfield", "tuesday-calls", "--kind", "pairs", "--on", "tue", "--at", "18:00",
           "--members", "Jo,Sam,Vera,Margaret")
    ticker(utc(2026, 12, 1, 18, 0))  # round 0: two call prompts leave
    with session_scope(engine) as session:
        prompts = session.scalars(select(Message).where(Message.kind == "call_prompt")).all()
        callers = sorted(m.to_phone for m in prompts)
        # One caller has already rung and said so: they are not told anything more.
        done_by = callers[0]
    with freeze_time("2026-12-01 18:30:00"):
        ok("receive", "--from", done_by, "DONE")
    with freeze_time("2026-12-01 19:00:00"):
        assert "1 call(s) not yet confirmed were closed." in ok("rota", "remove", "Oakfield", "tuesday-calls").stdout
    ticker(utc(2026, 12, 1, 19, 1))
    told = sent(engine, template="call_cancelled")
    assert [m.to_phone for m in told] == [callers[1]]
    assert "no need to ring" in told[0].body and "this week" in told[0].body
    ticker(utc(2026, 12, 1, 19, 30))  # once only
    assert len(sent(engine, template="call_cancelled")) == 1


def test_rota_remove_before_the_prompt_leaves_sends_nothing(oakfield, ok, engine, ticker):
    with freeze_time("2026-11-30 12:00:00"):
        ok("rota", "add", "Oakfield", "tuesday-calls", "--kind", "pairs", "--on", "tue", "--at", "18:00",
           "--members", "Jo,Sam,Vera,Margaret")
        ok("group", "set", "Oakfield", "--quiet", "17:00-20:00")  # the prompts wait in the outbox
    ticker(utc(2026, 12, 1, 18, 0))
    assert sent(engine, kind="call_prompt", state="sent") == []
    with freeze_time("2026-12-01 18:30:00"):
        ok("rota", "remove", "Oakfield", "tuesday-calls")
    ticker(utc(2026, 12, 1, 20, 0))
    assert sent(engine, kind="call_prompt") == [] and sent(engine, template="call_cancelled") == []


# ---------------------------------------------------------------- group remove


def test_group_remove_stands_down_whoever_was_asked_then_erases_everything(vera_at_nine, ok, engine, ticker):
    ticker(utc(2026, 12, 1, 9, 0))
    ticker(utc(2026, 12, 1, 9, 30))  # Jo has been asked to ring Vera
    with freeze_time("2026-12-01 09:35:00"):
        out = ok("group", "remove", "Oakfield", "--yes").stdout
    assert out == "Removed Oakfield. 1 open check-in(s) closed; 1 person(s) told they needn't ring.\n"
    # Told it is dealt with, not that Vera "has been in touch" (she hasn't)
    [stand_down] = sent(engine, template="stand_down_closed")
    assert (stand_down.to_phone, stand_down.state) == ("+447911100002", "sent")
    assert stand_down.body == "Hi Jo, an organiser has dealt with Vera now, so no need to ring. Thank you."
    with session_scope(engine) as session:
        for model in (Group, Member, CheckIn):
            assert session.scalar(select(func.count()).select_from(model)) == 0
        assert session.scalar(select(func.count()).select_from(Message)) == 1  # only the stand-down
    ticker(utc(2026, 12, 2, 9, 0))
    assert len(sent(engine)) == 1


# ---------------------------------------------------------------- refusals


BAD = {
    "set unknown member": (["member", "set", "Oakfield", "Zed", "--phone", VERA], "no member called 'Zed'"),
    "set bad phone": (["member", "set", "Oakfield", "Vera", "--phone", "07700 900123"], "not a real phone number"),
    "set nothing": (["member", "set", "Oakfield", "Vera"], "nothing to change: Vera is already like that"),
    "set same phone": (["member", "set", "Oakfield", "Vera", "--phone", VERA], "nothing to change"),
    "set name clash": (["member", "set", "Oakfield", "Vera", "--name", "jo"], "already has a member called 'Jo'"),
    "set landline sms": (["member", "set", "Oakfield", "Vera", "--phone", "01522 500001", "--channel", "sms"],
                         "use --channel voice"),
    "set bad language": (["member", "set", "Oakfield", "Vera", "--language", "klingon"], "klingon"),
    "checkin set none": (["checkin", "set", "Oakfield", "Jo", "--at", "10:00"], "Jo has no check-in"),
    "checkin set quiet": (["checkin", "set", "Oakfield", "Vera", "--at", "22:00"], "quiet hours"),
    "checkin set nothing": (["checkin", "set", "Oakfield", "Vera", "--at", "09:00"], "nothing to change"),
    "checkin set contact": (["checkin", "set", "Oakfield", "Vera", "--escalate-to", "Zed"], "no member called 'Zed'"),
    "checkin set self": (["checkin", "set", "Oakfield", "Vera", "--escalate-to", "Vera"], "own escalation contact"),
    "checkin set bad time": (["checkin", "set", "Oakfield", "Vera", "--at", "25:00"], "not a time"),
    "checkin set bad days": (["checkin", "set", "Oakfield", "Vera", "--days", "someday"], "someday"),
    "checkin remove none": (["checkin", "remove", "Oakfield", "Jo"], "Jo has no check-in"),
    "checkin remove wrong time": (["checkin", "remove", "Oakfield", "Vera", "--at", "10:00"], "no check-in at 10:00"),
    "checkin list unknown": (["checkin", "list", "Nowhere"], "no group called 'Nowhere'"),
    "rota remove unknown": (["rota", "remove", "Oakfield", "fridays"], "no rota called 'fridays'"),
    "rota list unknown": (["rota", "list", "Nowhere"], "no group called 'Nowhere'"),
    "group remove unconfirmed": (["group", "remove", "Oakfield"], "add --yes to confirm"),
    "group remove unknown": (["group", "remove", "Nowhere", "--yes"], "no group called 'Nowhere'"),
}


@pytest.mark.parametrize("args, message", BAD.values(), ids=BAD.keys())
def test_corrections_refused_change_nothing(vera_at_nine, run_cli, engine, args, message):
    before = snapshot(engine)
    with freeze_time("2026-12-01 08:00:00"):
        result = run_cli(*args)
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], result.stderr
    assert result.stdout == ""
    assert snapshot(engine) == before
