"""index on checkin_plans.planned_until

The planner asks every tick whether any plan's bookmark is below its low-water mark; usually
none is, and with this index that is answered without reading the table.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""
from __future__ import annotations

from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('checkin_plans', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_checkin_plans_planned_until'), ['planned_until'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('checkin_plans', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_checkin_plans_planned_until'))
