"""outbox: a mail's template context, rendered at delivery

The checklist and contact requests no longer render their mail: composing it took a fifth of
such a request's CPU under load. They store what the templates need; the outbox renders the
bodies when it sends the mail, and keeps them in place of the context once it is sent.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 17:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('context', sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    # Dropping the column would throw away what every queued or failed mail says.
    unsent = op.get_bind().execute(sa.text("SELECT count(*) FROM outbox WHERE context IS NOT NULL")).scalar()
    if unsent:
        raise RuntimeError(f"{unsent} mails are not sent yet and exist only as a context: send them first "
                           "(flask --app leadform outbox send), then downgrade")
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('context')
