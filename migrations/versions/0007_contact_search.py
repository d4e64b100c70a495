"""Substring search over contacts (name, company, email, phone) through an index: on SQLite an
FTS5 table with the trigram tokenizer, kept in sync by triggers; PostgreSQL keeps ILIKE

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 12:30:00

"""
from alembic import op

from inbox import search


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    # Created and filled from the existing contacts (idempotent).
    search.install(op.get_bind(), "contact")


def downgrade():
    for statement in search.drop_ddl(op.get_bind().dialect.name, "contact"):
        op.execute(statement)
