"""Shrinking a failing scenario: take parts away (a fault, a crash, a check-in plan, the silent
people, the random timeouts) one at a time, and keep each removal after which the same kind of
violation still happens. What is left is usually the two or three things that matter."""
from __future__ import annotations

from dataclasses import replace
from typing import Callable, Iterator

from tests.simulation.runner import Result
from tests.simulation.world import Scenario


def _smaller(scenario: Scenario) -> Iterator[tuple[str, Scenario]]:
    for n, fault in enumerate(scenario.faults):
        yield f"without the {fault.kind} at {fault.start:%H:%M}", replace(
            scenario, faults=scenario.faults[:n] + scenario.faults[n + 1:])
    if scenario.timeout_rate:
        yield "without timeouts", replace(scenario, timeout_rate=0.0)
    if scenario.midsend_crash_rate:
        yield "without crashes mid-send", replace(scenario, midsend_crash_rate=0.0)
    for n, text in enumerate(scenario.unprompted):
        yield f"without {text[0]}'s unprompted {text[2]!r}", replace(
            scenario, unprompted=scenario.unprompted[:n] + scenario.unprompted[n + 1:])
    if scenario.quiet_people:
        yield "with everyone answering", replace(scenario, quiet_people=frozenset())
    for n, plan in enumerate(scenario.plans):
        if len(scenario.plans) > 1:
            yield f"without {plan.person}'s check-in in {plan.group}", replace(
                scenario, plans=scenario.plans[:n] + scenario.plans[n + 1:])


def shrink(scenario: Scenario, run: Callable[[Scenario], Result], code: str,
           budget: int = 40) -> tuple[Scenario, Result | None, list[str]]:
    """The smallest scenario found that still fails with a violation of the same code."""
    kept: list[str] = []
    best: Result | None = None
    tries = 0
    progress = True
    while progress and tries < budget:
        progress = False
        for what, candidate in _smaller(scenario):
            tries += 1
            result = run(candidate)
            if result.violation is not None and result.violation.code == code:
                scenario, best, progress = candidate, result, True
                kept.append(what)
                break
            if tries >= budget:
                break
    return scenario, best, kept
