"""`phonetree run` with PHONETREE_GATEWAY=twilio, as a real process, against the local Twilio
stand-in: the real twilio client over real sockets one way, signed webhooks over real HTTP the
other, behind a "proxy" (signed for https://..., delivered to http://127.0.0.1)."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import IO, Callable

import pytest
from sqlalchemy import select

from phonetree import clock
from phonetree.db import dispose_all, get_engine, session_scope
from phonetree.models import CheckIn, CheckInPlan, Group
from phonetree.local_times import local_date
from tests.conftest import JO, LANDLINE, MARGARET, VERA
from tests.twilio_standin import TwilioStandIn

PUBLIC = "https://tree.example.org"
E164 = {VERA: "+447911100001", JO: "+447911100002", MARGARET: "+447911100004", LANDLINE: "+441522500001"}


def webhook_port(log: IO[str]) -> int | None:
    """The port `phonetree run --port 0` says it listens on, once it has said so. (Port 0: the
    server binds a free port itself, so no other process can take it between choice and use.)"""
    log.seek(0)
    found = re.search(r"webhooks on http://127\.0\.0\.1:(\d+)", log.read())
    return int(found.group(1)) if found else None


def wait_for(condition: Callable[[], object], what: str, timeout: float = 20.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def make_due_now(url: str) -> None:
    """Today's check-ins are due a moment ago (the plans say 10:00; the test can't wait).
    "Today" is the group's local date, as the planner writes it: the UTC date is yesterday's
    in London between midnight and 01:00 BST, and a check-in of another day is reported missed."""
    engine = get_engine(url)
    now = clock.now()
    with session_scope(engine) as session:
        for plan, zone in session.execute(select(CheckInPlan, Group.timezone).join(Group, Group.id == CheckInPlan.group_id)):
            session.add(CheckIn(plan_id=plan.id, group_id=plan.group_id, member_id=plan.member_id,
                                occurrence=local_date(now, zone).isoformat(), due_at=now - timedelta(seconds=1),
                                state="scheduled", window_s=plan.window_s, reminder_s=None,
                                escalation_wait_s=plan.escalation_wait_s, escalation_step=-1))
    dispose_all()


def states(url: str) -> dict[str, str]:
    engine = get_engine(url)
    with session_scope(engine) as session:
        # Tomorrow's are planned already (state scheduled): only today's matter here.
        rows = session.execute(select(CheckIn.member_id, CheckIn.state, CheckIn.urgent)
                               .where(CheckIn.state != "scheduled")).all()
        from phonetree.models import Member
        names = {m.id: m.name for m in session.scalars(select(Member))}
    dispose_all()
    return {names[mid] + (" (help)" if urgent else ""): state for mid, state, urgent in rows}


@pytest.fixture
def group_db(tmp_path: Path, ok_at) -> str:
    url = f"sqlite:///{tmp_path / 'tree.db'}"
    run = ok_at(url)
    run("group", "add", "Oakfield", "--timezone", "Europe/London")
    run("group", "set", "Oakfield", "--quiet", "off")
    run("member", "add", "Oakfield", "Vera", "--phone", VERA)
    run("member", "add", "Oakfield", "Lil", "--phone", LANDLINE)
    run("member", "add", "Oakfield", "Jo", "--phone", JO)
    run("member", "add", "Oakfield", "Margaret", "--phone", MARGARET, "--role", "organiser")
    run("checkin", "add", "Oakfield", "Vera", "--at", "10:00", "--escalate-to", "Jo", "--reminder", "off")
    run("checkin", "add", "Oakfield", "Lil", "--at", "10:00", "--escalate-to", "Jo", "--reminder", "off")
    make_due_now(url)
    return url


def test_phonetree_run_with_twilio_end_to_end(group_db: str, tmp_path: Path):
    with TwilioStandIn(public_url=PUBLIC, number="+441522000000") as standin:
        standin.fail_next("Messages", status=500)  # Twilio has a bad moment on the first send
        env = {**os.environ, "PHONETREE_DATABASE_URL": group_db, "PHONETREE_GATEWAY": "twilio",
               "TWILIO_ACCOUNT_SID": standin.account_sid, "TWILIO_AUTH_TOKEN": standin.auth_token,
               "TWILIO_FROM_NUMBER": "+441522000000", "TWILIO_API_BASE_URL": standin.base_url,
               "PHONETREE_PUBLIC_URL": PUBLIC, "PHONETREE_TICK_SECONDS": "0.5", "PYTHONUNBUFFERED": "1"}
        log = open(tmp_path / "run.log", "w+")
        process = subprocess.Popen([sys.executable, "-m", "cli", "run", "--port", "0"],
                                   env=env, stdout=log, stderr=subprocess.STDOUT, cwd=Path(__file__).parent.parent)
        try:
            port = wait_for(lambda: webhook_port(log), "the webhook server's port")
            assert isinstance(port, int)
            standin.deliver_to = f"http://127.0.0.1:{port}"  # the "proxy" forwards to it
            wait_for(lambda: _listening(port), "the webhook server")
            # The SMS check-in: a 500 first, then sent once after a jittered back-off.
            sms = wait_for(lambda: [m for m in standin.messages if m.params.get("To") == E164[VERA]],
                           "Vera's check-in")
            assert len(sms) == 1 and "Reply OK" in sms[0].params["Body"]
            assert sms[0].params["StatusCallback"].startswith(f"{PUBLIC}/twilio/status/message?m=")
            posts = standin.requests_to("Messages")
            assert [r.status for r in posts][:2] == [500, 201]
            # The voice check-in for the landline, with a one-key Gather.
            call = wait_for(lambda: [c for c in standin.calls if c.params.get("To") == E164[LANDLINE]],
                            "Lil's call")[0]
            assert "<Gather" in call.params["Twiml"] and 'language="en-GB"' in call.params["Twiml"]
            # Delivery receipts move forward only: a late "sent" after "delivered" changes nothing.
            assert standin.send_status(sms[0].sid, "delivered")[0] == 200
            assert standin.send_status(sms[0].sid, "sent")[0] == 200
            # A signed reply: Vera is OK.
            status, body = standin.send_inbound_sms(E164[VERA], "OK thanks")
            assert status == 200 and body.startswith("<?xml") and "<Response" in body
            # Lil presses 1.
            status, twiml = standin.press_key(call.sid, "1")
            assert status == 200 and "Glad you're OK" in twiml and "<Hangup" in twiml
            assert states(group_db) == {"Vera": "answered", "Lil": "answered"}
            # A forged request and an unsigned one change nothing.
            forged = standin.post(f"{PUBLIC}/twilio/sms", {"From": E164[VERA], "Body": "HELP",
                                                          "MessageSid": "SM" + uuid.uuid4().hex}, signature="bm9wZQ==")
            unsigned = standin.post(f"{PUBLIC}/twilio/sms", {"From": E164[VERA], "Body": "HELP"}, signed=False)
            assert forged[0] == 403 and unsigned[0] == 403
            # HELP, delivered twice by Twilio (same MessageSid): Jo is asked once.
            sid = "SM" + uuid.uuid4().hex
            assert standin.send_inbound_sms(E164[VERA], "HELP", MessageSid=sid, SmsSid=sid)[0] == 200
            assert standin.send_inbound_sms(E164[VERA], "HELP", MessageSid=sid, SmsSid=sid)[0] == 200
            wait_for(lambda: [m for m in standin.messages if m.params.get("To") == E164[JO]], "Jo's ask")
            time.sleep(1.5)  # a few more ticks: nothing else may go to Jo
            to_jo = [m for m in standin.messages if m.params.get("To") == E164[JO]]
            assert len(to_jo) == 1 and "asked for a call" in to_jo[0].params["Body"]
            assert states(group_db)["Vera (help)"] == "escalating"
        finally:
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=15)
            log.seek(0)
            output = log.read()
        assert code == 0, output
        assert "+447911100001" not in output  # no full numbers in the log
        assert "OK thanks" not in output and "Reply OK" not in output  # no message bodies


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
