"""The kinds of task and the module that owns each: the table `tasks` routes DONE, CANT,
unreachable and time-up by. Each owner fills in its own kinds when it is imported (escalation:
escalation and alert; rotas: call_prompt; cascades: cascade), each with the same two
callbacks, `on_done(session, task, now)` and `on_not_done(session, task, now, why)`, `why`
being "cant" (their own word), "unreachable", "no_answer" or "expired"."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from sqlalchemy.orm import Session

from phonetree.models import Task


@dataclass(frozen=True)
class Owner:
    on_done: Callable[[Session, Task, datetime], Any]
    on_not_done: Callable[[Session, Task, datetime, str], Any]


OWNERS: dict[str, Owner] = {}


def owns(kind: str, on_done: Callable[[Session, Task, datetime], Any],
         on_not_done: Callable[[Session, Task, datetime, str], Any]) -> None:
    """Called once per kind by the module that owns it (again if that module is reloaded)."""
    if kind in OWNERS and OWNERS[kind].on_done.__module__ != on_done.__module__:
        raise ValueError(f"the task kind {kind!r} has an owner already")
    OWNERS[kind] = Owner(on_done, on_not_done)
