"""consent_records: no index on email

The column is empty for anonymous choices, and erasure looks it up with lower(email), which
this index could not serve; every consent insert still paid for it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 12:10:00
"""

from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('consent_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consent_records_email'))


def downgrade() -> None:
    with op.batch_alter_table('consent_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consent_records_email'), ['email'], unique=False)
