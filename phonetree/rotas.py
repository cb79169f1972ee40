"""Peer call rotas: who rings whom each round, the call prompts, DONE / CANT, follow-up.

A round is materialised when it falls due: its calls are computed from the roster as it is
then (paused and opted-out members skipped fairly, do-not-pair honoured) and written as Tasks
(kind `call_prompt`), so later changes to the roster never rewrite a past round. Rounds still
to come are projected from today's roster by the same pure functions (`phonetree.pairing`).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from phonetree import clock, events
from phonetree.db import insert_ignoring_duplicates, rowcount
from phonetree.directory import get_member, organisers, reachable
from phonetree.errors import PhonetreeError
from phonetree.messages import message_row, queue
from phonetree.models import Group, Member, Message, Rota, RotaAvoid, RotaMember, RotaRound, Task
from phonetree.pairing import Call, calls_for_groups, pairs_round, ring_round
from phonetree.phones import display
from phonetree.quiet_hours import refuse_quiet_time
from phonetree.task_kinds import owns
from phonetree.days import DAY_NAMES
from phonetree.local_times import local_date, local_instant
from phonetree.times_of_day import parse_time

KINDS = ("pairs", "ring")
CADENCES = {"weekly": 7, "fortnightly": 14, "daily": 1}
DEFAULT_CONFIRM = {"weekly": timedelta(days=3), "fortnightly": timedelta(days=5), "daily": timedelta(hours=6)}
PERIOD_WORDS = {"weekly": "this week", "fortnightly": "this fortnight", "daily": "today"}
# A call's place in its round (Task.call_role): one of the round's own pairs, a backup for a
# peer who couldn't, or an organiser asked when nobody was free.
PAIRED, BACKUP, ORGANISER = "paired", "backup", "organiser"


# ---------------------------------------------------------------- setting up


def add_rota(session: Session, group: Group, name: str, kind: str, on_day: str, at: str,
             members: list[str] | None = None, cadence: str = "weekly",
             avoid: list[tuple[str, str]] | None = None, confirm_s: int | None = None) -> Rota:
    from phonetree.directory import clean_name

    name = clean_name(name, "rota name")
    if kind not in KINDS:
        raise PhonetreeError(f"unknown rota kind {kind!r}; choose pairs or ring.")
    if cadence not in CADENCES:
        raise PhonetreeError(f"unknown cadence {cadence!r}; choose weekly, fortnightly or daily.")
    day = on_day.strip().lower()[:3]
    if day not in DAY_NAMES:
        raise PhonetreeError(f"{on_day!r} is not a day; write it like mon, tue or wednesday.")
    at_time = parse_time(at)
    refuse_quiet_time(at_time, group)
    if session.scalar(select(Rota).where(Rota.group_id == group.id, Rota.name == name)) is not None:
        raise PhonetreeError(f"{group.name} already has a rota called {name!r}.")
    if members:
        chosen = []
        for member_name in members:
            member = get_member(session, group, member_name)
            if member in chosen:
                raise PhonetreeError(f"{member.name} is named twice in --members.")
            chosen.append(member)
    else:
        chosen = [m for m in group.members if "peer" in m.role_list]
    if len(chosen) < 2:
        raise PhonetreeError("a rota needs at least two peers; name them with --members A,B,...")
    now = clock.now()
    today = local_date(now, group.timezone)
    start = today if cadence == "daily" else today + timedelta(days=(DAY_NAMES.index(day) - today.weekday()) % 7)
    if local_instant(start, at_time, group.timezone) <= now:
        start += timedelta(days=CADENCES[cadence] if cadence == "daily" else 7)
    rota = Rota(group_id=group.id, name=name, kind=kind, cadence=cadence, on_day=DAY_NAMES[start.weekday()],
                at_time=at_time, start_date=start, confirm_s=confirm_s or int(DEFAULT_CONFIRM[cadence].total_seconds()),
                active=True, created_at=now)
    rota.members = [RotaMember(member_id=m.id, position=i) for i, m in enumerate(chosen)]
    ids = {m.id for m in chosen}
    rules = []
    for a_name, b_name in avoid or []:
        a, b = get_member(session, group, a_name), get_member(session, group, b_name)
        if a.id not in ids or b.id not in ids:
            raise PhonetreeError(f"{a.name} and {b.name} must both be in the rota to keep them apart.")
        rules.append(RotaAvoid(member_a=min(a.id, b.id), member_b=max(a.id, b.id)))
    rota.avoid = rules
    session.add(rota)
    session.flush()
    # Refuse now, not on the morning of the round, a rule set no round could honour.
    names = [m.name for m in chosen]
    pairs_round(names, 0, avoid=_avoid_names(rota, {m.id: m.name for m in chosen})) if kind == "pairs" else None
    events.record(session, now, "rota_added", group_id=group.id, detail=f"{name}: {kind}, {cadence}")
    return rota


def get_rota(session: Session, group: Group, name: str) -> Rota:
    rota = session.scalar(select(Rota).where(Rota.group_id == group.id, func.lower(Rota.name) == name.lower()))
    if rota is None:
        names = list(session.scalars(select(Rota.name).where(Rota.group_id == group.id)))
        hint = f" Its rotas: {', '.join(names)}." if names else " Add one with: phonetree rota add ..."
        raise PhonetreeError(f"{group.name} has no rota called {name!r}.{hint}")
    return rota


def _avoid_names(rota: Rota, names: dict[int, str]) -> list[frozenset[str]]:
    return [frozenset((names[r.member_a], names[r.member_b])) for r in rota.avoid
            if r.member_a in names and r.member_b in names]


def round_date(rota: Rota, number: int) -> date:
    return nth_round_date(rota.start_date, rota.cadence, number)


def nth_round_date(start: date, cadence: str, number: int) -> date:
    """The local date of round `number` (from 0) of a rota starting `start`."""
    return start + timedelta(days=CADENCES[cadence] * number)


# ---------------------------------------------------------------- who rings whom


@dataclass
class Lineup:
    """A round's roster: everyone in the rota on that date, in order, and who is away."""

    names: list[str]
    by_name: dict[str, Member]
    absent: set[str]
    avoid: list[frozenset[str]]


