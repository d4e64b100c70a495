"""Inbound webhooks kept until the ingest job has stored their messages

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22 12:30:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('inbound_delivery',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('workspace_id', sa.Integer(), nullable=False),
    sa.Column('channel_id', sa.Integer(), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('headers', sa.JSON(), nullable=False),
    sa.Column('body', sa.LargeBinary(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['channel_id'], ['channel.id'], name=op.f('fk_inbound_delivery_channel_id_channel')),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspace.id'], name=op.f('fk_inbound_delivery_workspace_id_workspace')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbound_delivery'))
    )
    with op.batch_alter_table('inbound_delivery', schema=None) as batch_op:
        batch_op.create_index('ix_inbound_delivery_created', ['created_at'], unique=False)


def downgrade():
    with op.batch_alter_table('inbound_delivery', schema=None) as batch_op:
        batch_op.drop_index('ix_inbound_delivery_created')
    op.drop_table('inbound_delivery')
