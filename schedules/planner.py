"""Rules become dated items: every active check-in plan gets a `checkins` row for each
occurrence up to a horizon. Idempotent (a unique key per plan and local date) and set-based:
plans sharing a rule share one recurrence computation, and rows go in by the thousand."""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from phonetree.db import insert_ignoring_duplicates
from phonetree.models import CheckIn, CheckInPlan, Group
from schedules.recurrence import local_date, occurrences

HORIZON = timedelta(hours=36)
# After a long outage, look back at most this far: each missed day is reported, not flooded.
LOOKBACK = timedelta(days=7)
CHUNK = 20000


def plan_checkins(session: Session, now: datetime, horizon: timedelta = HORIZON) -> int:
    """Materialise check-ins due up to now + horizon. Returns how many rows were new."""
    until = now + horizon
    floor = now - LOOKBACK
    created = 0
    last_id = 0
    while True:
        rows = session.execute(
            select(CheckInPlan.id, CheckInPlan.group_id, CheckInPlan.member_id, CheckInPlan.at_time,
                   CheckInPlan.days, CheckInPlan.window_s, CheckInPlan.reminder_s,
                   CheckInPlan.escalation_wait_s, CheckInPlan.planned_until, CheckInPlan.created_at,
                   Group.timezone)
            .join(Group, Group.id == CheckInPlan.group_id)
            .where(CheckInPlan.active.is_(True), CheckInPlan.id > last_id,
                   (CheckInPlan.planned_until.is_(None)) | (CheckInPlan.planned_until < until))
            .order_by(CheckInPlan.id).limit(CHUNK)
        ).all()
        if not rows:
            return created
        last_id = rows[-1].id
        by_rule: dict[tuple[str, str, str, datetime], list[Any]] = defaultdict(list)
        for row in rows:
            # Never before the plan existed; after a long outage, no further back than LOOKBACK.
            start = max(row.planned_until or row.created_at, floor)
            by_rule[(row.days, row.at_time, row.timezone, start)].append(row)
        items: list[dict[str, Any]] = []
        for (days, at_time, tz, start), plans in by_rule.items():
            fire_times = occurrences(days, at_time, tz, start, until)
            keys = [(due, local_date(due, tz).isoformat()) for due in fire_times]
            for plan in plans:
                for due, occurrence in keys:
                    items.append({
                        "plan_id": plan.id, "group_id": plan.group_id, "member_id": plan.member_id,
                        "occurrence": occurrence, "due_at": due, "state": "scheduled", "urgent": False,
                        "window_s": plan.window_s, "reminder_s": plan.reminder_s,
                        "escalation_wait_s": plan.escalation_wait_s, "escalation_step": -1,
                    })
        for i in range(0, len(items), CHUNK):
            created += insert_ignoring_duplicates(session, CheckIn, items[i:i + CHUNK])
        session.execute(
            update(CheckInPlan).where(CheckInPlan.id.in_([r.id for r in rows])).values(planned_until=until)
        )
        session.flush()
