"""Cascades: news sent down the group's telephone tree.

The organiser who starts it is the root. Their own people hear from phonetree directly (a text,
or with --voice a call that speaks the news, so details like a venue never sit in a text).
Everyone below hears from the person above them: each member with people under them is asked
to ring them and reply DONE. A branch that doesn't confirm in time, or says CANT, is repaired:
its people pass to the nearest person above who did confirm (in the end, the organiser). When
everyone is reached, or nobody is left holding anyone, the organiser is told.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from phonetree import events
from phonetree.db import insert_ignoring_duplicates
from phonetree.directory import get_member, organisers
from phonetree.display_text import has_hidden
from phonetree.errors import PhonetreeError
from phonetree.messages import message_row, queue
from phonetree.models import Cascade, CascadeReach, Group, Task, TreeLink
from phonetree.task_kinds import owns

DEFAULT_BRANCHING = 3
DEFAULT_WAIT = timedelta(hours=2)


# ---------------------------------------------------------------- the tree


def build_tree(session: Session, group: Group, branching: int = DEFAULT_BRANCHING,
               spec: str | None = None, root: str | None = None) -> dict[int, list[int]]:
    """Set the group's tree. Auto: from member order (organisers first) with `branching` people
    under each; explicit: "Margaret>Jo,Sam; Jo>Pat,Dot" (everyone not named hangs under the root)."""
    members = sorted(group.members, key=lambda m: ("organiser" not in m.role_list, m.id))
    if not members:
        raise PhonetreeError(f"{group.name} has no members yet.")
    top = get_member(session, group, root) if root else members[0]
    members.remove(top)
    members.insert(0, top)
    parent: dict[int, int | None] = {top.id: None}
    if spec:
        for part in filter(None, (p.strip() for p in spec.split(";"))):
            head, sep, tail = part.partition(">")
            if not sep:
                raise PhonetreeError(f"{part!r} is not a branch; write it like 'Jo>Pat,Dot'.")
            above = get_member(session, group, head.strip())
            for name in filter(None, (n.strip() for n in tail.split(","))):
                below = get_member(session, group, name)
                if below.id in parent and parent[below.id] is not None:
                    raise PhonetreeError(f"{below.name} is placed twice in the tree.")
                if below.id == top.id:
                    raise PhonetreeError(f"{below.name} is the top of the tree and can't be under anyone.")
                parent[below.id] = above.id
        for member in members[1:]:
            parent.setdefault(member.id, top.id)
        _check_connected(parent, top.id, {m.id: m.name for m in members})
    else:
        if branching < 1:
            raise PhonetreeError("the branching factor must be at least 1.")
        for index, member in enumerate(members[1:], start=1):
            parent[member.id] = members[(index - 1) // branching].id
    session.execute(TreeLink.__table__.delete().where(TreeLink.group_id == group.id))
    order = {m.id: i for i, m in enumerate(members)}
    session.add_all([TreeLink(group_id=group.id, member_id=mid, parent_id=pid, position=order[mid])
                     for mid, pid in parent.items()])
    session.flush()
    return children_of(parent)


def _check_connected(parent: dict[int, int | None], root: int, names: dict[int, str]) -> None:
    for start in parent:
        seen = set()
        node: int | None = start
        while node is not None and node != root:
            if node in seen:
                raise PhonetreeError(f"the tree has a loop through {names[node]}.")
            seen.add(node)
            node = parent.get(node)


def children_of(parent: dict[int, int | None]) -> dict[int, list[int]]:
    children: dict[int, list[int]] = defaultdict(list)
    for child, above in parent.items():
        if above is not None:
            children[above].append(child)
    return dict(children)


def tree(session: Session, group: Group) -> dict[int, int | None]:
    """member id -> parent id, building the default tree the first time."""
    links = session.scalars(select(TreeLink).where(TreeLink.group_id == group.id).order_by(TreeLink.position)).all()
    if not links:
        build_tree(session, group)
        return tree(session, group)
    return {link.member_id: link.parent_id for link in links}


# ---------------------------------------------------------------- running a cascade


# News longer than this many SMS segments is refused: long texts cost more and confuse.
MAX_NEWS_SEGMENTS = 3


def check_news(group: Group, text: str, by_voice: bool) -> None:
    """News is held to what templates are: discreet, and (as a text) at most three segments
    with the group's real names in it."""
    from phonetree import texts
    from phonetree.messages import own_wording
    from phonetree.sms_encoding import segment_info
    from phonetree.templates import REVEALING

    revealing = REVEALING.search(text)
    if revealing:
        raise PhonetreeError(f"{revealing.group(0)!r} would tell anyone who sees the phone what the group is "
                             "about; say it another way (or ring people with the details).")
    if by_voice:
        return
    names = [m.name for m in group.members] or ["W" * texts.MAX_NAME]
    worst = max((segment_info(texts.render("news", "sms", own_wording(group), name=name, text=text))
                 for name in names), key=lambda info: (info.segments, info.units))
    if worst.segments > MAX_NEWS_SEGMENTS:
        raise PhonetreeError(f"as a text the news is {worst.segments} SMS segments ({worst.encoding}, {worst.units} "
                             f"characters with the greeting); keep it to {MAX_NEWS_SEGMENTS}, or send it with --voice.")


