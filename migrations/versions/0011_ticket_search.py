"""Substring search over tickets (subject, description, accents folded) through an index: on SQLite
an FTS5 trigram table kept in sync by triggers, on PostgreSQL a pg_trgm GIN index (when the
extension can be created)

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-22 16:30:00

"""
from alembic import op

from inbox import search


# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    # Created and filled from the existing tickets (idempotent).
    search.install(op.get_bind(), "ticket")


def downgrade():
    for statement in search.drop_ddl(op.get_bind().dialect.name, "ticket"):
        op.execute(statement)
