"""The first schema: models, versions, prices, payees, fees, requests, channels, settlements,
earnings, balances, reservations, relayers.

Revision ID: 0001
Revises: 
"""

from alembic import op
import sqlalchemy as sa
import modelhub.indexer.schema


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('accounts',
    sa.Column('account', sa.String(length=42), nullable=False),
    sa.Column('credit', modelhub.indexer.schema.Amount(length=78), nullable=False),
    sa.Column('earnings', modelhub.indexer.schema.Amount(length=78), nullable=False),
    sa.Column('withdrawn_earnings', modelhub.indexer.schema.Amount(length=78), nullable=False),
    sa.PrimaryKeyConstraint('account')
    )
    op.create_table('channels',
    sa.Column('caller', sa.String(length=42), nullable=False),
    sa.Column('relayer', sa.String(length=42), nullable=False),
    sa.Column('model_id', sa.BigInteger(), nullable=False),
    sa.Column('calls', modelhub.indexer.schema.Amount(length=78), nullable=False),
    sa.Column('amount', modelhub.indexer.schema.Amount(length=78), nullable=False),
    sa.PrimaryKeyConstraint('caller', 'relayer', 'model_id')
    )
    op.create_table('cursor',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('chain_id', sa.BigInteger(), nullable=False),
    sa.Column('escrow', sa.String(length=42), nullable=False),
    sa.Column('block', sa.BigInteger(), nullable=False),
    sa.Column('treasury', sa.String(length=42), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('earnings',
    sa.Column('account', sa.String(length=42), nullable=False),
    sa.Column('model_id', sa.BigInteger(), nullable=False),
    sa.Column('role', sa.String(length=8), nullable=False),
    sa.Column('day', sa.BigInteger(), nullable=False),
    sa.Column('amount', modelhub.indexer.schema.Amount(length=78), nullable=False),
    sa.PrimaryKeyConstraint('account', 'model_id', 'role', 'day')
    )
    with op.batch_alter_table('earnings', schema=None) as batch_op:
        batch_op.create_index('ix_earnings_model', ['model_id', 'day'], unique=False)

    op.create_table('fee_terms',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('protocol_bps', sa.Integer(), nullable=False),
    sa.Column('relayer_bps', sa.Integer(), nullable=False),
    sa.Column('effective_at', sa.BigInteger(), nullable=False),
    sa.Column('time', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('models',
    sa.Column('model_id', sa.BigInteger(), nullable=False),
    sa.Column('owner', sa.String(length=42), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('metadata_uri', sa.Text(), nullable=False),
    sa.Column('price', modelhub.indexer.schema.Amount(length=78), nullable=False),
    sa.Column('latest_version', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('registered_at', sa.BigInteger(), nullable=False),
    sa.Column('block', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('model_id')
    )
    op.create_table('payee_sets',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('model_id', sa.BigInteger(), nullable=False),
    sa.Column('accounts', sa.Text(), nullable=False),
    sa.Column('shares', sa.Text(), nullable=False),
    sa.Column('effective_at', sa.BigInteger(), nullable=False),
    sa.Column('time', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('payee_sets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payee_sets_model_id'), ['model_id'], unique=False)

    op.create_table('prices',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('model_id', sa.BigInteger(), nullable=False),
    sa.Column('old_price', modelhub.indexer.schema.Amount(length=78), nullable=False),
    sa.Column('new_price', modelhub.indexer.schema.Amount(length=78), nullable=False),
    sa.Column('time', sa.BigInteger(), nullable=False),
    sa.Column('block', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('prices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_prices_model_id'), ['model_id'], unique=False)

    op.create_table('relayers',
    sa.Column('relayer', sa.String(length=42), nullable=False),
    sa.Column('endpoint', sa.Text(), nullable=False),
    sa.Column('bond', modelhub.indexer.schema.Amount(length=78), nullable=False),
    sa.Column('unbond_at', sa.BigInteger(), nullable=False),
    sa.Column('registered_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('relayer')
    )
    op.create_table('requests',
    sa.Column('request_id', sa.String(length=78), nullable=False),
    sa.Column('model_id', sa.BigInteger(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('caller', sa.String(length=42), nullable=False),
    sa.Column('price', modelhub.indexer.schema.Amount(length=78), nullable=False),
    sa.Column('designated', sa.String(length=42), nullable=True),
    sa.Column('status', sa.SmallInteger(), nullable=False),
    sa.Column('relayer', sa.String(length=42), nullable=True),
    sa.Column('reject_reason', sa.SmallInteger(), nullable=True),
    sa.Column('requested_at', sa.BigInteger(), nullable=False),
    sa.Column('ended_at', sa.BigInteger(), nullable=True),
    sa.Column('block', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('request_id')
    )
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.create_index('ix_requests_model', ['model_id', 'requested_at'], unique=False)

    op.create_table('reservations',
    sa.Column('caller', sa.String(length=42), nullable=False),
    sa.Column('relayer', sa.String(length=42), nullable=False),
    sa.Column('amount', modelhub.indexer.schema.Amount(length=78), nullable=False),
    sa.PrimaryKeyConstraint('caller', 'relayer')
    )
    op.create_table('settlements',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('model_id', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('caller', sa.String(length=42), nullable=False),
    sa.Column('relayer', sa.String(length=42), nullable=False),
    sa.Column('calls', modelhub.indexer.schema.Amount(length=78), nullable=False),
    sa.Column('amount', modelhub.indexer.schema.Amount(length=78), nullable=False),
    sa.Column('self_dealing', sa.Boolean(), nullable=False),
    sa.Column('requested_at', sa.BigInteger(), nullable=True),
    sa.Column('time', sa.BigInteger(), nullable=False),
    sa.Column('day', sa.BigInteger(), nullable=False),
    sa.Column('block', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('settlements', schema=None) as batch_op:
        batch_op.create_index('ix_settlements_caller', ['caller', 'model_id', 'day'], unique=False)
        batch_op.create_index('ix_settlements_model_time', ['model_id', 'time'], unique=False)
        batch_op.create_index('ix_settlements_relayer', ['relayer'], unique=False)

    op.create_table('versions',
    sa.Column('model_id', sa.BigInteger(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('digest', sa.String(length=66), nullable=False),
    sa.Column('metadata_uri', sa.Text(), nullable=False),
    sa.Column('time', sa.BigInteger(), nullable=False),
    sa.Column('block', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('model_id', 'version')
    )


def downgrade() -> None:
    op.drop_table('versions')
    with op.batch_alter_table('settlements', schema=None) as batch_op:
        batch_op.drop_index('ix_settlements_relayer')
        batch_op.drop_index('ix_settlements_model_time')
        batch_op.drop_index('ix_settlements_caller')

    op.drop_table('settlements')
    op.drop_table('reservations')
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.drop_index('ix_requests_model')

    op.drop_table('requests')
    op.drop_table('relayers')
    with op.batch_alter_table('prices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_prices_model_id'))

    op.drop_table('prices')
    with op.batch_alter_table('payee_sets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payee_sets_model_id'))

    op.drop_table('payee_sets')
    op.drop_table('models')
    op.drop_table('fee_terms')
    with op.batch_alter_table('earnings', schema=None) as batch_op:
        batch_op.drop_index('ix_earnings_model')

    op.drop_table('earnings')
    op.drop_table('cursor')
    op.drop_table('channels')
    op.drop_table('accounts')
