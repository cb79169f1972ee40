"""checkins.help_requested_at; provider_outages

`help_requested_at`: when the member last asked for a call on this check-in. While it is set,
only DONE, an organiser's resolve or the member's own OK closes the check-in (free text after
HELP is forwarded, never taken as an answer). Filled from the old encoding: an out-of-turn
check-in's occurrence was "help:<when>", and `urgent` was set only by a HELP.

`provider_outages`: one row per stretch of time in which the gateway answered with transient
errors (5xx, 429, timeouts), so `status` and `/health` in any process can say "the provider has
been failing since ...", and a transient failure is never mistaken for a person's answer.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('checkins', schema=None) as batch_op:
        batch_op.add_column(sa.Column('help_requested_at', sa.DateTime(), nullable=True))
    op.execute("UPDATE checkins SET help_requested_at = due_at WHERE urgent = true AND help_requested_at IS NULL")
    op.create_table(
        'provider_outages',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('gateway', sa.String(length=16), nullable=False),
        sa.Column('started_at', sa.DateTime(), nullable=False),
        sa.Column('last_failure_at', sa.DateTime(), nullable=False),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('last_error', sa.String(length=200), nullable=True),
        sa.Column('ended_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_provider_outages')),
    )
    op.create_index(op.f('ix_provider_outages_ended_at'), 'provider_outages', ['ended_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_provider_outages_ended_at'), table_name='provider_outages')
    op.drop_table('provider_outages')
    with op.batch_alter_table('checkins', schema=None) as batch_op:
        batch_op.drop_column('help_requested_at')
