"""outbox: the mailbox a visitor mail goes to, and the indexes the mail limits count with

The daily limit per address counted the address as typed, so An+1@…, a.n@gmail.com and the punycode
form of a domain each had their own three mails a day. A visitor mail now stores its address in one
spelling per mailbox (leadform.mail.mailbox) and the limit counts that; the site's hourly and daily
caps count visitor mails by the time they were sent.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mailbox', sa.String(length=254), nullable=True))
        batch_op.create_index('ix_outbox_mailbox', ['mailbox', 'created_at'], unique=False)
        batch_op.create_index('ix_outbox_sent', ['sent_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_sent')
        batch_op.drop_index('ix_outbox_mailbox')
        batch_op.drop_column('mailbox')
