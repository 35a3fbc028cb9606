"""team rounds: a leader's anonymous round on a checklist, its members' answers, and its mail

Answers carry only the round and the scores. Their key is random (the hash of the form's single-use
token) and SQLite keeps the table without a rowid, so the order in which members answered is not kept.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('team_rounds',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('checklist', sa.String(length=40), nullable=False),
    sa.Column('leader_name', sa.String(length=100), nullable=False),
    sa.Column('leader_email', sa.String(length=254), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('confirmed_at', sa.DateTime(), nullable=True),
    sa.Column('closes_at', sa.DateTime(), nullable=True),
    sa.Column('closed_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('team_rounds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_team_rounds_leader_email'), ['leader_email'], unique=False)

    op.create_table('team_answers',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('round_id', sa.String(length=32), nullable=False),
    sa.Column('scores', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['round_id'], ['team_rounds.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sqlite_with_rowid=False
    )
    with op.batch_alter_table('team_answers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_team_answers_round_id'), ['round_id'], unique=False)

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('team_round_id', sa.String(length=32), nullable=True))
        batch_op.create_foreign_key('fk_outbox_team_round_id_team_rounds', 'team_rounds', ['team_round_id'],
                                    ['id'], ondelete='SET NULL')


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_constraint('fk_outbox_team_round_id_team_rounds', type_='foreignkey')
        batch_op.drop_column('team_round_id')
    with op.batch_alter_table('team_answers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_team_answers_round_id'))
    op.drop_table('team_answers')
    with op.batch_alter_table('team_rounds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_team_rounds_leader_email'))
    op.drop_table('team_rounds')