def place_newcomers(session: Session, group: Group, parent: dict[int, int | None], root_id: int) -> list[str]:
    """Members who joined after the tree was set hang from the top of the tree, so phonetree
    tells them itself. Returns their names, for a warning."""
    missing = [m for m in group.members if m.id not in parent]
    if not missing:
        return []
    position = len(parent)
    for offset, member in enumerate(missing):
        session.add(TreeLink(group_id=group.id, member_id=member.id, parent_id=root_id, position=position + offset))
        parent[member.id] = root_id
    session.flush()
    return [m.name for m in missing]


def start(session: Session, group: Group, text: str, now: datetime, originator: str | None = None,
          wait_s: int | None = None, by_voice: bool = False) -> tuple[Cascade, list[str]]:
    """Start news down the tree. Returns the cascade and warnings for the organiser."""
    text = " ".join((text or "").split())
    if not text:
        raise PhonetreeError("give the news to pass on, e.g. phonetree cascade start Oakfield \"Meeting moved\".")
    if has_hidden(text) is not None:  # it goes to every member's phone as typed
        raise PhonetreeError("the news contains an invisible or control character; type it plainly.")
    check_news(group, text, by_voice)
    if originator:
        root = get_member(session, group, originator)
    else:
        found = organisers(session, group.id)
        if not found:
            raise PhonetreeError(f"{group.name} has no organiser to start from; use --from NAME.")
        root = found[0]
    parent = tree(session, group)
    if parent.get(root.id, "absent") is not None:
        # The tree hangs from someone else: rebuild it from this originator, same shape rules.
        build_tree(session, group, root=root.name)
        parent = tree(session, group)
    warnings = []
    newcomers = place_newcomers(session, group, parent, root.id)
    if newcomers:
        warnings.append(f"{', '.join(newcomers)} joined after the tree was set, so phonetree sends them the news "
                        f"itself; to place them, see: phonetree cascade tree {group.name} --help")
    cascade = Cascade(group_id=group.id, originator_id=root.id, text=text, by_voice=by_voice,
                      wait_s=wait_s or int(DEFAULT_WAIT.total_seconds()), state="running", started_at=now)
    session.add(cascade)
    session.flush()
    insert_ignoring_duplicates(session, CascadeReach, [
        {"cascade_id": cascade.id, "member_id": mid, "caller_id": pid, "reached_at": now if mid == root.id else None}
        for mid, pid in parent.items()])
    members = {m.id: m for m in group.members}
    children = children_of(parent)
    rows = []
    for mid in children.get(root.id, []):
        member = members[mid]
        voice = by_voice or member.channel == "voice"
        rows.append(message_row(now, group, member, kind="cascade", template="news",
                                channel="voice" if voice else "sms",
                                values={"name": member.name, "text": text},
                                dedupe_key=f"cascade:{cascade.id}:news:{mid}"))
    queue(session, rows)
    events.record(session, now, "cascade_started", group_id=group.id,
                  detail=f"{len(parent) - 1} to reach; from {root.name}")
    # The root's people have it from us now: mark them reached and set their own branches going.
    _reached(session, cascade, group, [mid for mid in children.get(root.id, [])], root.id, now)
    return cascade, warnings


