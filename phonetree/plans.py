"""Check-in plans an organiser corrects: add (refusing the same one twice), list, change, remove.

A change applies from the next occurrence not yet sent. The planner has already written a
plan's check-ins up to its bookmark (`planned_until`), so a change rewrites the ones still
`scheduled` in place (new time, days, window) and moves the bookmark back to now, so the
planner fills in any day the new rule adds. A check-in already sent keeps its life: the
unique (plan, local date) key stops the planner from writing that day a second one.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from phonetree import events
from phonetree import clock
from phonetree.checkins import OPEN_CHECKIN_STATES
from phonetree.directory import check_window, get_member
from phonetree.errors import PhonetreeError
from phonetree.models import CheckIn, CheckInPlan, Group, Member, PlanContact
from phonetree.quiet_hours import refuse_quiet_time
from phonetree.days import parse_days
from phonetree.durations import format_duration
from phonetree.local_times import local_date, local_instant
from phonetree.recurrence import occurrences
from phonetree.times_of_day import parse_time

# How far ahead `checkin list` looks for a plan's next check-in (a weekly rule fires within 7 days).
LOOK_AHEAD = timedelta(days=8)


def active_plans(session: Session, member: Member) -> list[CheckInPlan]:
    return list(session.scalars(
        select(CheckInPlan).where(CheckInPlan.member_id == member.id, CheckInPlan.active.is_(True))
        .order_by(CheckInPlan.at_time, CheckInPlan.id)))


def find_plan(session: Session, member: Member, at: str | None) -> CheckInPlan:
    """The member's plan: the only one, or the one at `at` when they have several."""
    plans = active_plans(session, member)
    if not plans:
        raise PhonetreeError(f"{member.name} has no check-in; add one with: phonetree checkin add "
                             f"GROUP {member.name} --at HH:MM --escalate-to NAME")
    if at is not None:
        wanted = parse_time(at)
        for plan in plans:
            if plan.at_time == wanted:
                return plan
        raise PhonetreeError(f"{member.name} has no check-in at {wanted}; "
                             + (f"theirs are at {', '.join(p.at_time for p in plans)}." if len(plans) > 1
                                else f"theirs is at {plans[0].at_time}."))
    if len(plans) > 1:
        raise PhonetreeError(f"{member.name} has check-ins at {', '.join(p.at_time for p in plans)}; "
                             "say which with --at HH:MM.")
    return plans[0]


def add_plan(session: Session, group: Group, member: Member, at: str, days: str,
             contacts: list[str], window_s: int | None = None,
             escalation_wait_s: int | None = None, reminder_s: int | None = None,
             reminder: bool | None = None) -> tuple[CheckInPlan, list[str]]:
    """Create a check-in plan. Returns it and any warnings for the organiser."""
    at_time = parse_time(at)
    day_rule = parse_days(days)
    window = window_s or group.window_s
    wait = escalation_wait_s or group.escalation_wait_s
    refuse_quiet_time(at_time, group)
    chain = escalation_chain(session, group, member, contacts)
    use_reminder = group.reminder if reminder is None else reminder
    if reminder_s is not None:
        if reminder_s >= window:
            raise PhonetreeError(
                f"the reminder ({format_duration(reminder_s)}) must come before the window closes "
                f"({format_duration(window)})."
            )
    elif use_reminder and window >= 10 * 60:
        reminder_s = window // 2  # half-way through the window by default
    now = clock.now()
    plan = CheckInPlan(
        group_id=group.id, member_id=member.id, at_time=at_time, days=day_rule, window_s=window,
        escalation_wait_s=wait, reminder_s=reminder_s, active=True, created_at=now,
        planned_until=now,
    )
    plan.contacts = [PlanContact(position=i, member_id=c.id) for i, c in enumerate(chain)]
    session.add(plan)
    session.flush()
    events.record(session, now, "plan_added", group_id=group.id, member_id=member.id,
                  detail=f"{day_rule} at {at_time}")
    warnings = []
    if not any("organiser" in m.role_list for m in group.members):
        warnings.append(f"{group.name} has no organiser yet, so if nobody on the list answers "
                        "the check-in stays open on `phonetree status` with no one alerted. "
                        f"Add one: phonetree member add {group.name} NAME --phone ... --role organiser")
    for contact in chain:
        if contact.opted_out:
            warnings.append(f"{contact.name} has opted out of texts and will be skipped.")
    return plan, warnings


