"""A conversation keeps who wrote its newest message (Sara, which agent), so that the inbox row says
« Sara : » or « Julien : » instead of one « Vous : » for every message the team sent.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-23 06:10:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

FOREIGN_KEY = 'fk_conversation_last_message_sender_id_user'


def backfill_statement():
    """One set-based UPDATE (SQLite and PostgreSQL): each conversation's newest message that is
    not a note, as touch_conversation() would have written it."""
    conversation = sa.table('conversation', sa.column('id'), sa.column('last_message_sender_kind'),
                            sa.column('last_message_sender_id'))
    message = sa.table('message', sa.column('id'), sa.column('conversation_id'), sa.column('created_at'),
                       sa.column('internal', sa.Boolean), sa.column('sender_kind'), sa.column('sender_user_id'))

    def newest(column):
        return (sa.select(column).where(message.c.conversation_id == conversation.c.id,
                                        message.c.internal == sa.false())
                .order_by(message.c.created_at.desc(), message.c.id.desc()).limit(1).scalar_subquery())

    return conversation.update().values(last_message_sender_kind=newest(message.c.sender_kind),
                                        last_message_sender_id=newest(message.c.sender_user_id))


def upgrade():
    # Plain ADD COLUMN (no batch): on SQLite a batch would rebuild the table. SQLite takes the
    # reference inline; PostgreSQL gets a named constraint.
    bind = op.get_bind()
    op.add_column('conversation', sa.Column('last_message_sender_kind', sa.String(length=12), nullable=True))
    if bind.dialect.name == 'sqlite':
        op.execute('ALTER TABLE conversation ADD COLUMN last_message_sender_id INTEGER REFERENCES user (id)')
    else:
        op.add_column('conversation', sa.Column('last_message_sender_id', sa.Integer(), nullable=True))
        op.create_foreign_key(FOREIGN_KEY, 'conversation', 'user', ['last_message_sender_id'], ['id'])
    op.execute(backfill_statement())


def downgrade():
    bind = op.get_bind()
    if bind.dialect.name != 'sqlite':
        op.drop_constraint(FOREIGN_KEY, 'conversation', type_='foreignkey')
    op.drop_column('conversation', 'last_message_sender_id')
    op.drop_column('conversation', 'last_message_sender_kind')