def held_until(group: Group, now: datetime) -> datetime | None:
    """When news started now actually goes, if quiet hours hold it (None: at once)."""
    from phonetree.quiet_hours import next_allowed

    goes = next_allowed(now, group.timezone, group.quiet_start, group.quiet_end)
    return goes if goes > now else None


def _reached(session: Session, cascade: Cascade, group: Group, member_ids: list[int], by: int,
             now: datetime) -> None:
    """These members now have the news; those with people under them are asked to ring them."""
    if not member_ids:
        _check_finished(session, cascade, group, now)
        return
    session.execute(update(CascadeReach).where(CascadeReach.cascade_id == cascade.id,
                                               CascadeReach.member_id.in_(member_ids),
                                               CascadeReach.reached_at.is_(None))
                    .values(reached_at=now, caller_id=by))
    waiting: defaultdict[int, list[int]] = defaultdict(list)
    for reach in session.scalars(select(CascadeReach).where(CascadeReach.cascade_id == cascade.id,
                                                           CascadeReach.caller_id.in_(member_ids),
                                                           CascadeReach.reached_at.is_(None))):
        if reach.caller_id is not None:  # always: the IN above never matches NULL
            waiting[reach.caller_id].append(reach.member_id)
    for caller_id, people in waiting.items():
        _ask_branch(session, cascade, group, caller_id, people, now, "ask")
    _check_finished(session, cascade, group, now)


def _ask_branch(session: Session, cascade: Cascade, group: Group, caller_id: int, people: list[int],
                now: datetime, why: str) -> None:
    members = {m.id: m for m in group.members}
    caller = members[caller_id]
    key = f"cascade:{cascade.id}:{why}:{caller_id}:{min(people)}"
    insert_ignoring_duplicates(session, Task, [{
        "kind": "cascade", "group_id": group.id, "assignee_id": caller_id, "subject_id": None,
        "cascade_id": cascade.id, "dedupe_key": key, "state": "asked", "asked_at": now,
        "expires_at": now + timedelta(seconds=cascade.wait_s),
    }])
    task = session.scalar(select(Task).where(Task.dedupe_key == key))
    assert task is not None
    names = _names([members[p].name for p in people])
    queue(session, [message_row(now, group, caller, kind="cascade", template="pass_on",
                                channel="sms" if caller.channel == "sms" else "voice",
                                values={"name": caller.name, "people": names},
                                dedupe_key=f"task:{task.id}:ask", task_id=task.id,
                                purpose="ask")])


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def on_done(session: Session, task: Task, now: datetime) -> None:
    """A caller has passed the news on to everyone they were given."""
    task.state, task.closed_at = "done", now
    cascade = session.get(Cascade, task.cascade_id)
    if cascade is None or cascade.state != "running":
        return
    group = cascade.group
    people = list(session.scalars(select(CascadeReach.member_id).where(
        CascadeReach.cascade_id == cascade.id, CascadeReach.caller_id == task.assignee_id,
        CascadeReach.reached_at.is_(None))))
    _reached(session, cascade, group, people, task.assignee_id, now)


