"""Ticket searches of one or two characters match the start of the subject's words through an index
(SQLite: an FTS5 table with 1- and 2-character prefix indexes; PostgreSQL: a GIN index on the
subject's words) instead of scanning every ticket's text

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-22 19:40:00

"""
from alembic import op

from inbox import search


# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    # Created and filled from the existing tickets (idempotent).
    search.install(op.get_bind(), "ticket_words")


def downgrade():
    for statement in search.drop_ddl(op.get_bind().dialect.name, "ticket_words"):
        op.execute(statement)
