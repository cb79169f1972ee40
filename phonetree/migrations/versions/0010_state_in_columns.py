"""what a message or task is, in columns: messages.purpose and about_member_id, tasks.repetition
and call_role

Until now some of it was read out of dedupe keys: a task's ask was a message whose key ended
":ask", a second try ":later", a redial ":redial"; an alert sent again carried one ":again" per
repeat; a rota's own calls were keyed "rota:R:call:...", its backups "rota:R:backup:..." and
the organisers' "rota:R:organiser:..."; a message about a member (a forwarded reply, a notice)
was keyed "inbound:M:..." or "member:M:...". The columns are filled from those keys, and the
code reads only the columns; a dedupe key is only a key.

`ix_messages_task_ask`: a partial index on the task of each ask, so "is this task's ask still
waiting to go?" (tasks.expire_overdue, every tick) is a probe, not a scan of the outbox.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

ASK_ONLY = sa.text("purpose = 'ask'")
# Rows of the fill's Python half per statement.
CHUNK = 5000


def upgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('purpose', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('about_member_id', sa.Integer(), nullable=True))
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('repetition', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('call_role', sa.String(length=10), nullable=True))
    messages = sa.table('messages', sa.column('dedupe_key', sa.String), sa.column('purpose', sa.String))
    tasks = sa.table('tasks', sa.column('kind', sa.String), sa.column('dedupe_key', sa.String),
                     sa.column('repetition', sa.Integer), sa.column('call_role', sa.String))
    # The old keys' suffixes, as the code read them (the last suffix counts: a second try of an
    # ask was not an ask).
    for purpose in ('ask', 'later', 'redial'):
        op.execute(sa.update(messages).where(messages.c.dedupe_key.like(f'%:{purpose}')).values(purpose=purpose))
    # One ":again" (six characters) per repeat.
    key = tasks.c.dedupe_key
    op.execute(sa.update(tasks).where(key.like('%:again%')).values(
        repetition=(sa.func.length(key) - sa.func.length(sa.func.replace(key, ':again', ''))) // 6))
    for role, word in (('paired', 'call'), ('backup', 'backup'), ('organiser', 'organiser')):
        op.execute(sa.update(tasks).where(tasks.c.kind == 'call_prompt', key.like(f'rota:%:{word}:%'))
                   .values(call_role=role))
    _fill_about()
    op.create_index('ix_messages_task_ask', 'messages', ['task_id'], unique=False,
                    sqlite_where=ASK_ONLY, postgresql_where=ASK_ONLY)


def _fill_about() -> None:
    """"inbound:M:..." and "member:M:...": M, the member the message is about. Parsed here
    rather than in SQL, which has no portable way to split a string."""
    connection = op.get_bind()
    messages = sa.table('messages', sa.column('id', sa.Integer), sa.column('dedupe_key', sa.String),
                        sa.column('about_member_id', sa.Integer))
    rows = connection.execute(sa.select(messages.c.id, messages.c.dedupe_key).where(
        messages.c.dedupe_key.like('inbound:%') | messages.c.dedupe_key.like('member:%'))).all()
    found = []
    for message_id, key in rows:
        about = key.split(':')[1]
        if about.isdigit():
            found.append({'mid': message_id, 'about': int(about)})
    set_about = (sa.update(messages).where(messages.c.id == sa.bindparam('mid'))
                 .values(about_member_id=sa.bindparam('about')))
    for start in range(0, len(found), CHUNK):
        connection.execute(set_about, found[start:start + CHUNK])


def downgrade() -> None:
    op.drop_index('ix_messages_task_ask', table_name='messages')
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_column('call_role')
        batch_op.drop_column('repetition')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_column('about_member_id')
        batch_op.drop_column('purpose')
