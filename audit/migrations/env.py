"""Alembic's environment for the access record: revisions run on the connection the store hands in.

There is no alembic.ini and no URL here: `audit.migrate` builds the configuration in code and puts
the store's connection, already in its migration transaction, in `config.attributes`.
"""

from __future__ import annotations

from alembic import context

from audit.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "the access record migrates itself when opened: run `python -m audit migrate` "
        "(it reads TENURE_ACCESS_RECORD_URL or TENURE_ACCESS_RECORD_DB) instead of alembic"
    )
# Transactional on both backends: on SQLite the store runs the revisions inside its own BEGIN
# IMMEDIATE (pysqlite's implicit commits are off), so a failed revision rolls back its DDL too.
context.configure(connection=connection, target_metadata=metadata, transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
