"""A pytest plugin for mutation runs only (bench/mutation.py passes `-p bench.mutation_plugin`).

Nearly every test makes a fresh SQLite file and migrates it (about 0.5 s of Alembic); a mutation
run repeats that thousands of times. Here a new SQLite file is instead copied from one migrated
once per run: the same schema at the same head revision (the migrations are not what is being
mutated), an order of magnitude quicker. Files that already exist, and PostgreSQL, go through the
real upgrade untouched.

The tests a mutant runs are also put quickest first, by the durations mutmut recorded in its stats
run (`mutmut-stats.json`): with `-x` a mutant stops at its first failing test, and the test that
kills it is usually a quick one, so a killed mutant costs seconds instead of the whole selection.
Survivors still run every test; the set of tests, and so every verdict, is unchanged.
"""
from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import Engine

from phonetree import db

_real_upgrade = db.upgrade
_template: Path | None = None


def _migrated_template() -> Path:
    global _template
    if _template is None:
        path = Path(tempfile.mkdtemp(prefix="phonetree-mutation-")) / "template.db"
        engine = db.make_engine(f"sqlite:///{path}")
        _real_upgrade(engine)
        engine.dispose()
        with sqlite3.connect(path) as conn:  # fold the WAL into the file: one file is the database
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        _template = path
    return _template


def _upgrade(engine: Engine) -> None:
    database = engine.url.database
    if engine.url.get_backend_name() == "sqlite" and database and database != ":memory:":
        target = Path(database)
        if not target.exists() and target.parent.is_dir():
            shutil.copyfile(_migrated_template(), target)
    _real_upgrade(engine)


db.upgrade = _upgrade


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    stats = Path("mutmut-stats.json")  # mutmut runs the tests from its mutants/ directory
    if not stats.exists():
        return  # the stats run itself: nothing recorded yet
    seconds = json.loads(stats.read_text()).get("duration_by_test", {})
    items.sort(key=lambda item: seconds.get(item.nodeid, 0.0))
