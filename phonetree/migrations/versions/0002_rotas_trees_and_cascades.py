"""rotas, trees and cascades

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa



revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('rotas',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('cadence', sa.String(length=12), nullable=False),
    sa.Column('on_day', sa.String(length=3), nullable=False),
    sa.Column('at_time', sa.String(length=5), nullable=False),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('confirm_s', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], name=op.f('fk_rotas_group_id_groups'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rotas')),
    sa.UniqueConstraint('group_id', 'name', name='uq_rotas_group_name')
    )
    with op.batch_alter_table('rotas', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rotas_group_id'), ['group_id'], unique=False)

    op.create_table('cascades',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('originator_id', sa.Integer(), nullable=True),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('by_voice', sa.Boolean(), nullable=False),
    sa.Column('wait_s', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], name=op.f('fk_cascades_group_id_groups'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['originator_id'], ['members.id'], name=op.f('fk_cascades_originator_id_members'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cascades'))
    )
    with op.batch_alter_table('cascades', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cascades_group_id'), ['group_id'], unique=False)

    op.create_table('rota_avoid',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rota_id', sa.Integer(), nullable=False),
    sa.Column('member_a', sa.Integer(), nullable=False),
    sa.Column('member_b', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['member_a'], ['members.id'], name=op.f('fk_rota_avoid_member_a_members'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['member_b'], ['members.id'], name=op.f('fk_rota_avoid_member_b_members'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['rota_id'], ['rotas.id'], name=op.f('fk_rota_avoid_rota_id_rotas'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rota_avoid')),
    sa.UniqueConstraint('rota_id', 'member_a', 'member_b', name='uq_rota_avoid_pair')
    )
    with op.batch_alter_table('rota_avoid', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rota_avoid_rota_id'), ['rota_id'], unique=False)

    op.create_table('rota_members',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rota_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('left_on', sa.Date(), nullable=True),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_rota_members_member_id_members'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['rota_id'], ['rotas.id'], name=op.f('fk_rota_members_rota_id_rotas'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rota_members'))
    )
    with op.batch_alter_table('rota_members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rota_members_rota_id'), ['rota_id'], unique=False)

    op.create_table('rota_rounds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rota_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('local_date', sa.Date(), nullable=False),
    sa.Column('due_at', sa.DateTime(), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.ForeignKeyConstraint(['rota_id'], ['rotas.id'], name=op.f('fk_rota_rounds_rota_id_rotas'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rota_rounds')),
    sa.UniqueConstraint('rota_id', 'number', name='uq_rota_rounds_number')
    )
    with op.batch_alter_table('rota_rounds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rota_rounds_rota_id'), ['rota_id'], unique=False)
        batch_op.create_index('ix_rota_rounds_state_due', ['state', 'due_at'], unique=False)

    op.create_table('tree_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], name=op.f('fk_tree_links_group_id_groups'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_tree_links_member_id_members'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['parent_id'], ['members.id'], name=op.f('fk_tree_links_parent_id_members'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tree_links')),
    sa.UniqueConstraint('group_id', 'member_id', name='uq_tree_links_member')
    )
    with op.batch_alter_table('tree_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tree_links_group_id'), ['group_id'], unique=False)

    op.create_table('cascade_reach',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('cascade_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('caller_id', sa.Integer(), nullable=True),
    sa.Column('reached_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['caller_id'], ['members.id'], name=op.f('fk_cascade_reach_caller_id_members'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['cascade_id'], ['cascades.id'], name=op.f('fk_cascade_reach_cascade_id_cascades'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_cascade_reach_member_id_members'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cascade_reach')),
    sa.UniqueConstraint('cascade_id', 'member_id', name='uq_cascade_reach_member')
    )
    with op.batch_alter_table('cascade_reach', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cascade_reach_cascade_id'), ['cascade_id'], unique=False)

    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('round_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('cascade_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_tasks_cascade_id'), ['cascade_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_tasks_round_id'), ['round_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_tasks_round_id_rota_rounds'), 'rota_rounds', ['round_id'], ['id'], ondelete='CASCADE')
        batch_op.create_foreign_key(batch_op.f('fk_tasks_cascade_id_cascades'), 'cascades', ['cascade_id'], ['id'], ondelete='CASCADE')



def downgrade() -> None:
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_tasks_cascade_id_cascades'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_tasks_round_id_rota_rounds'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_tasks_round_id'))
        batch_op.drop_index(batch_op.f('ix_tasks_cascade_id'))
        batch_op.drop_column('cascade_id')
        batch_op.drop_column('round_id')

    with op.batch_alter_table('cascade_reach', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cascade_reach_cascade_id'))

    op.drop_table('cascade_reach')
    with op.batch_alter_table('tree_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tree_links_group_id'))

    op.drop_table('tree_links')
    with op.batch_alter_table('rota_rounds', schema=None) as batch_op:
        batch_op.drop_index('ix_rota_rounds_state_due')
        batch_op.drop_index(batch_op.f('ix_rota_rounds_rota_id'))

    op.drop_table('rota_rounds')
    with op.batch_alter_table('rota_members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rota_members_rota_id'))

    op.drop_table('rota_members')
    with op.batch_alter_table('rota_avoid', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rota_avoid_rota_id'))

    op.drop_table('rota_avoid')
    with op.batch_alter_table('cascades', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cascades_group_id'))

    op.drop_table('cascades')
    with op.batch_alter_table('rotas', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rotas_group_id'))

    op.drop_table('rotas')