def escalation_chain(session: Session, group: Group, member: Member, names: list[str]) -> list[Member]:
    """The named contacts for a member's check-in, checked: at least one, not the member, none twice."""
    if not names:
        raise PhonetreeError("name at least one person to ring if there's no reply: --escalate-to NAME.")
    chain: list[Member] = []
    for name in names:
        contact = get_member(session, group, name)
        if contact.id == member.id:
            raise PhonetreeError(f"{member.name} can't be their own escalation contact.")
        if contact in chain:
            raise PhonetreeError(f"{contact.name} is named twice in --escalate-to.")
        chain.append(contact)
    return chain


def plans_for_group(session: Session, group: Group) -> list[CheckInPlan]:
    return list(session.scalars(
        select(CheckInPlan).where(CheckInPlan.group_id == group.id, CheckInPlan.active.is_(True))
        .order_by(CheckInPlan.at_time, CheckInPlan.id)
    ))


def add(session: Session, group: Group, member: Member, at: str, days: str, contacts: list[str],
        **options: Any) -> tuple[CheckInPlan, list[str]]:
    """`add_plan`, refusing a second plan for the same member at the same time."""
    at_time = parse_time(at)
    check_window(options.get("window_s"))
    for plan in active_plans(session, member):
        if plan.at_time == at_time:
            raise PhonetreeError(
                f"{member.name} already has a check-in at {at_time} ({plan.days}); to change it use: "
                f"phonetree checkin set {group.name} {member.name} --at {at_time} ...")
    return add_plan(session, group, member, at_time, days, contacts, **options)


