"""Reports read a date range of messages from an index holding every column they use (channel,
direction, sender, conversation, contact), never from the message rows; it replaces the plain
(workspace, created_at) index it starts with

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22 12:35:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    # Plain index operations (no batch): on SQLite a batch could rebuild the table and lose the
    # full-text triggers on it.
    op.create_index('ix_message_ws_report', 'message', ['workspace_id', 'created_at', 'internal', 'direction',
                                                        'sender_kind', 'channel_id', 'conversation_id', 'contact_id'],
                    unique=False)
    op.drop_index('ix_message_ws_created', table_name='message')


def downgrade():
    op.create_index('ix_message_ws_created', 'message', ['workspace_id', 'created_at'], unique=False)
    op.drop_index('ix_message_ws_report', table_name='message')
