"""Alembic environment: run against the connection phonetree hands over, or the configured URL."""
from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from phonetree.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.get_main_option("sqlalchemy.url")
    if url is None:  # db.py always sets it; alembic run by hand without one gets this line
        raise RuntimeError("no sqlalchemy.url to migrate")
    engine = create_engine(url)
    with engine.begin() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
