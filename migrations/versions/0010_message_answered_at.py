"""Each received message keeps when it was first answered, so the reports' response times are a
plain sum over the range's messages instead of a search for each message's answer; the report
index carries the new column

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22 16:10:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

REPORT_COLUMNS = ['workspace_id', 'created_at', 'internal', 'direction', 'sender_kind', 'channel_id',
                  'conversation_id', 'contact_id']


def backfill_statement():
    """One set-based UPDATE (SQLite and PostgreSQL): a received message's first answer is the
    first message a person or Sara sent in its conversation at the same time or later, notes
    left out, as the reports computed it until now."""
    message = sa.table('message', sa.column('id'), sa.column('conversation_id'), sa.column('direction'),
                       sa.column('sender_kind'), sa.column('internal', sa.Boolean), sa.column('created_at'),
                       sa.column('answered_at'))
    answer = message.alias('answer')
    first = (sa.select(answer.c.created_at)
             .where(answer.c.conversation_id == message.c.conversation_id, answer.c.direction == 'outbound',
                    answer.c.sender_kind.in_(['agent', 'bot']), answer.c.internal == sa.false(),
                    answer.c.created_at >= message.c.created_at)
             .order_by(answer.c.created_at).limit(1).scalar_subquery())
    return message.update().where(message.c.direction == 'inbound').values(answered_at=first)


def upgrade():
    # Plain operations (no batch): on SQLite a batch could rebuild the table and lose the
    # full-text triggers on it. Adding a nullable column is a plain ALTER TABLE on both.
    op.add_column('message', sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True))
    op.execute(backfill_statement())
    op.drop_index('ix_message_ws_report', table_name='message')
    op.create_index('ix_message_ws_report', 'message', [*REPORT_COLUMNS, 'answered_at'], unique=False)


def downgrade():
    op.drop_index('ix_message_ws_report', table_name='message')
    op.create_index('ix_message_ws_report', 'message', REPORT_COLUMNS, unique=False)
    op.drop_column('message', 'answered_at')
