"""A counterexample as a story: who did what at which local time, what was sent to whom, and
what the invariant expected. Member texts are printed with repr(), never raw."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from phonetree.models import CheckIn, Task
from tests.simulation.invariants import Violation

if TYPE_CHECKING:
    from tests.simulation.runner import Sim

LONDON = ZoneInfo("Europe/London")


def _when(real: datetime, clock: datetime) -> str:
    text = clock.astimezone(LONDON).strftime("%a %d %b %H:%M:%S %Z")
    if abs(clock - real) >= timedelta(seconds=1):
        text += f" (real {real.astimezone(LONDON):%H:%M:%S})"
    return text


def tell(sim: "Sim", violation: Violation | None, limit: int = 400) -> str:
    names = {p.e164: p.name for p in sim.scenario.people}
    with Session(sim.observer) as session:
        group_of = {c: sim.group_of.get(m, "?") for c, m in session.execute(select(CheckIn.id, CheckIn.member_id))}
    lines: list[tuple[datetime, int, str]] = []
    for n, note in enumerate(sim.truth.notes):
        lines.append((note.real, note.order, f"{_when(note.real, note.clock)}  ** {note.text}"))
    for n, d in enumerate(sim.truth.deliveries):
        about = f" {group_of.get(d.checkin_id, '?')} #{d.checkin_id}" if d.checkin_id else ""
        how = "" if d.how == "accepted" else f"  [{d.how}]"
        how += "" if d.reached else "  [the phone is off: never arrived]"
        lines.append((d.real, d.order, f"{_when(d.real, d.clock)}  phonetree -> {names.get(d.to, d.to)} "
                      f"({d.channel} {d.template}{about}, msg {d.message_id}): {d.body[:90]!r}{how}"))
    for n, s in enumerate(sim.truth.said):
        result = "answered 200" if s.accepted else f"NOT taken: {s.why_not}"
        lines.append((s.real, s.order, f"{_when(s.real, s.clock)}  {names.get(s.phone, s.phone)} -> phonetree "
                      f"({s.channel}): {s.text!r}  [{s.meaning}; {result}]"))
    lines.sort()
    story = [f"seed {sim.scenario.seed} on {sim.url.split(':', 1)[0]}: {sim.truth.steps} steps, {sim.crashes} crash(es)"]
    body = [text for _, _, text in lines]
    if len(body) > limit:
        story.append(f"... {len(body) - limit} earlier lines left out ...")
        body = body[-limit:]
    story += body
    if violation is not None:
        story += ["", f"VIOLATED {violation.line()}", f"  expected: {violation.expected}", f"  found:    {violation.found}"]
        if violation.checkin_id is not None:
            story += _record(sim, violation.checkin_id)
    return "\n".join(story)


def _record(sim: "Sim", checkin_id: int) -> list[str]:
    with Session(sim.observer) as session:
        checkin = session.get(CheckIn, checkin_id)
        if checkin is None:
            return []
        lines = [f"  check-in #{checkin.id} of {checkin.member.name}: {checkin.state}, due "
                 f"{checkin.due_at.astimezone(LONDON):%a %H:%M %Z}, urgent {checkin.urgent}, outcome {checkin.outcome!r}"]
        for task in session.scalars(select(Task).where(Task.checkin_id == checkin_id).order_by(Task.id)):
            lines.append(f"    task #{task.id} {task.kind} -> {task.assignee.name}: {task.state}, asked "
                         f"{task.asked_at.astimezone(LONDON):%H:%M %Z}, expires "
                         f"{task.expires_at.astimezone(LONDON).strftime('%H:%M %Z') if task.expires_at else '-'}")
        return lines
