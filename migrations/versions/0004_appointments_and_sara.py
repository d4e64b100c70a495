"""appointments; Sara's knowledge base, intents, settings, decisions and training examples

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'appointment',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('workspace_id', sa.Integer(), nullable=False),
        sa.Column('contact_id', sa.Integer(), nullable=False),
        sa.Column('agent_id', sa.Integer(), nullable=True),
        sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('duration_minutes', sa.Integer(), nullable=False),
        sa.Column('location', sa.String(length=200), nullable=False),
        sa.Column('subject', sa.String(length=200), nullable=False),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('reminder_sent_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['agent_id'], ['user.id'], name='fk_appointment_agent_id_user'),
        sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], name='fk_appointment_contact_id_contact'),
        sa.ForeignKeyConstraint(['workspace_id'], ['workspace.id'], name='fk_appointment_workspace_id_workspace'),
        sa.PrimaryKeyConstraint('id', name='pk_appointment'),
    )
    op.create_index('ix_appointment_ws_starts', 'appointment', ['workspace_id', 'starts_at'])
    op.create_index('ix_appointment_contact_starts', 'appointment', ['contact_id', 'starts_at'])
    op.create_table(
        'knowledge_article',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('workspace_id', sa.Integer(), nullable=False),
        sa.Column('title', sa.String(length=200), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('language', sa.String(length=8), nullable=False),
        sa.Column('enabled', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['workspace_id'], ['workspace.id'], name='fk_knowledge_article_workspace_id_workspace'),
        sa.PrimaryKeyConstraint('id', name='pk_knowledge_article'),
    )
    op.create_index('ix_knowledge_article_ws', 'knowledge_article', ['workspace_id', 'enabled'])
    op.create_table(
        'sara_intent',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('workspace_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=80), nullable=False),
        sa.Column('examples', sa.JSON(), nullable=False),
        sa.Column('action', sa.String(length=16), nullable=False),
        sa.Column('category', sa.String(length=16), nullable=False),
        sa.Column('priority', sa.String(length=16), nullable=False),
        sa.Column('article_id', sa.Integer(), nullable=True),
        sa.Column('reply_template', sa.Text(), nullable=True),
        sa.Column('always_escalate', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['article_id'], ['knowledge_article.id'], name='fk_sara_intent_article_id_knowledge_article'),
        sa.ForeignKeyConstraint(['workspace_id'], ['workspace.id'], name='fk_sara_intent_workspace_id_workspace'),
        sa.PrimaryKeyConstraint('id', name='pk_sara_intent'),
    )
    op.create_index('ix_sara_intent_ws', 'sara_intent', ['workspace_id'])
    op.create_table(
        'sara_settings',
        sa.Column('workspace_id', sa.Integer(), nullable=False),
        sa.Column('enabled', sa.Boolean(), nullable=False),
        sa.Column('engine', sa.String(length=16), nullable=False),
        sa.Column('model', sa.String(length=80), nullable=False),
        sa.Column('confidence_threshold', sa.Float(), nullable=False),
        sa.Column('auto_reply_off_channels', sa.JSON(), nullable=False),
        sa.Column('out_of_scope_examples', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['workspace_id'], ['workspace.id'], name='fk_sara_settings_workspace_id_workspace'),
        sa.PrimaryKeyConstraint('workspace_id', name='pk_sara_settings'),
    )
    op.create_table(
        'sara_decision',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('workspace_id', sa.Integer(), nullable=False),
        sa.Column('message_id', sa.Integer(), nullable=False),
        sa.Column('conversation_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('category', sa.String(length=16), nullable=False),
        sa.Column('priority', sa.String(length=16), nullable=False),
        sa.Column('language', sa.String(length=8), nullable=False),
        sa.Column('confidence', sa.Float(), nullable=False),
        sa.Column('reason', sa.String(length=300), nullable=False),
        sa.Column('guardrail', sa.String(length=24), nullable=True),
        sa.Column('engine', sa.String(length=40), nullable=False),
        sa.Column('model', sa.String(length=80), nullable=False),
        sa.Column('intent', sa.String(length=80), nullable=True),
        sa.Column('article_id', sa.Integer(), nullable=True),
        sa.Column('ticket_id', sa.Integer(), nullable=True),
        sa.Column('prompt_tokens', sa.Integer(), nullable=False),
        sa.Column('completion_tokens', sa.Integer(), nullable=False),
        sa.Column('latency_ms', sa.Float(), nullable=False),
        sa.Column('corrected_by_id', sa.Integer(), nullable=True),
        sa.Column('corrected_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('corrected_category', sa.String(length=16), nullable=True),
        sa.Column('corrected_intent', sa.String(length=80), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['article_id'], ['knowledge_article.id'], name='fk_sara_decision_article_id_knowledge_article'),
        sa.ForeignKeyConstraint(['conversation_id'], ['conversation.id'], name='fk_sara_decision_conversation_id_conversation'),
        sa.ForeignKeyConstraint(['corrected_by_id'], ['user.id'], name='fk_sara_decision_corrected_by_id_user'),
        sa.ForeignKeyConstraint(['message_id'], ['message.id'], name='fk_sara_decision_message_id_message'),
        sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], name='fk_sara_decision_ticket_id_ticket'),
        sa.ForeignKeyConstraint(['workspace_id'], ['workspace.id'], name='fk_sara_decision_workspace_id_workspace'),
        sa.PrimaryKeyConstraint('id', name='pk_sara_decision'),
        sa.UniqueConstraint('message_id', name='uq_sara_decision_message_id'),
    )
    op.create_index('ix_sara_decision_conversation_id', 'sara_decision', ['conversation_id'])
    op.create_index('ix_sara_decision_ws_created', 'sara_decision', ['workspace_id', 'created_at'])
    op.create_table(
        'training_example',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('workspace_id', sa.Integer(), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('intent', sa.String(length=80), nullable=True),
        sa.Column('category', sa.String(length=16), nullable=True),
        sa.Column('source', sa.String(length=16), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['workspace_id'], ['workspace.id'], name='fk_training_example_workspace_id_workspace'),
        sa.PrimaryKeyConstraint('id', name='pk_training_example'),
    )
    op.create_index('ix_training_example_ws', 'training_example', ['workspace_id'])


def downgrade():
    for table in ('training_example', 'sara_decision', 'sara_settings', 'sara_intent', 'knowledge_article',
                  'appointment'):
        op.drop_table(table)
