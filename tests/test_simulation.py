"""The issue 11 simulation, CI-sized: fixed seeds (so a red run is reproducible), a few on SQLite,
fewer on PostgreSQL, and every seed the long run (`python -m bench.simulate`) has saved as a
regression in tests/simulation_seeds.txt. A failure prints the counterexample as a story."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import fresh_postgres_database
from tests.simulation.runner import Result, fresh_sqlite, run_scenario
from tests.simulation.world import make_scenario

SQLITE_SEEDS = [11, 23, 37, 41, 58]
POSTGRES_SEEDS = [64, 79]
SAVED = Path(__file__).with_name("simulation_seeds.txt")


def saved_seeds() -> list[tuple[int, str]]:
    seeds = []
    for line in SAVED.read_text().splitlines() if SAVED.exists() else []:
        words = line.split("#", 1)[0].split()
        if words:
            seeds.append((int(words[0]), words[1] if len(words) > 1 else "sqlite"))
    return seeds


def database(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "sqlite":
        return fresh_sqlite(tmp_path, "sim.db")
    base = request.getfixturevalue("postgres_server")
    if base is None:
        pytest.skip("PostgreSQL is not installed here (.ci/run installs it)")
    return fresh_postgres_database(base)


def check(result: Result) -> None:
    assert result.steps > 20, f"seed {result.seed} ran only {result.steps} steps: the scenario did nothing"
    assert result.violation is None, "\n" + result.story


@pytest.mark.parametrize("seed", SQLITE_SEEDS)
def test_simulation_on_sqlite(seed: int, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    check(run_scenario(make_scenario(seed), database("sqlite", tmp_path, request)))


@pytest.mark.parametrize("seed", POSTGRES_SEEDS)
def test_simulation_on_postgresql(seed: int, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    check(run_scenario(make_scenario(seed), database("postgresql", tmp_path, request)))


@pytest.mark.parametrize("seed,kind", saved_seeds() or [pytest.param(0, "sqlite", marks=pytest.mark.skip("none saved"))])
def test_saved_failing_seed_stays_fixed(seed: int, kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    check(run_scenario(make_scenario(seed), database(kind, tmp_path, request)))