def lineup(rota: Rota, group: Group, on: date) -> Lineup:
    current = [rm.member for rm in rota.members if rm.left_on is None or rm.left_on > on]
    by_name = {m.name: m for m in current}
    absent = {m.name for m in current if m.opted_out or m.phone_problem or m.is_paused(on)}
    return Lineup([m.name for m in current], by_name, absent, _avoid_names(rota, {m.id: m.name for m in current}))


def compute_calls(rota: Rota, team: Lineup, number: int, history: dict[str, int]) -> list[Call]:
    """The calls for round `number`, balancing calling duty against `history`."""
    present = [n for n in team.names if n not in team.absent]
    if rota.kind == "ring":
        return ring_round(present, number)
    groups = pairs_round(team.names, number, avoid=team.avoid, absent=team.absent)
    upcoming = pairs_round(team.names, number + 1, avoid=team.avoid, absent=team.absent)
    return calls_for_groups(groups, number, history=history, next_groups=upcoming)


def call_history(session: Session, rota: Rota) -> dict[str, int]:
    """How many calls each member has been given in this rota so far (one grouped query)."""
    rows = session.execute(
        select(Member.name, func.count(Task.id)).join(Task, Task.assignee_id == Member.id)
        .join(RotaRound, RotaRound.id == Task.round_id)
        .where(RotaRound.rota_id == rota.id, Task.kind == "call_prompt", Task.call_role == PAIRED)
        .group_by(Member.name)
    ).all()
    return {name: count for name, count in rows}


