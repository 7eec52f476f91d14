"""transcript once: a chat records where its transcript went, so it is sent once

Revision ID: transcript_once
Revises: knowledge_base
"""
from alembic import op
import sqlalchemy as sa


revision = 'transcript_once'
down_revision = 'knowledge_base'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('chat_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('transcript_sent_to', sa.String(length=254), nullable=True))


def downgrade():
    with op.batch_alter_table('chat_sessions', schema=None) as batch_op:
        batch_op.drop_column('transcript_sent_to')
