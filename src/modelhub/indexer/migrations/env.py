"""Alembic's entry point for the indexer's migrations: runs them on the connection that
`schema.open_database` hands over (no alembic.ini; the schema's metadata is the target)."""

from alembic import context

from modelhub.indexer.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
