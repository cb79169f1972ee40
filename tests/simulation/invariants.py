"""The promise, checked after every step against phonetree's own database (its model, read
through a separate engine) and the ground truth of what people did and the network delivered.

(i)   every check-in its member did not answer has, within policy time (window + each contact's
      wait + slack) plus any outage, down time or clock error, either a person who said DONE, or
      an open item on `status` with an organiser alerted by a message that really left;
(ii)  a member who answered OK before anyone was asked is never escalated, nobody is asked
      about them, and nobody is asked before their window has run;
(iii) a HELP (or a distress phrase) is never stood down without DONE, an organiser's resolve or
      the member's own OK, and reaches every group where the number has a check-in open;
(iv)  `status` never says someone said CANT who didn't;
(v)   no message goes out twice, beyond the README's duplicate window (a send that timed out
      after leaving, or a crash between the provider taking it and phonetree marking it);
(vi)  nothing is lost across crashes: every planned occurrence exists at its local time, every
      reply answered 200 is recorded, no message is left behind in the queue or a dead lease.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from phonetree.checkins import OPEN_CHECKIN_STATES
from phonetree.models import CheckIn, Group, Inbound, Member, Message, Task
from phonetree.status import group_status
from tests.simulation.actors import ASKS, ORGANISER_ASKS, PROMPTS
from tests.simulation.truth import Said

if TYPE_CHECKING:
    from tests.simulation.runner import Sim

LONDON = ZoneInfo("Europe/London")
SLACK = timedelta(minutes=25)  # ticks, redials, a phone-off retry (10 min), callbacks
RECOVERY = timedelta(minutes=5)  # after an outage: backoff capped at about a minute, then a tick
ANSWERS = {"ok", "free", "key_ok"}  # what counts as contact from the member (README: any text)
HELPS = {"help", "key_help", "distress"}
DONES = {"done", "key_done"}
CANTS = {"cant", "key_cant"}
REPLIES_TO_HOLDERS = {"thanks", "cant_ok"}  # phonetree's answers to a holder's DONE or CANT (a done_check asks again)


@dataclass
class Violation:
    code: str  # i, ii, iii, iv, v, vi (and a suffix naming the case)
    title: str
    expected: str
    found: str
    checkin_id: int | None = None
    member_id: int | None = None

    def line(self) -> str:
        return f"({self.code}) {self.title}"


class Checker:
    def __init__(self, sim: "Sim") -> None:
        self.sim = sim
        self.settled: set[int] = set()
        self.help_expectations: list[tuple[Said, set[int]]] = []
        self.ticked_at: datetime | None = None
        self.sids_checked = (0, 0)
        self.replies_lost: list[tuple[Said, str]] = []
        self.stand_downs_seen = 0
        self.stood_down: dict[tuple[str, int], int] = {}  # (phone, check-in) -> stand-downs delivered
        self._watch: Any = None  # a DBAPI connection of its own, for PRAGMA data_version
        self._version: int | None = None
        self._rows: tuple[list[CheckIn], list[Task]] | None = None

    # -- bookkeeping at the moment something happens

    def after_tick(self, at: datetime) -> None:
        self.ticked_at = at

    def after_reply(self, said: Said, before: dict[int, list[tuple[int, int]]]) -> None:
        """A reply phonetree answered 200: note what it must have done."""
        truth = self.sim.truth
        if said.meaning in ("ok", "key_ok"):
            # Open, with its prompt on the phone, and nobody asked yet: answered before escalation.
            delivered = {d.checkin_id for d in truth.deliveries if d.template in PROMPTS and d.to == said.phone}
            for checkins in before.values():
                for checkin_id, tasks in checkins:
                    if tasks == 0 and checkin_id in delivered and checkin_id not in truth.help_items:
                        truth.answered_unasked.setdefault(checkin_id, said.clock)
        if said.meaning in DONES | CANTS and said.about_task is not None:
            with Session(self.sim.observer) as session:
                task = session.get(Task, said.about_task)
                # A DONE from someone whose own call request is open is read as their words and
                # forwarded, not applied to what they hold (inbound._task_reply's documented rule).
                own_help = said.meaning in DONES and session.scalar(
                    select(CheckIn.id).join(Member, Member.id == CheckIn.member_id)
                    .where(Member.phone == said.phone, CheckIn.help_requested_at.is_not(None),
                           CheckIn.state.in_(OPEN_CHECKIN_STATES)).limit(1)) is not None
                # A DONE that may repeat the sender's last one about the same member is answered
                # with a request to confirm (inbound._may_repeat_a_done): held, not lost.
                confirm = said.meaning in DONES and task is not None and session.scalar(
                    select(Message.id).where(Message.dedupe_key == f"task:{task.id}:done_check")) is not None
                if task is not None and task.state in ("done", "cant"):
                    pass  # acted on (or repeated)
                elif task is not None and not own_help and not confirm:
                    self.replies_lost.append((said, task.state))
        if said.meaning in HELPS:
            expected = {m for m, open_ in before.items() if open_} or set(before)
            with Session(self.sim.observer) as session:
                for member_id in expected:
                    for checkin in session.scalars(select(CheckIn).where(
                            CheckIn.member_id == member_id, CheckIn.state.in_(OPEN_CHECKIN_STATES))):
                        if checkin.urgent:
                            truth.help_items.setdefault(checkin.id, (said.real, said.clock))
            self.help_expectations.append((said, expected))

    # -- after every step

    def rows(self, session: Session) -> tuple[list[CheckIn], list[Task]]:
        """Every check-in and task, as phonetree's database has them now. On SQLite, the rows
        read at the last check when nothing has been committed since (PRAGMA data_version,
        asked on a connection of the checker's own that never writes: it changes when any other
        connection commits): the same rows, not re-read. About two steps in five write nothing
        (a tick with nothing due, a webhook phonetree ignores, a fault starting)."""
        version = None
        if self.sim.url.startswith("sqlite"):
            if self._watch is None:
                self._watch = self.sim.observer.raw_connection()
            cursor = self._watch.cursor()
            version = cursor.execute("PRAGMA data_version").fetchone()[0]
            cursor.close()
            if version == self._version and self._rows is not None:
                return self._rows
        # Loaded column values stay readable once the session has closed (nothing reads a
        # relationship of these, which would need it open).
        self._rows = (list(session.scalars(select(CheckIn).order_by(CheckIn.id))),
                      list(session.scalars(select(Task).order_by(Task.id))))
        self._version = version
        return self._rows

    def close(self) -> None:
        if self._watch is not None:
            self._watch.close()
            self._watch = None

    def check(self, final: bool = False) -> Violation | None:
        with Session(self.sim.observer) as session:
            checkins, tasks = self.rows(session)
            for found in (self.help_reached(session, checkins), self.reply_acted_on(), self.answered_not_escalated(checkins, tasks),
                          self.not_early(checkins, tasks), self.closures(checkins, tasks),
                          self.cant_is_said(session, tasks), self.no_duplicates(),
                          self.stand_downs_accurate(checkins),
                          self.nothing_lost(session, checkins), self.deadlines(session, checkins, final)):
                if found is not None and not any(s in found.code for s in self.sim.skip):  # e.g. "-outage"
                    return found
        return None

    def said_by(self, phone: str, meanings: set[str], after: datetime | None = None,
                until: datetime | None = None) -> list[Said]:
        return [s for s in self.sim.truth.accepted() if s.phone == phone and s.meaning in meanings
                and (after is None or s.real >= after) and (until is None or s.real <= until)]

    def phone_of(self, member_id: int) -> str:
        return self.sim.people[self.sim.person_of[member_id]].e164

    def name_of(self, member_id: int) -> str:
        return self.sim.people[self.sim.person_of[member_id]].name

    def first_prompt(self, checkin_id: int) -> Any:
        return next((d for d in self.sim.truth.deliveries if d.checkin_id == checkin_id and d.template in PROMPTS), None)

    # (iii) part one: a HELP reaches every group where the number has a check-in open
    def help_reached(self, session: Session, checkins: list[CheckIn]) -> Violation | None:
        while self.help_expectations:
            said, expected = self.help_expectations.pop(0)
            for member_id in expected:
                held = [c for c in checkins if c.member_id == member_id and c.id in self.sim.truth.help_items]
                if not held:
                    return Violation(
                        "iii-not-raised", f"{said.person.title()}'s {said.text!r} raised no call for {self.name_of(member_id)} "
                        f"in {self.sim.group_of[member_id]}",
                        expected=f"an open, urgent item for {self.name_of(member_id)} in {self.sim.group_of[member_id]} "
                        "(a HELP or distress reaches each group where the number has a check-in open, or every "
                        "group when none is)",
                        found="states now: " + (", ".join(f"#{c.id} {c.state}{' urgent' if c.urgent else ''}"
                                                         f" ({c.outcome})" for c in checkins
                                                         if c.member_id == member_id) or "no check-in at all"),
                        member_id=member_id)
        return None

    # (vi): a DONE or CANT answered 200 about an ask still open has its effect
    def reply_acted_on(self) -> Violation | None:
        while self.replies_lost:
            said, state = self.replies_lost.pop(0)
            if state == "asked":
                return Violation("vi-answer-lost", f"{said.person.title()}'s {said.text!r} was answered 200 but their ask is still open",
                                 expected=f"task #{said.about_task} {'done' if said.meaning in DONES else 'cant'}",
                                 found=f"task #{said.about_task} {state}", checkin_id=said.about_checkin)
        return None

    # (ii)
    def answered_not_escalated(self, checkins: list[CheckIn], tasks: list[Task]) -> Violation | None:
        answered = self.sim.truth.answered_unasked
        for task in tasks:
            if task.checkin_id in answered:
                return Violation(
                    "ii-asked", f"{self.name_of(task.subject_id)} answered OK but {self.name_of(task.assignee_id)} was asked about them",
                    expected="nobody asked about a check-in answered OK before escalation",
                    found=f"task #{task.id} ({task.kind}) to {self.name_of(task.assignee_id)} at "
                    f"{task.asked_at.astimezone(LONDON):%H:%M}, state {task.state}",
                    checkin_id=task.checkin_id, member_id=task.subject_id)
        for checkin in checkins:
            if checkin.id in answered and checkin.state not in ("answered", "prompting", "sent"):
                return Violation(
                    "ii-state", f"{self.name_of(checkin.member_id)} answered OK but the check-in is {checkin.state}",
                    expected="answered", found=f"{checkin.state} ({checkin.outcome})",
                    checkin_id=checkin.id, member_id=checkin.member_id)
        return None

    # (ii) part two: nobody is asked before the window has run, unless the member asked
    def not_early(self, checkins: list[CheckIn], tasks: list[Task]) -> Violation | None:
        if any(f.kind == "jump" for f in self.sim.scenario.faults):
            return None  # with a clock that moved, phonetree's window and the real one differ
        by_id = {c.id: c for c in checkins}
        for task in tasks:
            checkin = by_id.get(task.checkin_id)  # type: ignore[arg-type]
            if checkin is None or task.kind != "escalation" or checkin.id in self.sim.truth.help_items:
                continue
            person = self.sim.people[self.sim.person_of[checkin.member_id]]
            if person.problem or self.said_by(person.e164, HELPS | {"stop", "after_help"}):
                continue  # an undeliverable prompt, an opt-out or a call asked for go to a person at once
            prompt = self.first_prompt(checkin.id)
            if prompt is not None and task.asked_at < prompt.clock + timedelta(seconds=checkin.window_s - 1):
                return Violation(
                    "ii-early" + self.transient(checkin.id), f"{self.name_of(task.assignee_id)} was asked about {person.name} before the window ran out",
                    expected=f"no ask before {(prompt.clock + timedelta(seconds=checkin.window_s)).astimezone(LONDON):%H:%M:%S}"
                    f" (the prompt left at {prompt.clock.astimezone(LONDON):%H:%M:%S}, window {checkin.window_s // 60} min)",
                    found=f"asked at {task.asked_at.astimezone(LONDON):%H:%M:%S}",
                    checkin_id=checkin.id, member_id=checkin.member_id)
        return None

    # (i) and (iii): a check-in is only closed for a reason a person gave
    def closures(self, checkins: list[CheckIn], tasks: list[Task]) -> Violation | None:
        truth = self.sim.truth
        by_id = {c.id: c for c in checkins}
        for checkin in checkins:
            if checkin.state in OPEN_CHECKIN_STATES or checkin.state in ("scheduled", "missed"):
                continue
            phone = self.phone_of(checkin.member_id)
            name = self.name_of(checkin.member_id)
            helped = truth.help_items.get(checkin.id)
            since = helped[0] if helped else None
            dones = [s for s in truth.accepted() if s.meaning in DONES and s.about_checkin == checkin.id
                     and (since is None or s.real >= since)]
            if not dones:
                # A DONE its sender meant for a later check-in of the same member (an ask of theirs
                # that had lapsed), which phonetree applied to this earlier one they still held (an
                # organiser's alert left open from the day before): the member was reached after
                # this one was due (or asked for), so it is settled, and the later one stays open
                # with someone asked (long-run seeds 11101473, 10101580, 13000013). A DONE about an
                # earlier check-in closing a later one is still a violation (9000064's kind).
                closed_by = {t.assignee_id: t.closed_at for t in tasks if t.checkin_id == checkin.id and t.state == "done"}
                dones = [s for s in truth.accepted() if s.meaning in DONES and s.about_checkin in by_id
                         and (since is None or s.real >= since)  # a HELP: reached after it was asked for
                         and by_id[s.about_checkin].member_id == checkin.member_id
                         and by_id[s.about_checkin].due_at > checkin.due_at
                         and any(self.phone_of(a) == s.phone and at == s.clock for a, at in closed_by.items())]
            resolved = [r for r in truth.resolves if r[2] == checkin.member_id and (since is None or r[0] >= since)]
            if checkin.state == "answered":
                wanted = {"ok", "key_ok"} if helped else ANSWERS | DONES | CANTS | {"after_help", "distress"}
                if not self.said_by(phone, wanted, after=since):
                    if helped:
                        return Violation(
                            "iii-stood-down", f"{name}'s HELP was stood down though nobody said DONE and {name} never said OK",
                            expected="the call stays asked for until DONE, an organiser's resolve or the member's own OK",
                            found=f"check-in #{checkin.id} {checkin.state}: {checkin.outcome}",
                            checkin_id=checkin.id, member_id=checkin.member_id)
                    return Violation(
                        "i-answered", f"{name}'s check-in was closed as answered but {name} sent nothing",
                        expected="answered only by a reply from the member", found=f"{checkin.state}: {checkin.outcome}",
                        checkin_id=checkin.id, member_id=checkin.member_id)
            elif checkin.state == "resolved":
                if not dones and not resolved and not (helped and self.said_by(phone, {"ok", "key_ok"}, after=since)):
                    return Violation(
                        "iii-resolved" if helped else "i-resolved",
                        f"{name}'s check-in was resolved but nobody said DONE about it and no organiser resolved it",
                        expected="resolved only by a DONE about this check-in or `phonetree resolve`",
                        found=f"resolved: {checkin.outcome}", checkin_id=checkin.id, member_id=checkin.member_id)
            elif checkin.state == "skipped":
                if not [s for s in truth.said if s.phone == phone and s.meaning in ("stop", "pause")]:
                    return Violation("i-skipped", f"{name}'s check-in was skipped though {name} never paused or opted out",
                                     expected="sent", found=f"skipped: {checkin.outcome}",
                                     checkin_id=checkin.id, member_id=checkin.member_id)
        return None

    # (iv), and its cousin: nobody is passed over for something that isn't true of them
    def cant_is_said(self, session: Session, tasks: list[Task]) -> Violation | None:
        truth = self.sim.truth
        for task in tasks:
            if task.state in ("asked", "done", "stood_down"):
                continue
            phone = self.phone_of(task.assignee_id)
            person = self.sim.people[self.sim.person_of[task.assignee_id]]
            # The asks that reached them: not the answers to their own reply (a "cant_ok" carries
            # the task too, and arrives after the CANT it answers; seed 10101590).
            asks = [d for d in truth.deliveries if d.task_id == task.id and d.template not in REPLIES_TO_HOLDERS]
            subject = self.name_of(task.subject_id) if task.subject_id else "?"
            if task.state == "cant":
                if [s for s in self.said_by(phone, CANTS) if not asks or s.real >= asks[0].real]:
                    continue
                on_status = []
                for group in session.scalars(select(Group)):
                    for item in group_status(session, group, self.sim.clock())["open"]:
                        on_status += [(item["member"], a["name"]) for a in item["asked"] if a["state"] == "cant"]
                shown = (person.name, subject) in {(a, m) for m, a in on_status}
                return Violation(
                    ("iv-status" if shown else "iv-task") + self.cause(session, task.id),
                    f"{'status says' if shown else 'the record says'} {person.name} said CANT about {subject}, "
                    f"but {person.name} never did",
                    expected=f"{person.name}'s ask answered only as they answered it",
                    found=self.task_found(session, task, asks), checkin_id=task.checkin_id, member_id=task.subject_id)
            if task.state == "expired":
                if asks:
                    continue
                return Violation(
                    "iv-expired-unsent" + self.cause(session, task.id),
                    f"{person.name}'s time to answer about {subject} ran out though the ask never reached them",
                    expected="a contact's wait runs from when the ask left (README; issue 11 defect 3)",
                    found=self.task_found(session, task, asks), checkin_id=task.checkin_id, member_id=task.subject_id)
            # unreachable, no_answer, or anything else that passes the task on without an answer
            stopped = [s for s in truth.said if s.phone == phone and s.meaning == "stop"]
            unanswered = any(d.message_id in truth.unanswered_calls for d in asks)
            if person.problem or person.landline or stopped or unanswered:
                continue
            return Violation(
                "iv-passed-on" + self.cause(session, task.id),
                f"{person.name} was passed over ({task.state}) about {subject}, but nothing is wrong with their phone",
                expected="a transient failure (5xx, 429, timeout) is never a person's answer: keep trying until it "
                "leaves (issue 11 defect 3)",
                found=self.task_found(session, task, asks), checkin_id=task.checkin_id, member_id=task.subject_id)
        return None

    def task_found(self, session: Session, task: Task, asks: list[Any]) -> str:
        return (f"task #{task.id} state {task.state}"
                + (f", closed {task.closed_at.astimezone(LONDON):%H:%M %Z}" if task.closed_at else "")
                + ("; its ask never reached a phone" if not asks else f"; the ask reached a phone {len(asks)} time(s)")
                + f"; messages for it: {self.message_states(session, task.id)}")

    def transient(self, checkin_id: int) -> str:
        """"-outage" when a message about this check-in failed on a transient error (issue 11 defect 3)."""
        with Session(self.sim.observer) as session:
            errors = " ".join(e or "" for e in session.scalars(select(Message.error).where(
                Message.checkin_id == checkin_id, Message.state == "failed")))
        return "-outage" if any(w in errors for w in ("HTTP 5", "rate limiting", "no answer from Twilio",
                                                      "could not connect")) else ""

    def cause(self, session: Session, task_id: int) -> str:
        """What turned the ask into a CANT, as a suffix of the code, so known bugs count apart."""
        rows = session.execute(select(Message.state, Message.error, Message.provider_status)
                               .where(Message.task_id == task_id)).all()
        errors = " ".join(f"{r.error} {r.provider_status}" for r in rows)
        if any(word in errors for word in ("HTTP 5", "rate limiting", "no answer from Twilio", "could not connect")):
            return "-outage"
        if any(word in errors for word in ("no-answer", "busy", "answering machine", "canceled")):
            return "-no-answer"
        if any(r.state == "failed" for r in rows):
            return "-undeliverable"
        return ""

    def message_states(self, session: Session, task_id: int) -> str:
        rows = session.execute(select(Message.id, Message.template, Message.state, Message.error, Message.attempts)
                               .where(Message.task_id == task_id)).all()
        return "; ".join(f"#{r.id} {r.template} {r.state} after {r.attempts} attempt(s)"
                         + (f" ({r.error})" if r.error else "") for r in rows)

    # (iv) and (v) for stand-downs (issue 12): once per person, and saying what really happened
    def stand_downs_accurate(self, checkins: list[CheckIn]) -> Violation | None:
        truth = self.sim.truth
        fresh, self.stand_downs_seen = truth.deliveries[self.stand_downs_seen:], len(truth.deliveries)
        member_of = {c.id: c.member_id for c in checkins}
        for d in fresh:
            if not d.template.startswith("stand_down") or d.checkin_id not in member_of or not d.reached:
                continue
            member = member_of[d.checkin_id]
            phone, name = self.phone_of(member), self.name_of(member)
            key = (d.to, d.checkin_id)
            self.stood_down[key] = self.stood_down.get(key, 0) + 1
            if self.stood_down[key] > 1 + truth.allowed_repeats.get(d.message_id, 0):
                return Violation("v-stand-down", f"{self.sim.by_phone[d.to].name} was stood down about {name} twice",
                                 expected="one stand-down per person per check-in",
                                 found=f"{self.stood_down[key]} stand-downs; the last: {d.body!r}", checkin_id=d.checkin_id)
            earlier = [s for s in truth.accepted() if s.real <= d.real]
            if d.template == "stand_down_ok":
                ok = any(s.phone == phone and s.meaning in ("ok", "key_ok") for s in earlier)
            elif d.template == "stand_down_reached":
                # "X has spoken to <member> now": a DONE about any check-in of that member (one
                # meant for a later check-in may settle an earlier one: closures' note).
                ok = any(s.meaning in DONES and s.about_checkin is not None
                         and member_of.get(s.about_checkin) == member for s in earlier)
            elif d.template == "stand_down_closed":
                ok = any(r[2] == member and r[0] <= d.real for r in truth.resolves)
            else:  # "has been in touch"
                ok = any(s.phone == phone for s in earlier)
            if not ok:
                return Violation("iv-stand-down-wrong", f"{self.sim.by_phone[d.to].name} was told something about {name} "
                                 "that didn't happen", expected=f"a {d.template} only after what it says",
                                 found=f"{d.body!r} at {d.clock.astimezone(LONDON):%H:%M}", checkin_id=d.checkin_id)
        return None

    # (v)
    def no_duplicates(self) -> Violation | None:
        counts: dict[int, int] = {}
        for delivery in self.sim.truth.deliveries:
            if delivery.reached:  # a phone that's off gets it on the product's later try (30003)
                counts[delivery.message_id] = counts.get(delivery.message_id, 0) + 1
        for message_id, count in counts.items():
            allowed = 1 + self.sim.truth.allowed_repeats.get(message_id, 0)
            if count > allowed:
                first = next(d for d in self.sim.truth.deliveries if d.message_id == message_id)
                return Violation("v", f"message #{message_id} ({first.template}) reached its phone {count} times",
                                 expected=f"at most {allowed} (1 + sends that timed out or crashed after leaving)",
                                 found=f"{count} deliveries", checkin_id=first.checkin_id)
        return None

    # (vi)
    def nothing_lost(self, session: Session, checkins: list[CheckIn]) -> Violation | None:
        truth = self.sim.truth
        if (len(truth.accepted_sids), self.sim.crashes) != self.sids_checked:  # new replies, or a crash
            self.sids_checked = (len(truth.accepted_sids), self.sim.crashes)
            stored = set(session.scalars(select(Inbound.provider_sid).where(Inbound.provider_sid.in_(truth.accepted_sids))))
            missing = truth.accepted_sids - stored
            if missing:
                said = next(s for s in truth.said if s.sid in missing)
                return Violation("vi-reply", f"{said.person.title()}'s reply {said.text!r} was answered 200 but not recorded",
                                 expected="every reply answered 200 is in the inbound table",
                                 found="no inbound row with its MessageSid")
        at, self.ticked_at = self.ticked_at, None
        if at is not None and not self.provider_failing(session):
            # Right after a whole tick, nothing due is left in the queue and no lease is dead.
            left = session.execute(select(Message.id, Message.template, Message.state, Message.not_before, Message.lease_until)
                                   .where(((Message.state == "queued") & (Message.not_before <= at - timedelta(seconds=1)))
                                          | ((Message.state == "sending") & (Message.lease_until <= at)))).all()
            if left:
                row = left[0]
                return Violation("vi-queue", f"message #{row.id} ({row.template}) was left {row.state} after a tick",
                                 expected="every due message is sent or marked failed by the end of a tick",
                                 found=f"{row.state}, not before {row.not_before}, lease until {row.lease_until}")
        # Every occurrence that has come due (and been ticked past) exists, at its local time.
        if self.sim.last_tick_clock is None:
            return None
        planned = {(c.plan_id, c.occurrence): c for c in checkins if c.plan_id is not None}
        for plan_id, plan in self.sim.plan_of.items():
            first = self.sim.created_at.astimezone(LONDON).date()
            for offset in range(0, 3):
                day = first + timedelta(days=offset)
                due = _local_instant(day, plan.at)
                if due <= self.sim.created_at or due > self.sim.last_tick_clock - timedelta(seconds=1):
                    continue
                found = planned.get((plan_id, day.isoformat()))
                name = self.sim.people[plan.person].name
                if found is None:
                    return Violation("vi-planned", f"{name}'s {plan.at} check-in on {day} was never made",
                                     expected=f"a check-in due {due.astimezone(LONDON):%a %d %b %H:%M %Z}",
                                     found="no row")
                if found.due_at != due:
                    return Violation("vi-time", f"{name}'s {plan.at} check-in on {day} is due at the wrong time",
                                     expected=f"{due.astimezone(LONDON):%H:%M %Z} ({due:%H:%M} UTC)",
                                     found=f"{found.due_at.astimezone(LONDON):%H:%M %Z}", checkin_id=found.id)
                if found.state == "scheduled":
                    return Violation("vi-stuck", f"{name}'s check-in due {due.astimezone(LONDON):%H:%M} was never started",
                                     expected="prompting or later after a tick past its due time",
                                     found="scheduled", checkin_id=found.id)
        return None

    def provider_failing(self, session: Session) -> bool:
        """While the provider fails, a dispatch pass sends one probe and leaves the rest queued for
        the probe's next try (dispatcher._Provider: "one probe at a time while the provider is
        down"), so a due message left in the queue then is the policy, not a loss."""
        from phonetree.models import ProviderOutage

        now = self.sim.real
        if any(f.kind in ("outage", "burst") and f.start <= now and f.end >= now - timedelta(minutes=3)
               for f in self.sim.scenario.faults):
            return True
        return session.scalar(select(ProviderOutage.id).where(ProviderOutage.ended_at.is_(None)).limit(1)) is not None

    # (i)
    def deadline(self, checkin: CheckIn) -> datetime:
        """The real time by which a person must have it: policy time plus every fault in the way."""
        plan = self.sim.plan_of.get(checkin.plan_id) if checkin.plan_id else None
        contacts = len(plan.contacts) if plan else 3
        policy = timedelta(seconds=checkin.window_s + (contacts + 1) * checkin.escalation_wait_s) + SLACK
        start = checkin.due_at - self.sim.min_offset
        helped = self.sim.truth.help_items.get(checkin.id)
        base = start + policy
        if helped:
            base = max(base, helped[0] + timedelta(seconds=(contacts + 1) * checkin.escalation_wait_s) + SLACK)
        deadline = base
        for _ in range(10):
            extra = timedelta(0)
            for fault in self.sim.scenario.faults:
                if fault.kind in ("outage", "burst", "down") and fault.start < deadline and fault.end > start:
                    extra += fault.length + RECOVERY
                elif fault.kind == "crash" and start <= fault.start < deadline:
                    extra += timedelta(seconds=150)  # a lease (120 s) to run out
            if base + extra == deadline:
                break
            deadline = base + extra
        return deadline

    def deadlines(self, session: Session, checkins: list[CheckIn], final: bool) -> Violation | None:
        now = self.sim.real
        truth = self.sim.truth
        statuses: dict[int, dict[str, Any]] = {}
        for checkin in checkins:
            if checkin.id in self.settled or checkin.state in ("scheduled", "skipped"):
                continue
            deadline = self.deadline(checkin)
            if deadline > now:
                continue
            self.settled.add(checkin.id)
            phone = self.phone_of(checkin.member_id)
            prompt = self.first_prompt(checkin.id)
            if prompt is not None and self.said_by(phone, ANSWERS, after=prompt.real) and checkin.id not in truth.help_items:
                continue  # answered: `closures` checks the state agrees
            if checkin.state in ("answered", "resolved"):
                continue  # closed by a person; `closures` checks who, after every step
            if [s for s in truth.accepted() if s.meaning in DONES and s.about_checkin == checkin.id]:
                continue
            if [r for r in truth.resolves if r[2] == checkin.member_id and r[1] >= checkin.due_at]:
                continue
            group = self.sim.group_of[checkin.member_id]
            # The organisers phonetree can tell (escalation.alert_organisers: not opted out, no
            # known problem with their phone).
            organisers = {self.phone_of(m) for m in self.sim.organisers[group] if m != checkin.member_id
                          and (row := session.get(Member, m)) is not None and not row.opted_out and not row.phone_problem}
            if not organisers:
                # None (the member is the group's only organiser, or the others can't be told: seed
                # 14000167): the alert goes to everyone else in the group who can be reached
                # (escalation's rule since 7128874, sim-findings F6).
                organisers = {self.phone_of(m) for m, g in self.sim.group_of.items()
                              if g == group and m != checkin.member_id}
            told = [d for d in truth.deliveries if d.to in organisers and d.real <= deadline and (
                (d.checkin_id == checkin.id and d.template in ORGANISER_ASKS | {"missed", "missed_summary"})
                # one summary per organiser covers every check-in missed in that pass (checkins.report_missed)
                or (d.template == "missed_summary" and checkin.state == "missed" and checkin.closed_at is not None
                    and d.clock >= checkin.closed_at))]
            if checkin.state == "missed" and told:
                continue
            if checkin.group_id not in statuses:
                statuses[checkin.group_id] = group_status(session, session.get(Group, checkin.group_id), self.sim.clock())
            shown = [i for i in statuses[checkin.group_id]["open"] if i["member"] == self.name_of(checkin.member_id)]
            if shown and told:
                continue
            name = self.name_of(checkin.member_id)
            asked = [d for d in truth.deliveries if d.checkin_id == checkin.id and d.template in ASKS]
            outage = any(f.kind in ("outage", "burst") and f.start < deadline and f.end > checkin.due_at - self.sim.min_offset
                         for f in self.sim.scenario.faults)
            return Violation(
                "i-outage" if outage else "i", f"nobody has {name}'s {checkin.due_at.astimezone(LONDON):%H:%M} check-in, "
                f"{(now - deadline).total_seconds() / 60:.0f} min past the policy deadline",
                expected=f"by {deadline.astimezone(LONDON):%a %H:%M} (policy time plus outages): a DONE, or an open item "
                "on status with an organiser alerted by a message that left",
                found=f"check-in #{checkin.id} {checkin.state} ({checkin.outcome}); on status: {'yes' if shown else 'no'}; "
                f"asks that reached a phone: {len(asked)}; organiser alerts that reached a phone: {len(told)}",
                checkin_id=checkin.id, member_id=checkin.member_id)
        return None


@cache  # asked for every plan and day after every step; a pure function of its arguments
def _local_instant(day: date, hhmm: str) -> datetime:
    """The UTC instant of a local time, by the README's DST rule: a time the clocks skip happens
    once, shifted by the gap (fold=0 does exactly that); a repeated one, the first time."""
    hour, minute = map(int, hhmm.split(":"))
    from datetime import timezone

    return datetime.combine(day, time(hour, minute), tzinfo=LONDON).astimezone(timezone.utc)