def change(session: Session, group: Group, member: Member, now: datetime, *, at: str | None = None,
           to: str | None = None, days: str | None = None, window_s: int | None = None,
           contacts: list[str] | None = None, escalation_wait_s: int | None = None,
           ) -> tuple[CheckInPlan, list[str]]:
    """Change one of a member's plans. `at` picks the plan when there are several, and is
    the new time when there is one and `to` is not given. Returns the plan and what changed."""
    plans = active_plans(session, member)
    if at is not None and to is None and len(plans) == 1 and plans[0].at_time != parse_time(at):
        plan, to = plans[0], at  # the member's only check-in, moved to `at`
    else:
        plan = find_plan(session, member, at)
    changes: list[str] = []
    new_time = parse_time(to) if to is not None else plan.at_time
    new_days = parse_days(days) if days is not None else plan.days
    if new_time != plan.at_time:
        refuse_quiet_time(new_time, group)
        if any(p.at_time == new_time for p in plans if p.id != plan.id):
            raise PhonetreeError(f"{member.name} already has a check-in at {new_time}; remove one with: "
                                 f"phonetree checkin remove {group.name} {member.name} --at {new_time}")
        changes.append(f"time {plan.at_time} -> {new_time}")
    if new_days != plan.days:
        changes.append(f"days {plan.days} -> {new_days}")
    check_window(window_s)
    if window_s is not None and window_s != plan.window_s:
        old = plan.window_s
        changes.append(f"window {format_duration(old)} -> {format_duration(window_s)}")
        plan.window_s = window_s
        # A default reminder (half-way) follows the window; any reminder must stay inside it.
        if plan.reminder_s is not None and (plan.reminder_s == old // 2 or plan.reminder_s >= window_s):
            plan.reminder_s = window_s // 2 if window_s >= 10 * 60 else None
    if escalation_wait_s is not None and escalation_wait_s != plan.escalation_wait_s:
        changes.append(f"escalation wait {format_duration(plan.escalation_wait_s)} -> "
                       f"{format_duration(escalation_wait_s)}")
        plan.escalation_wait_s = escalation_wait_s
    if contacts is not None:
        chain = escalation_chain(session, group, member, contacts)
        before = [c.member.name for c in plan.contacts]
        if [c.name for c in chain] != before:
            changes.append(f"contacts {', '.join(before)} -> {', '.join(c.name for c in chain)}")
            # Old rows go first: the new ones reuse their (plan, position) keys.
            plan.contacts.clear()
            session.flush()
            plan.contacts.extend(PlanContact(position=i, member_id=c.id) for i, c in enumerate(chain))
    if not changes:
        raise PhonetreeError("nothing to change: the check-in is already like that (see --help for options).")
    plan.at_time, plan.days = new_time, new_days
    _reschedule(session, group, plan, now)
    events.record(session, now, "plan_changed", group_id=group.id, member_id=member.id,
                  detail="; ".join(changes))
    session.flush()
    return plan, changes


def _reschedule(session: Session, group: Group, plan: CheckInPlan, now: datetime) -> None:
    """Rewrite the plan's not-yet-sent check-ins by its rule as it is now, and have the
    planner look again from now for days the rule adds."""
    waiting = session.scalars(select(CheckIn).where(CheckIn.plan_id == plan.id, CheckIn.state == "scheduled"))
    for checkin in waiting:
        day = datetime.fromisoformat(checkin.occurrence).date()
        start = local_instant(day, "00:00", group.timezone) - timedelta(seconds=1)
        end = local_instant(day + timedelta(days=1), "00:00", group.timezone) - timedelta(seconds=1)
        fires = occurrences(plan.days, plan.at_time, group.timezone, start, end)
        if not fires:
            session.delete(checkin)  # that day is no longer one of the plan's days
            continue
        checkin.due_at = fires[0]
        checkin.window_s, checkin.reminder_s = plan.window_s, plan.reminder_s
        checkin.escalation_wait_s = plan.escalation_wait_s
    plan.planned_until = now


def remove(session: Session, group: Group, member: Member, now: datetime, at: str | None = None,
           ) -> tuple[CheckInPlan, bool]:
    """Stop a plan: nothing more is sent from it. A check-in of it already under way carries
    on to its end (nobody is left mid-escalation); the record of past ones stays. Returns the
    plan and whether one is still under way."""
    plan = find_plan(session, member, at)
    plan.active = False
    session.execute(delete(CheckIn).where(CheckIn.plan_id == plan.id, CheckIn.state == "scheduled"))
    in_flight = session.scalar(select(CheckIn.id).where(
        CheckIn.plan_id == plan.id, CheckIn.state.in_(OPEN_CHECKIN_STATES)).limit(1)) is not None
    events.record(session, now, "plan_removed", group_id=group.id, member_id=member.id,
                  detail=f"{plan.days} at {plan.at_time}" + ("; one under way carries on" if in_flight else ""))
    return plan, in_flight


def next_due(session: Session, group: Group, plan: CheckInPlan, now: datetime) -> datetime | None:
    """When the plan's next check-in goes: its earliest one planned and not yet sent, else
    the first day of its rule that has none yet."""
    planned = session.scalar(select(CheckIn.due_at).where(
        CheckIn.plan_id == plan.id, CheckIn.state == "scheduled").order_by(CheckIn.due_at).limit(1))
    if planned is not None:
        return planned
    had = set(session.scalars(select(CheckIn.occurrence).where(CheckIn.plan_id == plan.id)))
    for due in occurrences(plan.days, plan.at_time, group.timezone, now, now + LOOK_AHEAD):
        if local_date(due, group.timezone).isoformat() not in had:
            return due
    return None