def show(session: Session, group: Group, rota: Rota, now: datetime, weeks: int) -> list[dict[str, Any]]:
    """Rounds from the current one on, for `weeks` weeks: past ones as they were made, the
    rest projected from today's roster."""
    today = local_date(now, group.timezone)
    period = CADENCES[rota.cadence]
    first = max(0, (today - rota.start_date).days // period) if today >= rota.start_date else 0
    last_day = today + timedelta(weeks=weeks)
    made = {r.number: r for r in session.scalars(
        select(RotaRound).where(RotaRound.rota_id == rota.id, RotaRound.number >= first,
                                RotaRound.state == "prompted"))}
    original = _original_calls(session, [r.id for r in made.values()])
    history = Counter(call_history(session, rota))
    rounds: list[dict[str, Any]] = []
    number = first
    while round_date(rota, number) < last_day or not rounds:
        when = round_date(rota, number)
        if number in made:
            calls = original.get(made[number].id, [])
        else:
            calls = compute_calls(rota, lineup(rota, group, when), number, dict(history))
            history.update(caller for caller, _ in calls)
        rounds.append({"date": when.isoformat(), "calls": [{"caller": a, "callee": b} for a, b in calls]})
        number += 1
    return rounds


def _original_calls(session: Session, round_ids: list[int]) -> dict[int, list[Call]]:
    if not round_ids:
        return {}
    assignee, subject = Member.__table__.alias("a"), Member.__table__.alias("s")
    rows = session.execute(
        select(Task.round_id, assignee.c.name, subject.c.name)
        .join(assignee, assignee.c.id == Task.assignee_id).join(subject, subject.c.id == Task.subject_id)
        .where(Task.round_id.in_(round_ids), Task.call_role == PAIRED).order_by(Task.id)
    ).all()
    result: dict[int, list[Call]] = {}
    for round_id, caller, callee in rows:
        result.setdefault(round_id, []).append((caller, callee))
    return result


# ---------------------------------------------------------------- the engine's steps


def prompt_due_rounds(session: Session, now: datetime) -> int:
    """Send the call prompts of every round now due. A round the service missed entirely (its
    confirmation time has gone by) is recorded as missed, not sent a week late."""
    due = list(session.scalars(select(RotaRound.id).where(RotaRound.state == "scheduled",
                                                         RotaRound.due_at <= now)))
    prompted = 0
    for round_id in due:
        claimed = rowcount(session.execute(update(RotaRound).where(RotaRound.id == round_id, RotaRound.state == "scheduled")
                                           .values(state="prompted")))
        if claimed != 1:
            continue
        rnd = session.get(RotaRound, round_id)
        assert rnd is not None
        rota = session.get(Rota, rnd.rota_id)
        assert rota is not None
        group = rota.group
        if now > rnd.due_at + timedelta(seconds=rota.confirm_s):
            rnd.state = "missed"
            events.record(session, now, "round_missed", group_id=group.id,
                          detail=f"{rota.name} {rnd.local_date}: the service was down")
            continue
        team = lineup(rota, group, rnd.local_date)
        calls = compute_calls(rota, team, rnd.number, call_history(session, rota))
        for caller, callee in calls:
            _ask_call(session, now, group, rota, rnd, team.by_name[caller], team.by_name[callee],
                      f"rota:{rnd.id}:call:{team.by_name[caller].id}:{team.by_name[callee].id}", PAIRED)
        events.record(session, now, "round_prompted", group_id=group.id,
                      detail=f"{rota.name} {rnd.local_date}: {len(calls)} call(s)")
        prompted += len(calls)
    return prompted


def _ask_call(session: Session, now: datetime, group: Group, rota: Rota, rnd: RotaRound,
              caller: Member, callee: Member, key: str, role: str, template: str = "call_prompt") -> None:
    insert_ignoring_duplicates(session, Task, [{
        "kind": "call_prompt", "group_id": group.id, "assignee_id": caller.id, "subject_id": callee.id,
        "round_id": rnd.id, "dedupe_key": key, "call_role": role, "state": "asked", "asked_at": now,
        "expires_at": now + timedelta(seconds=rota.confirm_s),
    }])
    task = session.scalar(select(Task).where(Task.dedupe_key == key))
    assert task is not None
    queue(session, [message_row(
        now, group, caller, kind="call_prompt", template=template,
        values={"name": caller.name, "member": callee.name, "phone": display(callee.phone),
                "when": PERIOD_WORDS[rota.cadence]},
        dedupe_key=f"task:{task.id}:ask", task_id=task.id, purpose="ask",
    )])


def on_done(session: Session, task: Task, now: datetime) -> None:
    """A rota call made."""
    task.state, task.closed_at = "done", now
    events.record(session, now, "call_done", group_id=task.group_id, member_id=task.subject_id,
                  detail=f"{task.assignee.name} rang {task.subject.name if task.subject else '?'}")


def on_not_done(session: Session, task: Task, now: datetime, why: str) -> str:
    """CANT, or no DONE in time: the call passes at once to a backup peer who is free this
    round; with nobody free, the organisers are asked. Returns who has it now."""
    task.state, task.closed_at = ("cant" if why == "cant" else "expired"), now
    rnd = session.get(RotaRound, task.round_id) if task.round_id else None
    callee = task.subject
    if rnd is None or callee is None:
        return "nobody"
    rota = session.get(Rota, rnd.rota_id)
    group = task.group
    assert rota is not None
    tried = set(session.scalars(select(Task.assignee_id).where(Task.round_id == rnd.id,
                                                               Task.subject_id == callee.id)))
    load = Counter(session.scalars(select(Task.assignee_id).where(Task.round_id == rnd.id)))
    team = lineup(rota, group, rnd.local_date)
    free = [m for name, m in team.by_name.items()
            if name not in team.absent and m.id not in tried and m.id != callee.id and reachable(m, group, now)]
    # Free first: those with the fewest calls this round, then the rota's order.
    free.sort(key=lambda m: (load[m.id], team.names.index(m.name)))
    events.record(session, now, "call_passed_on", group_id=group.id, member_id=callee.id,
                  detail=f"{task.assignee.name} {'couldn' + chr(39) + 't' if why == 'cant' else 'did not confirm'}")
    # Once the round's period is over, a backup asked to ring "this week" would be asked too
    # late: the organisers hear that the call wasn't made instead.
    period_over = now >= rnd.due_at + timedelta(days=CADENCES[rota.cadence])
    if free and not period_over:
        backup = free[0]
        _ask_call(session, now, group, rota, rnd, backup, callee, f"rota:{rnd.id}:backup:{backup.id}:{callee.id}",
                  BACKUP)
        return backup.name
    people = [m for m in organisers(session, group.id) if m.id != callee.id and m.id not in tried]
    for organiser in people:
        _ask_call(session, now, group, rota, rnd, organiser, callee,
                  f"rota:{rnd.id}:organiser:{organiser.id}:{callee.id}", ORGANISER, template="call_unmade")
    return ", ".join(m.name for m in people) or "nobody (no organiser)"


def join(session: Session, group: Group, rota: Rota, name: str) -> None:
    """Add a member at the end of the rota's order; rounds already made stay as they were."""
    member = get_member(session, group, name)
    for rm in rota.members:
        if rm.member_id == member.id and rm.left_on is None:
            raise PhonetreeError(f"{member.name} is already in the rota {rota.name}.")
    rota.members.append(RotaMember(member_id=member.id, position=len(rota.members)))
    events.record(session, clock.now(), "rota_joined", group_id=group.id, member_id=member.id, detail=rota.name)


def leave(session: Session, group: Group, rota: Rota, name: str) -> None:
    """Take a member out from today; their past calls stay in the record."""
    member = get_member(session, group, name)
    current = [rm for rm in rota.members if rm.member_id == member.id and rm.left_on is None]
    if not current:
        raise PhonetreeError(f"{member.name} is not in the rota {rota.name}.")
    remaining = [rm for rm in rota.members if rm.left_on is None and rm.member_id != member.id]
    if len(remaining) < 2:
        raise PhonetreeError(f"the rota {rota.name} would have fewer than two members left.")
    today = local_date(clock.now(), group.timezone)
    current[0].left_on = today
    events.record(session, clock.now(), "rota_left", group_id=group.id, member_id=member.id, detail=rota.name)


# ---------------------------------------------------------------- listing and removing


def list_rotas(session: Session, group: Group, now: datetime) -> list[dict[str, Any]]:
    """Each rota of the group: its rule, who is in it now, and when its next round falls (UTC)."""
    result = []
    today = local_date(now, group.timezone)
    for rota in session.scalars(select(Rota).where(Rota.group_id == group.id).order_by(Rota.name)):
        number = 0
        while local_instant(round_date(rota, number), rota.at_time, group.timezone) <= now:
            number += 1
        current = [rm.member.name for rm in rota.members if rm.left_on is None or rm.left_on > today]
        result.append({"name": rota.name, "kind": rota.kind, "cadence": rota.cadence, "on": rota.on_day,
                       "at": rota.at_time, "members": current,
                       "next_round": local_instant(round_date(rota, number), rota.at_time, group.timezone)})
    return result


def remove_rota(session: Session, group: Group, rota: Rota, now: datetime) -> int:
    """Erase a rota: no more rounds or prompts. Calls people were asked to make and haven't
    confirmed are closed, and any prompt not yet sent goes with the rota; whoever already has a
    prompt is told, once, that they needn't ring (the text is not tied to the rota's rows, so it
    outlives them). Returns how many open calls were closed."""
    open_calls = list(session.scalars(
        select(Task).join(RotaRound, RotaRound.id == Task.round_id)
        .where(RotaRound.rota_id == rota.id, Task.state == "asked")))
    prompted = set(session.scalars(
        select(Message.task_id).where(Message.task_id.in_([t.id for t in open_calls]),
                                      Message.sent_at.is_not(None)))) if open_calls else set()
    queue(session, [message_row(
        now, group, task.assignee, kind="info", template="call_cancelled",
        values={"name": task.assignee.name, "member": task.subject.name if task.subject else "",
                "when": PERIOD_WORDS[rota.cadence]},
        dedupe_key=f"rota:{rota.id}:cancelled:{task.id}",
    ) for task in open_calls if task.id in prompted])
    name, rota_id = rota.name, rota.id
    session.flush()
    # Rounds, members, their tasks and unsent prompts go by ON DELETE CASCADE, in the database.
    session.execute(delete(Rota).where(Rota.id == rota_id))
    for gone in (*open_calls, rota):
        session.expunge(gone)
    events.record(session, now, "rota_removed", group_id=group.id,
                  detail=f"{name}" + (f"; {len(open_calls)} open call(s) closed" if open_calls else ""))
    return len(open_calls)


# Its kind in the task table (task_kinds): DONE, CANT and time-up on a rota call come here.
owns("call_prompt", on_done, on_not_done)
