"""Long write jobs in short transactions (issue 14): the morning slot's prompts and the retention
purge. Each transaction aims at a time budget, not a row count: it does the job in steps sized
from how long the rows before them took, and commits once the budget is spent. Between
transactions the write lock is left free (db.let_others_write) long enough for a writer of
another process, mid-sleep in SQLite's busy handler, to take it.

A count-based chunk that took 0.05 s on a quiet machine took 3.7 s on a loaded one; a time
budget holds on both."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from phonetree.db import let_others_write, session_scope

# Each transaction does steps until this much of its time is spent (its COMMIT comes after):
# a third of issue 14's 0.3 s, so a loaded machine's slower steps still fit.
BUDGET_S = 0.1
# Rows in a job's first step, before any has been timed.
FIRST = 50
# Rows a step at least, whatever the last one took: part of a step's time is its statements' own,
# not its rows', and sized down to a few rows a job would pay that cost per row (it fell to a few
# rows a second once, behind a purge statement that cost 0.3 s however few rows it blanked).
LEAST = 20

# One step of a job: do up to `limit` rows in the session's transaction and say how many were
# done and whether that was the last of them.
Step = Callable[[Session, int], tuple[int, bool]]


@dataclass
class Paced:
    """What a job did: rows done, transactions committed, and the rows of each."""
    rows: int = 0
    transactions: int = 0
    per_transaction: list[int] = field(default_factory=list)


def run(engine: Engine, step: Step, most: int, budget_s: float = BUDGET_S, first: int = FIRST,
        committed: Callable[[int], None] | None = None) -> Paced:
    """Run `step` until it says it is finished, each transaction about `budget_s` long (at least
    one step; a step does at most `most` rows, and a transaction's steps are all of one size, set
    from the time per row the last step took). Each transaction commits what its steps did, so
    a crash between two loses nothing done and the rest is still there for the next run.
    `committed` is told each transaction's rows once it has committed."""
    paced = Paced()
    size = max(1, min(first, most))
    per_row: float | None = None  # seconds, as the last step took them
    while True:
        rows = 0
        with session_scope(engine) as session:
            started = time.monotonic()
            while True:
                began = time.monotonic()
                done, finished = step(session, size)
                finished = finished or not done  # a step that found nothing: nothing left to do
                ended = time.monotonic()
                rows += done
                if done:
                    per_row = (ended - began) / done
                if finished:
                    break
                # Another step of the same size only if it fits in what is left of the budget.
                fits = _fits(per_row, budget_s - (ended - started), most)
                if fits is not None and fits < size:
                    break
        paced.rows += rows
        paced.transactions += 1
        paced.per_transaction.append(rows)
        if committed is not None:
            committed(rows)
        if finished:
            return paced
        let_others_write(engine)
        fits = _fits(per_row, budget_s, most)
        size = size if fits is None else max(min(LEAST, most), fits)


def _fits(per_row: float | None, seconds: float, most: int) -> int | None:
    """Rows that fit in `seconds` at `per_row` each, at most `most` (None: not timed yet)."""
    if per_row is None:
        return None
    if per_row <= 0:  # too quick for the clock to see: as many as allowed
        return most
    return max(0, min(most, int(seconds / per_row)))
