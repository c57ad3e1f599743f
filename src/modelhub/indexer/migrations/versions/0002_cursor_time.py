"""The cursor keeps the timestamp of its block: the signals' 7- and 30-day windows end there.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cursor") as batch:
        batch.add_column(sa.Column("time", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cursor") as batch:
        batch.drop_column("time")
