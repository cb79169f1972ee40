"""send_rates: one send rate shared by every worker of a database

One row per gateway and channel, holding the next free start time (seconds since the epoch on
the database server's clock). On PostgreSQL every worker reserves its sends from it
(schedules/shared_rate.py), so N workers on one Twilio number send at the number's rate, not N
times it. SQLite has the table too (the migrations are the same on both) but runs one process
and keeps the in-process limiter.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'send_rates',
        sa.Column('gateway', sa.String(length=16), nullable=False),
        sa.Column('channel', sa.String(length=8), nullable=False),
        sa.Column('next_start', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('gateway', 'channel', name=op.f('pk_send_rates')),
    )


def downgrade() -> None:
    op.drop_table('send_rates')
