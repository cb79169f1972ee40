"""rotas.next_round_at, indexed

When each rota's first round not yet made falls due. The planner used to read every active
rota and every round on every tick; now it asks the index whether any rota's next round comes
within the horizon, and usually none does. NULL (every rota until its first tick after this
migration) means "not known yet": that rota is planned at the next tick, as before.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('rotas', schema=None) as batch_op:
        batch_op.add_column(sa.Column('next_round_at', sa.DateTime(), nullable=True))
        batch_op.create_index(batch_op.f('ix_rotas_next_round_at'), ['next_round_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('rotas', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rotas_next_round_at'))
        batch_op.drop_column('next_round_at')
