"""every channel: email subjects and sanitized HTML, channel facts, thread references,
stored attachments, webhook replay keys

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('subject', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('html', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('meta', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('thread_ref', sa.String(length=255), nullable=True))
        batch_op.create_index('ix_message_thread_ref', ['thread_ref'], unique=False)
    with op.batch_alter_table('attachment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('storage_key', sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column('content_id', sa.String(length=255), nullable=True))
    op.create_table(
        'webhook_replay',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('channel_id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=255), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['channel_id'], ['channel.id'], name='fk_webhook_replay_channel_id_channel'),
        sa.PrimaryKeyConstraint('id', name='pk_webhook_replay'),
        sa.UniqueConstraint('channel_id', 'key', name='uq_webhook_replay_channel_id_key'),
    )


def downgrade():
    op.drop_table('webhook_replay')
    with op.batch_alter_table('attachment', schema=None) as batch_op:
        batch_op.drop_column('content_id')
        batch_op.drop_column('storage_key')
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.drop_index('ix_message_thread_ref')
        batch_op.drop_column('thread_ref')
        batch_op.drop_column('meta')
        batch_op.drop_column('html')
        batch_op.drop_column('subject')
