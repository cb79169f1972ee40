"""The simulation of issue 11: random people and random faults against the real engine, with the
safety invariants checked after every step.

    from tests.simulation.world import make_scenario
    from tests.simulation.runner import run_scenario
    result = run_scenario(make_scenario(1234), "sqlite:///sim.db")
    print(result.story)          # a counterexample, told in local time; "" when none

`python -m bench.simulate` is the long run (fresh seeds, failing ones shrunk and saved to
tests/simulation_seeds.txt); tests/test_simulation.py is CI's (fixed seeds, the saved ones, and
hand-written scenarios of each issue 11 defect).

The parts: world.py (a scenario as plain data, from a seed), network.py (the fault-injecting
Gateway and the phone network: what really left), actors.py (what people do with what reaches
their phone), runner.py (ticks under freezegun, signed webhooks through the WSGI app, crashes),
invariants.py (the promise, (i)-(vi)), story.py (the counterexample), shrink.py.

Violation codes: i (nobody has an unanswered check-in in time), ii (answered, yet escalated, or
asked before the window ran out), iii (a HELP stood down or not raised), iv (a CANT or an
"unreachable" that isn't true of the person), v (a message out twice beyond the duplicate
window), vi (something lost: a reply, a planned occurrence, a message left in the queue), error
(phonetree raised). A suffix names a cause: -outage (a transient provider failure was involved:
issue 11 defect 3), -no-answer, -undeliverable.
"""