def on_not_done(session: Session, task: Task, now: datetime, why: str) -> None:
    """Repair a broken link: the people this caller held pass to the nearest person above who
    has confirmed (the originator at the top)."""
    if task.state == "asked":
        task.state, task.closed_at = ("cant" if why == "cant" else "expired"), now
    cascade = session.get(Cascade, task.cascade_id)
    if cascade is None or cascade.state != "running":
        return
    group = cascade.group
    parent = {r.member_id: r for r in session.scalars(select(CascadeReach).where(CascadeReach.cascade_id == cascade.id))}
    links = tree(session, group)
    people = [mid for mid, r in parent.items() if r.caller_id == task.assignee_id and r.reached_at is None]
    failed = set(session.scalars(select(Task.assignee_id).where(
        Task.cascade_id == cascade.id, Task.state.in_(("cant", "expired")))))
    above = links.get(task.assignee_id)
    while above is not None and (above in failed or parent[above].reached_at is None):
        above = links.get(above)
    events.record(session, now, "cascade_repaired", group_id=group.id,
                  detail=f"{len(people)} passed up from a branch that {'couldn' + chr(39) + 't' if why == 'cant' else 'did not confirm'}")
    if above is None or not people:
        _check_finished(session, cascade, group, now)
        return
    session.execute(update(CascadeReach).where(CascadeReach.cascade_id == cascade.id,
                                               CascadeReach.member_id.in_(people))
                    .values(caller_id=above))
    _ask_branch(session, cascade, group, above, people, now, f"repair{task.id}")


def _check_finished(session: Session, cascade: Cascade, group: Group, now: datetime) -> None:
    reach = session.scalars(select(CascadeReach).where(CascadeReach.cascade_id == cascade.id)).all()
    outstanding = [r.member_id for r in reach if r.reached_at is None]
    open_tasks = session.scalar(select(Task.id).where(Task.cascade_id == cascade.id, Task.state == "asked").limit(1))
    if outstanding and open_tasks is not None:
        return
    members = {m.id: m for m in group.members}
    cascade.state, cascade.finished_at = ("complete" if not outstanding else "incomplete"), now
    origin = members.get(cascade.originator_id or -1)
    if origin is None:
        return
    if outstanding:
        values = {"name": origin.name, "people": _names([members[m].name for m in outstanding])}
        template = "cascade_outstanding"
    else:
        values = {"name": origin.name, "count": str(len(reach) - 1)}
        template = "cascade_done"
    queue(session, [message_row(now, group, origin, kind="info", template=template, channel="sms",
                                values=values, dedupe_key=f"cascade:{cascade.id}:finished")])
    events.record(session, now, f"cascade_{cascade.state}", group_id=group.id,
                  detail=f"{len(reach) - 1 - len(outstanding)} of {len(reach) - 1} reached")


def latest(session: Session, group: Group) -> Cascade:
    cascade = session.scalar(select(Cascade).where(Cascade.group_id == group.id).order_by(Cascade.id.desc()))
    if cascade is None:
        raise PhonetreeError(f"no news has been sent down {group.name}'s tree yet; "
                             "start with: phonetree cascade start GROUP \"the news\"")
    return cascade


def status(session: Session, group: Group, cascade: Cascade) -> dict:
    members = {m.id: m for m in group.members}
    reach = session.scalars(select(CascadeReach).where(CascadeReach.cascade_id == cascade.id)
                            .order_by(CascadeReach.id)).all()
    holders = {t.assignee_id: t.state for t in session.scalars(select(Task).where(Task.cascade_id == cascade.id))}
    people = []
    for r in reach:
        if r.member_id == cascade.originator_id:
            continue
        people.append({
            "name": members[r.member_id].name, "reached": r.reached_at is not None,
            "reached_at": r.reached_at.isoformat() if r.reached_at else None,
            "by": members[r.caller_id].name if r.caller_id in members else None,
            "passing_on": holders.get(r.member_id),
        })
    return {"state": cascade.state, "started_at": cascade.started_at.isoformat(),
            "from": members[cascade.originator_id].name if cascade.originator_id in members else None,
            "reached": sum(p["reached"] for p in people), "total": len(people), "people": people}


# Its kind in the task table (task_kinds): DONE, CANT and time-up on a branch come here.
owns("cascade", on_done, on_not_done)
