"""indexes for `status`: a group's open check-ins and recent unread replies, flat in history

`ix_checkins_group_state_due` (group_id, state, due_at) replaces `ix_checkins_group_id` (its
prefix, so no index is added to the check-ins' writes): status finds a group's open and
scheduled check-ins without walking every check-in the group ever had.
`ix_inbound_intent_received`: replies nobody could read ("unknown") of the last two days, found
by range instead of through every reply of every member of the group.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""
from __future__ import annotations

from alembic import op


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_checkins_group_state_due', 'checkins', ['group_id', 'state', 'due_at'], unique=False)
    op.drop_index('ix_checkins_group_id', table_name='checkins')
    op.create_index('ix_inbound_intent_received', 'inbound', ['intent', 'received_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_inbound_intent_received', table_name='inbound')
    op.create_index('ix_checkins_group_id', 'checkins', ['group_id'], unique=False)
    op.drop_index('ix_checkins_group_state_due', table_name='checkins')
