"""The simulation of issue 11: random people and random faults against the real engine, with
the safety invariants checked after every step. `run_scenario(make_scenario(seed), db_url)`;
`python -m bench.simulate` for a long run, tests/test_simulation.py for CI's."""
