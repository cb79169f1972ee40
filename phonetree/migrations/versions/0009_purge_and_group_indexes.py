"""indexes for the retention purge and for per-group reads of messages

`ix_messages_unpurged` / `ix_inbound_unpurged`: partial indexes on the time of messages and
replies whose text is still kept (`body IS NOT NULL`), so the hourly purge finds what is past its
retention by a range scan over just those rows: its cost grows with the rows it blanks, not with
the whole history. `ix_messages_group_created`: status, outbox and reports read one group's
messages by time; before this there was no index on messages.group_id at all.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

KEPT = sa.text("body IS NOT NULL")


def upgrade() -> None:
    op.create_index('ix_messages_unpurged', 'messages', ['created_at'], unique=False,
                    sqlite_where=KEPT, postgresql_where=KEPT)
    op.create_index('ix_inbound_unpurged', 'inbound', ['received_at'], unique=False,
                    sqlite_where=KEPT, postgresql_where=KEPT)
    op.create_index('ix_messages_group_created', 'messages', ['group_id', 'created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_messages_group_created', table_name='messages')
    op.drop_index('ix_inbound_unpurged', table_name='inbound')
    op.drop_index('ix_messages_unpurged', table_name='messages')
