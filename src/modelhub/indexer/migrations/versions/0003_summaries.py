"""Summary tables for the hub's pages (model_totals, model_days, model_callers, model_relayers,
relayer_totals, settle_times, settle_seconds, window_signals, window_state), filled from the rows already
indexed; indexes for windows that start mid-day and for the rows that leave a window.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

import modelhub.indexer.schema
from modelhub.indexer import rollups, signals

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Amount = modelhub.indexer.schema.Amount


def _sums() -> list[sa.Column]:
    return [sa.Column(name, Amount(length=78), nullable=False) for name in ("calls", "revenue", "organic_calls")] + [
        sa.Column(name, sa.BigInteger(), nullable=False) for name in ("fulfilled", "rejected", "refunded")]


def _distinct_counts() -> list[sa.Column]:
    return [sa.Column(name, sa.BigInteger(), nullable=False) for name in ("callers", "repeat_callers", "relayers")]


def upgrade() -> None:
    op.create_table("model_totals", sa.Column("model_id", sa.BigInteger(), nullable=False), *_sums(),
                    *_distinct_counts(), sa.PrimaryKeyConstraint("model_id"))
    op.create_table(
        "model_days",
        sa.Column("model_id", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.BigInteger(), nullable=False),
        sa.Column("settled", sa.BigInteger(), nullable=False),
        *_sums(),
        sa.PrimaryKeyConstraint("model_id", "day"),
    )
    op.create_table(
        "model_callers",
        sa.Column("model_id", sa.BigInteger(), nullable=False),
        sa.Column("caller", sa.String(length=42), nullable=False),
        sa.Column("last_time", sa.BigInteger(), nullable=False),
        sa.Column("last_day", sa.BigInteger(), nullable=False),
        sa.Column("prev_time", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("model_id", "caller"),
    )
    op.create_index("ix_model_callers_last", "model_callers", ["model_id", "last_time"])
    op.create_index("ix_model_callers_prev", "model_callers", ["model_id", "prev_time"])
    op.create_table(
        "model_relayers",
        sa.Column("model_id", sa.BigInteger(), nullable=False),
        sa.Column("relayer", sa.String(length=42), nullable=False),
        sa.Column("last_time", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("model_id", "relayer"),
    )
    op.create_table(
        "relayer_totals",
        sa.Column("relayer", sa.String(length=42), nullable=False),
        sa.Column("calls", Amount(length=78), nullable=False),
        sa.Column("rejected", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("relayer"),
    )
    op.create_table(
        "settle_times",
        sa.Column("model_id", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.BigInteger(), nullable=False),
        sa.Column("seconds", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("model_id", "day", "seconds"),
    )
    op.create_table(
        "settle_seconds",
        sa.Column("model_id", sa.BigInteger(), nullable=False),
        sa.Column("seconds", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("model_id", "seconds"),
    )
    op.create_table(
        "window_signals",
        sa.Column("span", sa.String(length=3), nullable=False),
        sa.Column("model_id", sa.BigInteger(), nullable=False),
        *_sums(), *_distinct_counts(),
        sa.Column("median_settle_x2", sa.BigInteger(), nullable=True),
        sa.Column("median_settle_odd", sa.Boolean(), nullable=True),
        sa.PrimaryKeyConstraint("span", "model_id"),
    )
    op.create_table(
        "window_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("now", sa.BigInteger(), nullable=False),
        sa.Column("settlement_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_requests_model_ended", "requests", ["model_id", "ended_at"])
    op.create_index("ix_requests_ended", "requests", ["ended_at"])
    op.create_index("ix_settlements_time", "settlements", ["time"])
    connection = op.get_bind()
    rollups.rebuild(connection)
    now = connection.execute(sa.text("SELECT time FROM cursor")).scalar()
    if now is not None:
        signals.refresh_windows(connection, now)


def downgrade() -> None:
    op.drop_index("ix_settlements_time", table_name="settlements")
    op.drop_index("ix_requests_ended", table_name="requests")
    op.drop_index("ix_requests_model_ended", table_name="requests")
    for table in ("window_state", "window_signals", "settle_seconds", "settle_times", "relayer_totals", "model_relayers",
                  "model_callers", "model_days", "model_totals"):
        op.drop_table(table)
